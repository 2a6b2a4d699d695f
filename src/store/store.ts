/**
 * The storage interface: the only seam between runwarden and its database. The engine, the worker
 * and the HTTP layer never write SQL. Each dialect (sqlite/, postgres/) implements it and passes the
 * same conformance suite (test/conformance).
 *
 * Writes go through `transaction(fn)`: the engine composes a transition (a claim, a completion with
 * its outputs, artifacts, state change, events and DAG advancement) from the batch-shaped
 * operations of `Tx`, and the dialect commits it atomically. That is what makes "the LLM answered,
 * but the step is stuck `running` with no artifact" impossible: there is no state between "outputs
 * written" and "step finished".
 */
import type { SerializedError } from '../domain/errors.ts';
import type {
  ArtifactMeta,
  AttemptRecord,
  EventRecord,
  RetryPolicy,
  RunFilter,
  RunRecord,
  StepRecord,
  TextDelta,
  UsageTotals,
  WaitingFor,
  WorkerRecord,
} from '../domain/records.ts';
import type { AttemptState, RunState, StepState } from '../domain/states.ts';
import type { VectorStore } from '../domain/vectors.ts';
import type { FlowFields } from '../domain/flow.ts';
import type { ScheduleStore } from './schedules.ts';
import type { ProviderLimitStore } from '../flow/limit-store.ts';

export interface StepPage {
  afterIdx: number;
  limit: number;
}

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
  /** Null or absent: DEFAULT_MAX_STEPS. */
  maxSteps?: number | null;
  /** Its steps' default priority and concurrency key. @default NO_FLOW */
  flow?: FlowFields;
  /** The run this one reruns. @default null */
  rerunOf?: string | null;
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
  /** The step that added it at runtime. @default null (a step of the plan) */
  addedBy?: string | null;
  /** @default null */
  outputsFrom?: string | null;
  /** Claim priority and concurrency key (docs/flow-control.md). @default NO_FLOW */
  flow?: FlowFields;
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

export interface NewArtifact extends Omit<ArtifactMeta, 'size' | 'createdAt'> {
  content: Uint8Array;
  /** Epoch ms. */
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
  pendingDeps?: number;
  outputsFrom?: string | null;
  awaitingSignal?: string | null;
  awaitingSince?: number | null;
  reusedFrom?: string | null;
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

/** Steps to append to a step's dependents (steps added at runtime that depend on it). */
export interface DependentsAppend {
  runId: string;
  name: string;
  add: string[];
  /** Only while the step still holds this lease (the step adding them checks it still owns itself). */
  expectToken?: string;
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

/** A lease a worker holds: the step it is on and the token it was claimed with. */
export interface LeaseKey {
  runId: string;
  name: string;
  token: string;
}

/**
 * A running attempt that waits, or waited, for capacity (docs/flow-control.md#waiting-for-capacity):
 * its deadline moved by the wait, and what it waits for now (null: nothing any more).
 */
export interface CapacityWaitUpdate extends LeaseKey {
  deadlineAt: number;
  waitingFor: WaitingFor | null;
}

export interface RunPatch {
  status?: RunState;
  startedAt?: number;
  finishedAt?: number;
  error?: SerializedError | null;
  cancelRequested?: boolean;
}

/**
 * A run's bookkeeping columns as a transaction holds them (Tx.lockRuns): what the engine needs to
 * reserve seq numbers, count finished steps and decide when and how the run ends. Times in epoch ms.
 */
export interface RunBook {
  id: string;
  status: RunState;
  startedAt: number | null;
  finishedAt: number | null;
  /** The highest seq taken by this run's events so far. */
  lastSeq: number;
  stepsDone: number;
  stepsTotal: number;
  stepsFailed: number;
  cancelRequested: boolean;
  createdAt: number;
  usage: UsageTotals;
}

/** A queued step held back by its full concurrency key (Tx.announceKeyWaits). */
export interface KeyWait {
  step: StepRow;
  keyRunning: number;
  /** The earliest deadline of the key's running steps (epoch ms): a slot frees by then. */
  nextSlotBy: number | null;
}

/** The running steps of a concurrency key (docs/flow-control.md#concurrency-keys). Times in epoch ms. */
export interface KeyRunning {
  key: string;
  running: number;
  /** The earliest deadline among them: a slot frees by then at the latest. */
  nextSlotBy: number | null;
}

/** A concurrency key at its limit with ready steps waiting for it. */
export interface SaturatedKey extends KeyRunning {
  limit: number;
  waiting: number;
  /** When the longest-waiting of them became ready. */
  since: number;
}

/** A run row plus internals. */
export interface RunRow extends Omit<RunRecord, 'maxSteps'> {
  stepsFailed: number;
  cancelRequested: boolean;
  /** As the request gave it; null: DEFAULT_MAX_STEPS. */
  maxSteps: number | null;
}

/**
 * A run's signal of one name (docs/waits-and-reruns.md): `sentAt` once it was sent (with its
 * payload), `awaitedAt` once a step waited for it. Times in epoch ms.
 */
export interface SignalRow {
  runId: string;
  name: string;
  payload: unknown;
  sentAt: number | null;
  awaitedAt: number | null;
}

/** The hang report of an attempt that has already ended (a wait that timed out after it). */
export interface AttemptReport {
  runId: string;
  stepName: string;
  attempt: number;
  hangReport: Record<string, unknown>;
}

/** An artifact copied into another run (a rerun reusing a step): a new id, the same content. */
export interface ArtifactCopy {
  fromId: string;
  id: string;
  runId: string;
}

export interface ClaimOptions {
  workerId: string;
  limit: number;
  now: number;
  leaseMs: number;
}

/**
 * What a claim returns of each step it leased (a dialect may return the whole row), and when the
 * step had become ready (its `ready_at` before the claim cleared it; ms): the queue wait is the
 * claim's time minus this.
 */
export type ClaimedRow = Pick<StepRow, 'runId' | 'name' | 'tool' | 'attempts' | 'leaseToken' | 'inputs' | 'resolvedInputs' | 'timeoutMs' | 'queueTimeoutMs'> & { wasReadyAt: number };

export interface RenewResult {
  /** Tokens whose lease was extended. */
  renewed: string[];
  /** Of those, the ones whose step has been asked to cancel. */
  cancel: string[];
}

export interface Tx {
  insertRun(run: NewRun): Promise<void>;
  /** insertRun for many (a batch, a group commit): one write per table where the dialect can. */
  insertRuns(runs: readonly NewRun[]): Promise<void>;
  insertSteps(steps: NewStep[]): Promise<void>;
  /**
   * The books of these runs (missing ids are absent), locked until the transaction ends: the lock
   * is what keeps seq strictly increasing under concurrent writers. The engine computes the new
   * books (src/engine/run-books.ts) and hands the changed ones to `writeRuns`.
   */
  lockRuns(runIds: readonly string[]): Promise<RunBook[]>;
  /** Writes the books' status, times, lastSeq and counters (runs this transaction locked). */
  writeRuns(books: readonly RunBook[]): Promise<void>;
  /** Sets the run's error unless it has one (the first failure is kept); returns the one it holds. */
  setRunError(runId: string, error: SerializedError): Promise<SerializedError | null>;
  insertEvents(events: Array<NewEvent & { seq: number }>): Promise<void>;
  getRun(id: string): Promise<RunRow | null>;
  /** Rows for the given (runId, name) keys; missing keys are simply absent. */
  getSteps(keys: ReadonlyArray<{ runId: string; name: string }>): Promise<StepRow[]>;
  getRunSteps(runId: string): Promise<StepRow[]>;
  /** Applies each update whose expectations hold; returns which did (same order). */
  updateSteps(updates: StepUpdate[]): Promise<boolean[]>;
  /**
   * updateSteps for updates that end steps: for each that applied, the step's dependents as its
   * row holds them after the update, else null. Steps added at runtime may have joined them since
   * the transaction read the step (PostgreSQL transactions interleave: the store returns the row's
   * own); a store whose transactions never interleave (SQLite) may return `dependents`, what was read.
   */
  endSteps(updates: Array<StepUpdate & { dependents: string[] }>): Promise<Array<string[] | null>>;
  /**
   * Appends to the dependents of steps that have not ended (pending, queued, running) and, with
   * `expectToken`, still hold that lease; returns which applied (same order). A step that ended
   * meanwhile is left as it is: the caller reads it again. Each step at most once per call.
   */
  appendDependents(appends: DependentsAppend[]): Promise<boolean[]>;
  updateRun(id: string, expectStatus: readonly RunState[], patch: RunPatch): Promise<boolean>;
  /** Decrements pending_deps of the named steps; returns the rows (after the update). */
  decrementPending(runId: string, names: string[]): Promise<StepRow[]>;
  /**
   * Moves up to `limit` ready steps (queued, ready_at <= now) to running with a fresh lease, bumping
   * their attempt counter and setting their deadline; returns the updated rows, each with the
   * `ready_at` it had before (`wasReadyAt`).
   */
  claimReady(opts: ClaimOptions): Promise<ClaimedRow[]>;
  /**
   * Ends attempts that are still running (their step is running in that attempt) and writes their
   * row, once: an attempt in progress has none, it lives in its step's row (attempts, worker_id,
   * attempt_started_at, deadline_at). Returns which were running. Called before the step's own
   * update moves it on.
   */
  finishAttempts(updates: AttemptUpdate[]): Promise<boolean[]>;
  insertArtifacts(artifacts: NewArtifact[]): Promise<void>;
  /** Running steps whose lease expired before `now`. */
  expiredLeases(now: number, limit: number): Promise<StepRow[]>;
  /**
   * Extends leases held by `workerId` (each found by its step, its token checked) to `until`, except for steps already
   * past their deadline by more than `graceMs` (so a worker that cannot stop a step cannot keep it).
   */
  renewLeases(workerId: string, leases: readonly LeaseKey[], now: number, until: number, graceMs: number): Promise<RenewResult>;
  /** Writes the moved deadlines and what they wait for of a worker's running attempts (token-checked). */
  setCapacityWaits(workerId: string, waits: readonly CapacityWaitUpdate[]): Promise<void>;
  /**
   * Running steps whose lease one of these workers holds: a supervisor saw their process die (or
   * killed it) and ends their attempts at once instead of waiting for the leases to expire.
   */
  runningByWorkers(workerIds: string[]): Promise<StepRow[]>;

  /**
   * Steps begin to wait for these signals (runId, name): each signal's row is created, or marked
   * awaited, and returned as it is after that (same order): `sentAt` set means it was sent already.
   * PostgreSQL: a transaction sending the same signal at the same moment is ordered against this
   * one by the row (one waits for the other to commit), so a wait never misses a send.
   */
  awaitSignals(keys: ReadonlyArray<{ runId: string; name: string }>, at: number): Promise<SignalRow[]>;
  /**
   * Records a signal as sent unless it was already: `sent` false means an earlier send is kept
   * (`row` is that one). Ordered against `awaitSignals` of the same signal as described there.
   */
  sendSignal(s: { runId: string; name: string; payload: unknown; sentAt: number }): Promise<{ sent: boolean; row: SignalRow }>;
  /** The run's steps waiting (pending) for this signal, in plan order. */
  stepsAwaiting(runId: string, name: string): Promise<StepRow[]>;
  /**
   * Steps waiting for a signal whose wait ended before `now` (deadline_at), oldest first. PostgreSQL
   * skips rows another transaction holds (a signal releasing them right now).
   */
  expiredWaits(now: number, limit: number): Promise<StepRow[]>;
  /**
   * Queued steps ready for longer than their queueTimeoutMs (locked, PostgreSQL), each with how
   * many steps of its concurrency key run now (0 without a key).
   */
  expiredQueueWaits(now: number, limit: number): Promise<Array<{ step: StepRow; keyRunning: number }>>;
  /**
   * Queued, ready steps whose concurrency key has as many steps running as their limit, not yet
   * announced since their last claim; marks them announced at `now` (PostgreSQL: locked without
   * waiting). Each with its key's running count and the earliest deadline among those steps.
   */
  announceKeyWaits(now: number, limit: number): Promise<KeyWait[]>;
  /** Sets the hang report of attempts that ended earlier (whatever their status). */
  setAttemptReports(reports: AttemptReport[]): Promise<void>;
  /** Copies artifacts (content included) under new ids into another run, keeping step, attempt and name. */
  copyArtifacts(copies: ArtifactCopy[]): Promise<void>;
}

export interface ListRunsFilter extends RunFilter {
  /** Return runs strictly before this (createdAt, id) position, newest first. */
  before?: { createdAt: number; id: string };
  limit: number;
}

export interface PruneOptions {
  /** Epoch ms: runs that finished before this. */
  before: number;
  /** Runs per transaction. */
  limit: number;
  /** Keep the vectors the pruned runs stored (a collection meant to outlive them). @default false */
  keepVectors?: boolean;
}

/** Rows one prune deleted. */
export interface PruneCounts {
  runs: number;
  steps: number;
  attempts: number;
  events: number;
  artifacts: number;
  vectors: number;
  signals: number;
}

export interface SpaceUsage {
  /** Bytes the database takes (SQLite: pages in the file; PostgreSQL: the runwarden tables with indexes and TOAST). */
  bytes: number;
  /** Of those, bytes free for reuse (SQLite: the freelist). PostgreSQL: unknown without scanning, 0. */
  freeBytes: number;
  /**
   * How free space goes back to the file system: 'incremental' (SQLite, reclaimSpace does it),
   * 'vacuum' (SQLite created before incremental auto-vacuum: `runwarden db vacuum`), 'server'
   * (PostgreSQL: autovacuum makes it reusable; VACUUM FULL returns it).
   */
  reclaim: 'incremental' | 'vacuum' | 'server';
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
  /** Cron schedules and their tick bookkeeping (schedules.ts). */
  readonly schedules: ScheduleStore;
  /** Provider limits shared by every worker on the store (docs/flow-control.md#provider-limits). */
  readonly providerLimits: ProviderLimitStore;

  migrate(): Promise<{ applied: number[] }>;
  migrationStatus(): Promise<MigrationStatus>;
  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;

  getRun(id: string): Promise<RunRow | null>;
  findRunByIdempotencyKey(key: string): Promise<RunRow | null>;
  /** The ids of the runs holding these idempotency keys (keys without a run are absent). */
  findRunIdsByIdempotencyKeys(keys: readonly string[]): Promise<Map<string, string>>;
  listRuns(filter: ListRunsFilter): Promise<RunRow[]>;
  /** The steps of a run in plan order; with `page`, those with idx > `afterIdx`, at most `limit`. */
  getRunSteps(runId: string, page?: StepPage): Promise<StepRow[]>;
  getStep(runId: string, name: string): Promise<StepRow | null>;
  /** The plan a run was created with, as submitted; null for an unknown run. */
  getPlan(runId: string): Promise<unknown>;
  listAttempts(runId: string, stepName: string): Promise<AttemptRecord[]>;
  listEvents(runId: string, afterSeq: number, limit: number): Promise<EventRecord[]>;
  listArtifacts(runId: string): Promise<ArtifactMeta[]>;
  getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer } | null>;
  /** Running steps past their deadline or on an expired lease. */
  stuckSteps(now: number): Promise<StepRow[]>;
  /** How many steps of each of these concurrency keys run now, and the earliest of their deadlines. */
  runningByKey(keys: readonly string[]): Promise<KeyRunning[]>;
  /** Concurrency keys that hold ready steps back (as many running as their limit), most waiting first. */
  saturatedKeys(now: number, limit?: number): Promise<SaturatedKey[]>;
  /** Running steps whose worker said they wait at a provider's gate (an older attempt's note included: check it). */
  capacityWaiters(limit?: number): Promise<StepRow[]>;
  stepCounts(): Promise<Record<StepState, number>>;
  runCounts(): Promise<Record<RunState, number>>;
  /** Earliest ready_at among queued steps (to time the next poll), or null. */
  nextReadyAt(): Promise<number | null>;

  upsertWorker(w: WorkerRecord): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;
  deleteWorker(id: string): Promise<void>;

  /**
   * Deletes up to `limit` finished runs (succeeded, failed, cancelled) that finished before
   * `before`, oldest first, with everything they own, in one transaction. Runs that have not
   * finished are never touched. Returns what went; `runs < limit` means nothing older is left.
   */
  pruneRuns(o: PruneOptions): Promise<PruneCounts>;
  /** How many runs `pruneRuns` with this `before` would delete in all. */
  countPrunable(before: number): Promise<number>;
  /** The database's size and the part of it that is free (deleted rows not yet returned). */
  spaceUsage(): Promise<SpaceUsage>;
  /**
   * Returns up to `maxPages` free pages to the file system (SQLite in incremental auto-vacuum
   * mode, one short write each call); 0 where the store cannot (PostgreSQL: its own VACUUM).
   */
  reclaimSpace(maxPages: number): Promise<number>;
  /**
   * A full vacuum. SQLite: rewrites the file without its free pages and switches it to incremental
   * auto-vacuum (holds the write lock throughout: other writers wait). PostgreSQL: plain VACUUM
   * (ANALYZE) of runwarden's tables, which makes deleted rows' space reusable without locking.
   */
  vacuum(): Promise<void>;

  /** Round trip to the database; resolves with the latency in ms or throws. */
  ping(): Promise<number>;

  /**
   * Commits a write that changes nothing (SQLite: the schema header's user_version set to itself;
   * PostgreSQL: a transaction that takes a transaction id), and fails as a real write would:
   * STORAGE_FULL when the disk is full, also when the last real write failed so and none has
   * succeeded since (a one-page probe can fit where a run cannot).
   */
  probeWrite(): Promise<void>;

  /** Local and (for PostgreSQL) cross-process notifications. */
  publish(n: StoreNotification): void;
  subscribe(fn: (n: StoreNotification) => void): () => void;

  close(): Promise<void>;
}
