/**
 * What the HTTP API and the CLI may ask of the engine. The HTTP layer depends on this interface
 * only; `EngineApi` in api.ts implements it on top of a Store.
 */
import type { SaturatedLimit } from './saturation.ts';
import type { ToolInfo } from '../tools/registry.ts';
import type { ArtifactMeta, AttemptRecord, EventRecord, RunFilter, RunRecord, RunWithSteps, StepDetail, StepRecord, TextDelta, WorkerRecord } from '../domain/records.ts';
import type { PruneRequest, PruneResult } from './retention.ts';
import type { ScheduleRecord } from '../domain/schedule.ts';

export interface ListRunsQuery extends RunFilter {
  /** Opaque cursor from a previous page. */
  cursor?: string;
  /** @default 50, at most 500 */
  limit?: number;
}

export interface RunPage {
  runs: RunRecord[];
  nextCursor: string | null;
}

/** What `POST /runs/:id/signals/:name` answers. */
export interface SignalResult {
  runId: string;
  name: string;
  sentAt: string;
  /** The steps that were waiting for it and now succeeded; empty: it is kept for a step that waits later. */
  released: string[];
}

export interface StuckStep {
  runId: string;
  stepName: string;
  attempt: number;
  workerId: string | null;
  reason: 'past_deadline' | 'lease_expired';
  deadlineAt: string | null;
  leaseExpiresAt: string | null;
}

/** One worker process as its supervisor sees it (`runwarden start` / `runwarden worker`). */
export interface SupervisedWorker {
  slot: number;
  pid: number | null;
  /** starting | running | stalled (event loop blocked) | killing | stopping | restarting (backoff) | stopped */
  state: string;
  startedAt: string | null;
  /** Times this slot's process was replaced. */
  restarts: number;
  /** Last heartbeat from the worker's event loop. */
  lastHeartbeatAt: string | null;
  heartbeatAgeMs: number | null;
  /** p99 event-loop delay over the last heartbeat period. */
  loopDelayP99Ms: number | null;
  rssBytes: number | null;
  /** The claim loops of the process, as the workers table names them. */
  workerIds: string[];
  steps: Array<{ runId: string; stepName: string; attempt: number }>;
  /** How long its event loop has been blocked, when it is. */
  blockedMs: number | null;
  /** The step whose code blocks it, when the watchdog could tell. */
  blockingStep: { runId: string; stepName: string; attempt: number } | null;
  /** `lastLines`: the last lines it wrote (stdout and stderr, redacted) when it crashed or was killed. */
  lastExit: { at: string; code: number | null; signal: string | null; classification: string; lastLines?: string[] } | null;
}

export interface SupervisorStatus {
  /** Worker processes wanted. */
  desired: number;
  /** Worker processes up and heartbeating. */
  alive: number;
  workers: SupervisedWorker[];
  totals: { restarts: number; crashes: number; stalls: number; stallKills: number };
}

export interface HealthDetailed {
  status: 'ok' | 'degraded';
  /** `ok` is false when the database cannot be read, or (`writable: false`) cannot be written, e.g. a full disk. */
  database: { ok: boolean; dialect: string; error?: string; latencyMs?: number; writable?: boolean; freeBytes?: number };
  migrations: { current: number; latest: number; pending: number };
  workers: WorkerRecord[];
  queue: { queued: number; running: number; pending: number };
  eventLoop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number };
  providers: Array<{ name: string; type: string; baseUrl?: string }>;
  /** Queued steps whose ready time is furthest in the past: how long the queue has been waiting. */
  oldestQueuedMs?: number | null;
  /** The worker processes this API process supervises (absent with `--workers 0` or in-process workers). */
  supervisor?: SupervisorStatus;
  /** The limits holding work back now (saturation.ts). */
  limits?: SaturatedLimit[];
}

/** `/schedules` (engine/schedules.ts). */
export interface ScheduleFacade {
  create(body: unknown): Promise<ScheduleRecord>;
  list(): Promise<ScheduleRecord[]>;
  get(id: string): Promise<ScheduleRecord>;
  delete(id: string): Promise<ScheduleRecord>;
}

export interface EngineFacade {
  readonly schedules: ScheduleFacade;
  /**
   * Validates the request (a JSON object: the HTTP layer checks that much; PLAN_INVALID with one
   * detail per problem) and creates the run.
   */
  createRun(body: Record<string, unknown>): Promise<{ run: RunWithSteps; created: boolean }>;
  /**
   * `{ runs: [...] }`, each item a createRun request: all valid or none created (PLAN_INVALID, each
   * detail's path starting `runs.<i>.`); then all created in one transaction. Per item, in order,
   * the run's id and whether this call created it (false: its idempotencyKey named a run already).
   */
  createRuns(body: unknown): Promise<{ runs: Array<{ id: string; created: boolean }> }>;
  getRun(id: string): Promise<RunWithSteps>;
  listRuns(query: ListRunsQuery): Promise<RunPage>;
  cancelRun(id: string): Promise<RunWithSteps>;
  /**
   * Sends signal `name` to a run (docs/waits-and-reruns.md): NOT_FOUND, RUN_FINISHED (it ended or is
   * being cancelled), SIGNAL_ALREADY_SENT, INVALID_SIGNAL (the name).
   */
  signal(runId: string, name: string, payload: unknown): Promise<SignalResult>;
  /** A new run from a finished one, reusing what succeeded upstream of `from`: NOT_FOUND, RUN_NOT_FINISHED, UNKNOWN_STEP, NOTHING_TO_RERUN. */
  rerunRun(runId: string, from?: string[]): Promise<RunWithSteps>;
  /** Deletes finished runs older than `olderThanMs` (default: the `retention` setting); see retention.ts. */
  pruneRuns(req: Omit<PruneRequest, 'olderThanMs'> & { olderThanMs?: number }): Promise<PruneResult>;
  listEvents(runId: string, afterSeq: number, limit?: number): Promise<EventRecord[]>;
  /** Called (with no payload) whenever new events may exist for runId; returns an unsubscribe. */
  onRunEvents(runId: string, listener: () => void): () => void;
  /** Called with each `llm.delta` frame of runId's running steps (never stored); returns an unsubscribe. */
  onRunDeltas(runId: string, listener: (delta: TextDelta) => void): () => void;
  getStep(runId: string, name: string): Promise<StepDetail>;
  /** A page of a run's steps in plan order: idx > afterIdx, at most `limit`; `nextAfter` null on the last page. */
  listSteps(runId: string, afterIdx: number, limit: number): Promise<{ steps: StepRecord[]; nextAfter: number | null }>;
  listAttempts(runId: string, name: string): Promise<AttemptRecord[]>;
  listArtifacts(runId: string): Promise<ArtifactMeta[]>;
  getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer }>;
  healthDetailed(): Promise<HealthDetailed>;
  stuckSteps(): Promise<StuckStep[]>;
  /** The tools plans can use, and how each runs (isolation). */
  listTools(): ToolInfo[];
  /** Prometheus text exposition. */
  metrics(): Promise<string>;
}
