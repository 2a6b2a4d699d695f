/**
 * A run's books within one transaction: the block of seq numbers its events take, its counters, and
 * its start and end. The rules live here, once, for every store: a store only locks the row
 * (`Tx.lockRuns`) and writes back what this computed (`Tx.writeRuns`).
 */
import type { SerializedError } from '../domain/errors.ts';
import type { UsageTotals } from '../domain/records.ts';
import { assertTransition, runOutcome, RUN_TRANSITIONS } from '../domain/states.ts';
import type { RunBook } from '../store/store.ts';
import type { StepFailure } from './transitions/effects.ts';

/** Longest step error message a run's error repeats (the step keeps the whole message). */
const RUN_ERROR_MESSAGE_MAX = 500;

/**
 * A run's `error`: the first of its steps that failed or timed out, and why. Set when that step
 * ends (the run may still have steps running) and never replaced; the run ends `failed`.
 */
export function runError(failure: StepFailure): SerializedError {
  const e = failure.error;
  const why = e ? `${e.code}: ${e.message.length > RUN_ERROR_MESSAGE_MAX ? `${e.message.slice(0, RUN_ERROR_MESSAGE_MAX - 1)}…` : e.message}` : 'no error recorded';
  return {
    code: 'STEP_FAILED',
    message: `step "${failure.step}" ${failure.status === 'timed_out' ? 'timed out' : 'failed'}: ${why}`,
    retryable: false,
    data: { step: failure.step, status: failure.status, ...(e ? { error: { code: e.code, message: e.message } } : {}) },
  };
}

/** What one transaction did to a run. */
export interface RunDelta {
  /** Events of the transaction for this run (seqs to reserve, besides run.started / run.finished). */
  events: number;
  stepsDone: number;
  stepsFailed: number;
  /** Steps added to the run at runtime. */
  stepsAdded?: number;
  usage?: UsageTotals;
  /** A step of the run was claimed at this time: a queued run starts. */
  startAt?: number;
}

/**
 * The seqs a delta takes, in order: `run.started` (when it started the run), its events, then
 * `run.finished` (when its steps brought the run to its total).
 */
export interface SeqBlock {
  started: number | null;
  firstEvent: number;
  finished: { seq: number; status: 'succeeded' | 'failed' | 'cancelled' } | null;
  /** Whether the book changed (and must be written). */
  changed: boolean;
}

/**
 * Applies `d` to `b` (in place) at time `now`. A run ends exactly when its last step does; a run
 * started and finished by one transaction (every step ended without running) goes queued ->
 * running -> its outcome, all in this call. Throws on an illegal run transition (the transaction
 * then rolls back).
 */
export function advanceBook(b: RunBook, d: RunDelta, now: number): SeqBlock {
  let changed = d.events !== 0 || d.stepsDone !== 0 || d.stepsFailed !== 0 || (d.stepsAdded ?? 0) !== 0;
  let started: number | null = null;
  if (d.startAt !== undefined && b.status === 'queued') {
    assertTransition('run', RUN_TRANSITIONS, b.status, 'running');
    b.status = 'running';
    b.startedAt = d.startAt;
    started = ++b.lastSeq;
    changed = true;
  }
  const firstEvent = b.lastSeq + 1;
  b.lastSeq += d.events;
  b.stepsDone += d.stepsDone;
  b.stepsTotal += d.stepsAdded ?? 0;
  b.stepsFailed += d.stepsFailed;
  if (d.usage && d.usage.calls + d.usage.inputTokens + d.usage.outputTokens !== 0) {
    b.usage = {
      inputTokens: b.usage.inputTokens + d.usage.inputTokens,
      outputTokens: b.usage.outputTokens + d.usage.outputTokens,
      calls: b.usage.calls + d.usage.calls,
    };
    changed = true;
  }
  let finished: SeqBlock['finished'] = null;
  if (b.stepsDone >= b.stepsTotal && (b.status === 'queued' || b.status === 'running')) {
    const status = runOutcome(b);
    assertTransition('run', RUN_TRANSITIONS, b.status, status);
    b.status = status;
    b.finishedAt = now;
    finished = { seq: ++b.lastSeq, status };
    changed = true;
  }
  return { started, firstEvent, finished, changed };
}
