import type { CapacityClock } from '../flow/capacity.ts';
import type { CallOptions } from './types.ts';

/** What a caller must offer for a provider call; a tool's ToolContext has this shape. */
export interface CallScope {
  readonly signal: AbortSignal;
  readonly deadline: number;
  readonly runId?: string;
  readonly stepName?: string;
  readonly attempt?: number;
  emit(type: string, data: Record<string, unknown>): void;
  streamText?(text: string, call?: number): void;
  readonly capacity?: CapacityClock;
}

/** A step's signal and deadline, with provider events re-emitted on the step and streamed text published. */
export function callOptionsFor(scope: CallScope): CallOptions {
  const opts: CallOptions = { signal: scope.signal, deadline: scope.deadline, onEvent: (type, data) => scope.emit(type, data) };
  if (scope.capacity) opts.capacity = scope.capacity;
  if (scope.streamText) {
    const stream = scope.streamText.bind(scope);
    opts.onText = (text, call) => stream(text, call);
  }
  if (scope.runId !== undefined && scope.stepName !== undefined && scope.attempt !== undefined) {
    opts.step = { runId: scope.runId, stepName: scope.stepName, attempt: scope.attempt };
  }
  return opts;
}
