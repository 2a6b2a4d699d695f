/** Rows as the engine, the API and the CLI see them (the store maps columns to these). */
import type { SerializedError } from './errors.ts';
import type { AttemptState, RunState, StepState } from './states.ts';
import type { ConcurrencyKey } from './flow.ts';

export interface RetryPolicy {
  /** Extra attempts after a failed or timed-out one. @default 0 */
  max: number;
  /** First backoff; doubles each retry, with full jitter. @default 1000 */
  backoffMs: number;
  /** Cap on one backoff. @default 60000 */
  maxBackoffMs: number;
}

export interface UsageTotals {
  inputTokens: number;
  outputTokens: number;
  calls: number;
}

export interface RunRecord {
  id: string;
  status: RunState;
  goal: string | null;
  labels: Record<string, string>;
  idempotencyKey: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** Its steps, those added at runtime included. */
  stepsTotal: number;
  stepsDone: number;
  /** The most steps it may reach by adding steps at runtime. */
  maxSteps: number;
  /** Claim priority of its steps (higher first; docs/flow-control.md). */
  priority: number;
  /** Its steps' concurrency key, or null. */
  concurrency: ConcurrencyKey | null;
  /** How long each of its steps may wait for capacity (docs/flow-control.md#waiting-for-capacity); null: no bound. */
  queueTimeoutMs: number | null;
  usage: UsageTotals;
  error: SerializedError | null;
  /** The run this one reruns (`POST /runs/:id/rerun`, docs/waits-and-reruns.md); null otherwise. */
  rerunOf: string | null;
}

/**
 * What a step waits for (docs/flow-control.md#waiting-for-capacity): `used` of `cap` is how full the
 * limit is, `since` when the wait began.
 * - `provider`: its attempt is inside a call that waits at a provider's gate (its limits, or a
 *   pause after a 429/529); `nextSlotAt` is when the gate expects a slot. As its worker last said
 *   (every heartbeat while it waits).
 * - `concurrency`: it is queued and ready, but its concurrency key has `cap` steps running;
 *   `nextSlotBy` is the earliest deadline among them: a slot frees by then at the latest.
 */
export type WaitingFor =
  | { kind: 'provider'; provider: string; limit: 'paused' | 'concurrency' | 'requestsPerMinute' | 'tokensPerMinute'; used: number; cap: number; nextSlotAt: string; since: string; attempt: number }
  | { kind: 'concurrency'; key: string; used: number; cap: number; nextSlotBy: string | null; since: string };

export interface StepRecord {
  runId: string;
  name: string;
  /** Position in the plan (steps added at runtime follow, in the order they were added), for stable ordering. */
  idx: number;
  tool: string;
  status: StepState;
  dependsOn: string[];
  /** Inputs as submitted, templates unresolved. */
  inputs: Record<string, unknown>;
  /** Inputs with templates resolved; set when the step is queued. */
  resolvedInputs: Record<string, unknown> | null;
  outputs: unknown;
  error: SerializedError | null;
  timeoutMs: number;
  retries: RetryPolicy;
  attempts: number;
  lostAttempts: number;
  readyAt: string | null;
  startedAt: string | null;
  finishedAt: string | null;
  /** The step whose tool added this one at runtime; null for a step of the plan. */
  addedBy: string | null;
  /**
   * An added step whose outputs this step takes (its tool asked for them with `outputsFrom`): it is
   * `pending` until that step ends. Null otherwise.
   */
  outputsFrom: string | null;
  /** Claim priority (its own or its run's). */
  priority: number;
  /** The concurrency key it runs under (its own or its run's), or null. */
  concurrency: ConcurrencyKey | null;
  /** How long it may wait for capacity before it fails with QUEUE_TIMEOUT; null: no bound. */
  queueTimeoutMs: number | null;
  /** What holds it back now, if anything (docs/flow-control.md#waiting-for-capacity). */
  waitingFor: WaitingFor | null;
  /**
   * A `wait` step: the signal it waits for (`pending`, no worker, until `deadlineAt`) or waited for
   * once it ended; null for other steps (docs/waits-and-reruns.md).
   */
  awaitingSignal: string | null;
  /** When it began to wait for `awaitingSignal`. */
  awaitingSince: string | null;
  /**
   * A step of a rerun that did not run again: the run whose attempt produced its outputs (and
   * artifacts), which it reused. Null for a step that ran in this run.
   */
  reusedFrom: string | null;
  /** Present while running. */
  workerId: string | null;
  leaseExpiresAt: string | null;
  deadlineAt: string | null;
}

export interface AttemptRecord {
  runId: string;
  stepName: string;
  attempt: number;
  status: AttemptState;
  workerId: string;
  startedAt: string;
  finishedAt: string | null;
  deadlineAt: string;
  error: SerializedError | null;
  hangReport: Record<string, unknown> | null;
}

export interface EventRecord {
  seq: number;
  ts: string;
  type: string;
  runId: string;
  stepName?: string;
  attempt?: number;
  data: Record<string, unknown>;
}

/**
 * Text a step is generating, published as it arrives (an `llm.delta` frame on the run's event
 * stream). Never stored: the final text is the step's output. Frames can be dropped (a slow
 * reader); `offset` lets a reader see a gap, `reset` says a retried call starts the text over.
 */
export interface TextDelta {
  runId: string;
  stepName: string;
  attempt: number;
  /** Epoch ms at which the frame was cut. */
  ts: number;
  text: string;
  /** Characters of this call's text published before this frame. */
  offset: number;
  /** The call was retried: discard the text shown so far for this attempt. */
  reset?: true;
}

export interface ArtifactMeta {
  id: string;
  runId: string;
  stepName: string;
  attempt: number;
  name: string;
  mime: string;
  size: number;
  createdAt: string;
}

export interface WorkerRecord {
  id: string;
  pid: number;
  host: string;
  state: string;
  startedAt: string;
  lastHeartbeatAt: string;
  /** Free-form numbers the worker reports: loop delay, in-flight steps, restarts ... */
  info: Record<string, unknown>;
}

export interface RunWithSteps extends RunRecord {
  /** In plan order; the first MAX_INLINE_STEPS only when `stepsTruncated` (page on with `GET /runs/:id/steps`). */
  steps: StepRecord[];
  stepsTruncated?: true;
}

/**
 * Steps returned inline with a run. A 10,000-step run answered whole is 4.6 MB of JSON and held the
 * API's loop ~240 ms to read and serialise; 500 steps are ~230 KB (~10-20 ms).
 */
export const MAX_INLINE_STEPS = 500;

export interface StepDetail extends StepRecord {
  attemptsDetail: AttemptRecord[];
  hangReports: Record<string, unknown>[];
}

/** Which runs a list shows (GET /runs, `runwarden runs list`, Store.listRuns). */
export interface RunFilter {
  status?: RunState;
  /** `key=value` label filter. */
  label?: { key: string; value: string };
  /** Created at or after this time (epoch ms). */
  createdAfter?: number;
  /** Created before this time (epoch ms). */
  createdBefore?: number;
  /** The goal contains this text, case-insensitively (ASCII case folding in SQLite). */
  goal?: string;
  /** At least one step of the run uses this tool. */
  tool?: string;
}
