/** What workers and supervisors hand to the transitions, and what they get back. */
import type { Additions } from '../../domain/added-steps.ts';
import type { SerializedError } from '../../domain/errors.ts';
import type { NewArtifact, StepRow } from '../../store/store.ts';

export interface ClaimedStep {
  runId: string;
  stepName: string;
  tool: string;
  attempt: number;
  token: string;
  inputs: Record<string, unknown>;
  timeoutMs: number;
  deadlineAt: number;
  leaseExpiresAt: number;
  /** When the step became ready to be claimed (ms): queued with nothing left to wait for, a retry's backoff over. */
  readyAt: number;
  /** When this claim leased it (ms): the attempt's start. */
  claimedAt: number;
  /** How long the attempt may wait for capacity (docs/flow-control.md); null or absent: no bound. */
  queueTimeoutMs?: number | null;
}

export type AttemptOutcome = 'succeeded' | 'failed' | 'timed_out' | 'cancelled';

export interface Completion {
  runId: string;
  stepName: string;
  attempt: number;
  token: string;
  outcome: AttemptOutcome;
  outputs?: unknown;
  error?: SerializedError;
  artifacts: NewArtifact[];
  hangReport?: Record<string, unknown> | null;
  /** Steps a succeeded attempt added to its run (checked by the worker: validateAdditions). */
  added?: Additions;
}

/** An event produced by a running step (a log line, LLM usage ...), written as it happens. */
export interface StepEvent {
  runId: string;
  stepName: string;
  attempt: number;
  type: string;
  ts: number;
  data: Record<string, unknown>;
}

/**
 * Why a completion was discarded:
 * - `not_running`: the step is not running any more (finished, cancelled, queued again) or does
 *   not exist;
 * - `lease_lost`: it is running under another lease (this one was reaped, or handed to another
 *   worker), or this batch already held a result for the same lease;
 * - `wrong_attempt`: the lease matches but the attempt number does not (a caller bug).
 */
export type Refusal = 'not_running' | 'lease_lost' | 'wrong_attempt';

export type CompletionResult = { applied: true } | { applied: false; refused: Refusal };

/** What the store knows about an attempt whose lease expired, for its hang report. */
export interface ExpiredLease {
  runId: string;
  stepName: string;
  attempt: number;
  tool: string;
  timeoutMs: number;
  startedAt: string | null;
  workerId: string | null;
  leaseExpiresAt: string | null;
  /** The worker's row, if it is still registered. */
  worker: { id: string; pid?: number; host?: string; lastHeartbeatAt: string; info?: Record<string, unknown> } | null;
  now: number;
}

/** Builds the hang report of an attempt reaped after its lease expired (forensics provides one). */
export type LostReportBuilder = (lease: ExpiredLease) => Record<string, unknown>;

/** How `loseWorker` records the attempts of a worker that is gone. */
export interface LoseWorkerOptions {
  /**
   * The error and hang report of each attempt (the report is also emitted as `step.hang_report`).
   * `spared`: the attempt was lost only because another, known step brought the worker down; it
   * does not use up the step's lost-attempt budget (the culprit's attempts do use up its own).
   */
  describe(step: StepRow, culprit: boolean): { error: SerializedError; report: Record<string, unknown> | null; spared?: boolean };
  /**
   * The attempt whose own code brought the worker down (it blocked the event loop). It ends as a
   * failure of the step (`outcome`), counted against `retries.max` like any failed attempt, not
   * against the lost-attempt budget.
   */
  culprit?: { runId: string; stepName: string; attempt: number; outcome: 'failed' | 'timed_out' };
}

export interface LostAttempt {
  runId: string;
  stepName: string;
  attempt: number;
  /** What the attempt was recorded as. */
  status: 'lost' | 'failed' | 'timed_out';
}

/** A cycle whose claim failed after its flush committed: `results` are the flush's. */
export class CycleError extends Error {
  readonly results: CompletionResult[];

  constructor(cause: unknown, results: CompletionResult[]) {
    super(`claim failed: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.results = results;
  }
}
