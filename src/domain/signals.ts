/**
 * Waits for signals (docs/waits-and-reruns.md): what the built-in `wait` tool takes and what a
 * signal's name may be. The tool's attempt only checks its inputs and returns them; the transition
 * that records it (src/engine/transitions/waits.ts) parks the step, `pending` with no lease, until
 * the signal comes or the wait's deadline passes.
 */
import { RunwardenError } from './errors.ts';
import { textProblem } from './text.ts';

/** The built-in tool whose steps wait for a signal. */
export const WAIT_TOOL = 'wait';

/** The longest a step may wait for a signal: 30 days. */
export const MAX_WAIT_MS = 30 * 86_400_000;

/** Longest signal name (it is a path segment of `POST /runs/:id/signals/:name`). */
export const MAX_SIGNAL_NAME = 200;

/** What a `wait` attempt returns: the signal and how long to wait for it. */
export interface WaitRequest {
  signal: string;
  timeoutMs: number;
}

/** Why `name` cannot name a signal, or null. */
export function signalNameProblem(name: string): string | null {
  if (name.length === 0) return 'is empty';
  if (name.length > MAX_SIGNAL_NAME) return `is longer than ${MAX_SIGNAL_NAME} characters`;
  return textProblem(name);
}

/** The wait a `wait` step's outputs ask for (the tool checked them already); throws if they are not one. */
export function waitRequest(outputs: unknown): WaitRequest {
  const o = outputs as Partial<WaitRequest> | null;
  if (!o || typeof o.signal !== 'string' || signalNameProblem(o.signal) !== null || !Number.isSafeInteger(o.timeoutMs) || (o.timeoutMs as number) <= 0) {
    throw new RunwardenError('INPUT_INVALID', 'a wait step needs {"signal": "<name>", "timeoutMs": <ms>}');
  }
  return { signal: o.signal, timeoutMs: Math.min(o.timeoutMs as number, MAX_WAIT_MS) };
}
