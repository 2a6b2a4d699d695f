/**
 * What a transaction did, gathered while it runs so the run bookkeeping is written once per run at
 * its end (settle.ts), and the guard every step update passes.
 */
import type { SerializedError } from '../../domain/errors.ts';
import type { UsageTotals } from '../../domain/records.ts';
import { assertTransition, STEP_TRANSITIONS } from '../../domain/states.ts';
import type { NewEvent, StepUpdate } from '../../store/store.ts';

export interface TxEffects {
  now: number;
  events: NewEvent[];
  deltas: Map<string, RunEffect>;
  queued: number;
  /** Every event the transaction wrote, run.started and run.finished included (set by settleRuns). */
  written: NewEvent[];
  /** This transaction is running again after a TransactionRace: take the run locks first. */
  rerun: boolean;
}

export interface RunEffect {
  stepsDone: number;
  stepsFailed: number;
  usage: UsageTotals;
  /** A step of this run was claimed: the run starts if it has not yet. */
  start: boolean;
  /** Steps added to the run at runtime by this transaction. */
  stepsAdded: number;
  /**
   * The run's step count the additions were checked against (read, not locked): the transaction
   * runs again if the locked count differs (another transaction added steps meanwhile).
   */
  expectTotal?: number;
  /** The first step of this run that failed or timed out in this transaction. */
  failure?: StepFailure;
}

export interface StepFailure {
  step: string;
  status: 'failed' | 'timed_out';
  error: SerializedError | null;
}

/**
 * Every step update the engine makes passes through here: a status change must be allowed by
 * STEP_TRANSITIONS from each state the update may apply in. The store then enforces the same
 * `from` states in SQL, so an illegal transition is a bug caught here, and a lost race is a no-op
 * there.
 */
export function guarded(u: StepUpdate): StepUpdate {
  const to = u.patch.status;
  if (to !== undefined) for (const from of u.expectStatus) assertTransition('step', STEP_TRANSITIONS, from, to);
  return u;
}

export function newEffects(now: number, rerun = false): TxEffects {
  return { now, events: [], deltas: new Map(), queued: 0, written: [], rerun };
}

export function runEffect(fx: TxEffects, runId: string): RunEffect {
  let d = fx.deltas.get(runId);
  if (!d) {
    d = { stepsDone: 0, stepsFailed: 0, usage: { inputTokens: 0, outputTokens: 0, calls: 0 }, start: false, stepsAdded: 0 };
    fx.deltas.set(runId, d);
  }
  return d;
}
