import type { CallOptions } from './types.ts';

/** What a caller must offer for a provider call; a tool's ToolContext has this shape. */
export interface CallScope {
  readonly signal: AbortSignal;
  readonly deadline: number;
  emit(type: string, data: Record<string, unknown>): void;
}

/** A step's signal and deadline, with provider events re-emitted on the step. */
export function callOptionsFor(scope: CallScope): CallOptions {
  return { signal: scope.signal, deadline: scope.deadline, onEvent: (type, data) => scope.emit(type, data) };
}
