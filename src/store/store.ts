/**
 * The storage interface: the only seam between runwarden and its database. The engine, the worker
 * and the HTTP layer never write SQL. Each dialect (sqlite/, postgres/) implements it and passes the
 * same conformance suite (test/conformance).
 *
 * Writes go through `transaction(fn)`: the engine composes a transition (a claim, a completion with
 * its outputs, artifacts, state change, events and DAG advancement) from the batch-shaped
 * operations of `Tx`, and the dialect commits it atomically. That is what makes the seed-004
 * failure (LLM answered, step stuck `running`, no artifact) impossible: there is no state between
 * "outputs written" and "step finished".
 */
import type { SerializedError } from '../domain/errors.ts';
import type {
  ArtifactMeta,
  AttemptRecord,
  EventRecord,
  RetryPolicy,
  RunRecord,
  StepRecord,
  TextDelta,
  UsageTotals,
  WorkerRecord,
} from '../domain/records.ts';
import type { AttemptState, RunState, StepState } from '../domain/states.ts';
import type { VectorStore } from '../domain/vectors.ts';

export interface MigrationStatus {
  dialect: string;
  current: number;
  latest: number;
  pending: number[];
}

export interface NewRun {
  id: string;
  goal: string | null;
  labels: Record<string, string>;
  idempotencyKey: string | null;
  plan: unknown;
  stepsTotal: number;
  createdAt: number;
}

export interface NewStep {
  runId: string;
  name: string;
  idx: number;
  tool: string;
  status: 'pending' | 'queued';
  dependsOn: string[];
  dependents: string[];
  inputs: Record<string, unknown>;
  resolvedInputs: Record<string, unknown> | null;
  pendingDeps: number;
  timeoutMs: number;
  retries: RetryPolicy;
  readyAt: number | null;
}

export interface NewEvent {
  runId: string;
  type: string;
  stepName?: string;
  attempt?: number;
  data: Record<string, unknown>;
  /** Epoch ms. */
  ts: number;
}

export interface NewArtifact {
  id: string;
  runId: string;
  stepName: string;
  attempt: number;
  name: string;
  mime: string;
  content: Uint8Array;
  createdAt: number;
}

/** A step row plus the internals the engine needs and the API does not show. */
export interface StepRow extends StepRecord {
  dependents: string[];
  pendingDeps: number;
  leaseToken: string | null;
  cancelRequested: boolean;
}

export interface StepPatch {
  status?: StepState;
  resolvedInputs?: Record<string, unknown> | null;
  outputs?: unknown;
  error?: SerializedError | null;
  readyAt?: number | null;
  startedAt?: number | null;
  finishedAt?: number | null;
  workerId?: string | null;
  leaseToken?: string | null;
  leaseExpiresAt?: number | null;
  deadlineAt?: number | null;
  lostAttempts?: number;
  cancelRequested?: boolean;
}

export interface StepUpdate {
  runId: string;
  name: string;
  /** The update applies only if the step is in one of these states ... */
  expectStatus: readonly StepState[];
  /** ... and, when given, still holds this lease token. */
  expectToken?: string;
  patch: StepPatch;
}

export interface AttemptUpdate {
  runId: string;
  stepName: string;
  attempt: number;
  status: AttemptState;
  finishedAt: number;
  error: SerializedError | null;
  hangReport?: Record<string, unknown> | null;
}

export interface NewAttempt {
  runId: string;
  stepName: string;
  attempt: number;
  workerId: string;
  startedAt: number;
  deadlineAt: number;
}

export interface RunPatch {
  status?: RunState;
  startedAt?: number;
  finishedAt?: number;
  error?: SerializedError | null;
  cancelRequested?: boolean;
}

export interface RunDelta {
  events: number;
  stepsDone: number;
  stepsFailed: number;
  usage?: UsageTotals;
  /** Move the run from queued to running at this time, if it is still queued. */
  startAt?: number;
  /**
   * When this delta brings the run's finished steps to its total and the run is still queued or
   * running, finish it in the same write at this time (cancelled if cancel was requested, failed if
   * a step did not succeed, else succeeded), reserving one more seq, the block's last, for its
   * `run.finished` (see RunProgress.finished).
   */
  finishAt?: number;
}

export interface RunProgress {
  status: RunState;
  stepsDone: number;
  stepsTotal: number;
  stepsFailed: number;
  cancelRequested: boolean;
  createdAt: number;
  usage: UsageTotals;
  /** First seq of the reserved block. */
  firstSeq: number;
  /** Whether this call started the run (the block's first seq is then for run.started). */
  started: boolean;
  /** Set when this call finished the run (RunDelta.finishAt): its final status and the seq of `run.finished`. */
  finished?: { status: 'succeeded' | 'failed' | 'cancelled'; from: 'queued' | 'running'; seq: number };
}

/** A run row plus internals. */
export interface RunRow extends RunRecord {
  stepsFailed: number;
  cancelRequested: boolean;
}

export interface ClaimOptions {
  workerId: string;
  limit: number;
  now: number;
  leaseMs: number;
  /** Called per claimed step to mint its lease token. */
  token: () => string;
}

/** What a claim returns of each step it leased (a dialect may return the whole row). */
export type ClaimedRow = Pick<StepRow, 'runId' | 'name' | 'tool' | 'attempts' | 'leaseToken' | 'inputs' | 'resolvedInputs' | 'timeoutMs'>;

export interface RenewResult {
  /** Tokens whose lease was extended. */
  renewed: string[];
  /** Of those, the ones whose step has been asked to cancel. */
  cancel: string[];
}

export interface Tx {
  insertRun(run: NewRun): Promise<void>;
  insertSteps(steps: NewStep[]): Promise<void>;
  /**
   * The one statement per run and transaction that keeps a run's books: reserves `events` seq
   * numbers, adds counters, and (with `startAt`) moves a queued run to running, reserving one more
   * seq, the block's first, for its `run.started`. The row lock taken here is what keeps seq
   * strictly increasing under concurrent writers.
   */
  advanceRun(runId: string, delta: RunDelta): Promise<RunProgress>;
  insertEvents(events: Array<NewEvent & { seq: number }>): Promise<void>;
  getRun(id: string): Promise<RunRow | null>;
  /** Rows for the given (runId, name) keys; missing keys are simply absent. */
  getSteps(keys: ReadonlyArray<{ runId: string; name: string }>): Promise<StepRow[]>;
  getRunSteps(runId: string): Promise<StepRow[]>;
  /** Applies each update whose expectations hold; returns which did (same order). */
  updateSteps(updates: StepUpdate[]): Promise<boolean[]>;
  updateRun(id: string, expectStatus: readonly RunState[], patch: RunPatch): Promise<boolean>;
  /** Decrements pending_deps of the named steps; returns the rows (after the update). */
  decrementPending(runId: string, names: string[]): Promise<StepRow[]>;
  /**
   * Moves up to `limit` ready steps (queued, ready_at <= now) to running with a fresh lease, bumping
   * their attempt counter and setting their deadline; returns the updated rows.
   */
  claimReady(opts: ClaimOptions): Promise<ClaimedRow[]>;
  insertAttempts(attempts: NewAttempt[]): Promise<void>;
  /** Ends attempts that are still running; returns which were. */
  finishAttempts(updates: AttemptUpdate[]): Promise<boolean[]>;
  insertArtifacts(artifacts: NewArtifact[]): Promise<void>;
  /** Running steps whose lease expired before `now`. */
  expiredLeases(now: number, limit: number): Promise<StepRow[]>;
  /**
   * Extends leases held by `workerId` for the given tokens to `until`, except for steps already
   * past their deadline by more than `graceMs` (so a worker that cannot stop a step cannot keep it).
   */
  renewLeases(workerId: string, tokens: string[], now: number, until: number, graceMs: number): Promise<RenewResult>;
  /** Running steps of a run (for cancellation). */
  runningSteps(runId: string): Promise<StepRow[]>;
  /**
   * Running steps whose lease one of these workers holds: a supervisor saw their process die (or
   * killed it) and ends their attempts at once instead of waiting for the leases to expire.
   */
  runningByWorkers(workerIds: string[]): Promise<StepRow[]>;
}

export interface ListRunsFilter {
  status?: RunState;
  label?: { key: string; value: string };
  /** Return runs strictly before this (createdAt, id) position, newest first. */
  before?: { createdAt: number; id: string };
  limit: number;
}

export type StoreNotification =
  | { kind: 'ready' }
  | { kind: 'events'; runIds: string[] }
  | { kind: 'cancel'; runId: string }
  /** Text a running step generates (lossy, never stored: see TextDelta). */
  | { kind: 'delta'; delta: TextDelta };

export interface Store {
  readonly dialect: 'sqlite' | 'postgres';
  /** Human description of where the data lives (path or redacted URL). */
  readonly location: string;
  readonly vectors: VectorStore;

  migrate(): Promise<{ applied: number[] }>;
  migrationStatus(): Promise<MigrationStatus>;
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;

  getRun(id: string): Promise<RunRow | null>;
  findRunByIdempotencyKey(key: string): Promise<RunRow | null>;
  listRuns(filter: ListRunsFilter): Promise<RunRow[]>;
  getRunSteps(runId: string): Promise<StepRow[]>;
  getStep(runId: string, name: string): Promise<StepRow | null>;
  listAttempts(runId: string, stepName: string): Promise<AttemptRecord[]>;
  listEvents(runId: string, afterSeq: number, limit: number): Promise<EventRecord[]>;
  listArtifacts(runId: string): Promise<ArtifactMeta[]>;
  getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer } | null>;
  /** Running steps past their deadline or on an expired lease. */
  stuckSteps(now: number): Promise<StepRow[]>;
  stepCounts(): Promise<Record<StepState, number>>;
  runCounts(): Promise<Record<RunState, number>>;
  /** Earliest ready_at among queued steps (to time the next poll), or null. */
  nextReadyAt(): Promise<number | null>;

  upsertWorker(w: WorkerRecord): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;
  deleteWorker(id: string): Promise<void>;

  /** Round trip to the database; resolves with the latency in ms or throws. */
  ping(): Promise<number>;

  /** Local and (for PostgreSQL) cross-process notifications. */
  publish(n: StoreNotification): void;
  subscribe(fn: (n: StoreNotification) => void): () => void;

  close(): Promise<void>;
}
