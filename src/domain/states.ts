/**
 * The lifecycle, declared once. The database mirrors these lists in CHECK constraints (checked against
 * them by test/conformance/schema.test.ts) and every transition in the store is a conditional UPDATE
 * on the current state (see docs/lifecycle.md).
 */
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type RunState = (typeof RUN_STATES)[number];

export const STEP_STATES = ['pending', 'queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'skipped'] as const;
export type StepState = (typeof STEP_STATES)[number];

export const ATTEMPT_STATES = ['running', 'succeeded', 'failed', 'timed_out', 'lost', 'cancelled'] as const;
export type AttemptState = (typeof ATTEMPT_STATES)[number];

export const RUN_TERMINAL: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'cancelled']);
export const STEP_TERMINAL: ReadonlySet<StepState> = new Set(['succeeded', 'failed', 'timed_out', 'cancelled', 'skipped']);
export const ATTEMPT_TERMINAL: ReadonlySet<AttemptState> = new Set(['succeeded', 'failed', 'timed_out', 'lost', 'cancelled']);

export const RUN_TRANSITIONS: Readonly<Record<RunState, readonly RunState[]>> = Object.freeze({
  queued: ['running', 'cancelled', 'failed', 'succeeded'],
  running: ['succeeded', 'failed', 'cancelled'],
  succeeded: [],
  failed: [],
  cancelled: [],
});

export const STEP_TRANSITIONS: Readonly<Record<StepState, readonly StepState[]>> = Object.freeze({
  // pending -> succeeded: a step waiting for the outputs of a step it added (outputsFrom) gets them,
  // a `wait` step gets its signal, or a rerun reuses a step's outputs.
  // pending -> timed_out: a `wait` step's signal did not come before its deadline.
  pending: ['queued', 'skipped', 'cancelled', 'failed', 'succeeded', 'timed_out'],
  queued: ['running', 'cancelled', 'failed'],
  // running -> queued: an attempt failed, timed out or was lost and the retry policy allows another.
  // running -> pending: the attempt succeeded and added steps, one of which gives it its outputs, or
  // the attempt of a `wait` step succeeded and the step now waits for its signal.
  running: ['succeeded', 'failed', 'timed_out', 'cancelled', 'queued', 'pending'],
  succeeded: [],
  failed: [],
  timed_out: [],
  cancelled: [],
  skipped: [],
});

export const ATTEMPT_TRANSITIONS: Readonly<Record<AttemptState, readonly AttemptState[]>> = Object.freeze({
  running: ['succeeded', 'failed', 'timed_out', 'lost', 'cancelled'],
  succeeded: [],
  failed: [],
  timed_out: [],
  lost: [],
  cancelled: [],
});

export function canTransition<S extends string>(table: Readonly<Record<S, readonly S[]>>, from: S, to: S): boolean {
  return table[from].includes(to);
}

export function assertTransition<S extends string>(kind: string, table: Readonly<Record<S, readonly S[]>>, from: S, to: S): void {
  if (!canTransition(table, from, to)) {
    throw new Error(`illegal ${kind} transition ${from} -> ${to}`);
  }
}

/**
 * How a run ends once every one of its steps has: cancelled when cancellation was asked for (even if
 * some steps succeeded first), failed when any step did not succeed, else succeeded.
 */
export function runOutcome(run: { cancelRequested: boolean; stepsFailed: number }): 'succeeded' | 'failed' | 'cancelled' {
  if (run.cancelRequested) return 'cancelled';
  return run.stepsFailed > 0 ? 'failed' : 'succeeded';
}
