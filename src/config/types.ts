/**
 * The one typed options object. Resolved once (flags > RUNWARDEN_* environment > config file >
 * defaults) by resolve.ts; everything downstream receives the frozen result.
 */
/** A named provider of the `providers` block; the LLM layer owns its shape and documentation. */
import type { ProviderConfig } from '../llm/types.ts';

export type { ProviderConfig };

export interface RunwardenConfig {
  /** API port. @default 7400 */
  port: number;
  /** API bind address; anything but loopback requires `token`. @default '127.0.0.1' */
  host: string;
  /** Where the embedded SQLite file lives. @default './.runwarden' */
  dataDir: string;
  /** `postgres://...` to use PostgreSQL instead of SQLite. @default undefined */
  databaseUrl: string | undefined;
  /** Bearer token for the API (RUNWARDEN_TOKEN). Required when `host` is not loopback. */
  token: string | undefined;
  /** Worker processes under the supervisor. @default CPU count, at least 1 */
  workers: number;
  /** Steps one worker runs at once. @default 256 */
  concurrency: number;
  /** Tool modules to load (each default-exports an array of tool definitions). @default [] */
  tools: string[];
  /**
   * How tools from `tools` modules run when their definition does not say (`isolation`): 'thread'
   * runs each attempt in a worker thread of its own, terminated when the attempt is cut (its
   * JavaScript, timers, sockets and threads stop with it); 'inline' runs it on the worker's event
   * loop (a tool that ignores its signal is abandoned, its processes, threads and sockets closed,
   * but its JavaScript cannot be stopped there). Built-in tools always run inline. @default 'thread'
   */
  toolIsolation: 'thread' | 'inline';
  /**
   * Tool threads each worker process keeps started ahead of need. Starting one loads the tools
   * modules (~100-200 ms on an idle machine, seconds on a loaded one) and costs ~30 MB: more of them
   * let a burst of thread-tool attempts start at once instead of waiting for threads (their
   * deadlines include that wait). @default 1
   */
  toolThreadsWarm: number;
  /** Provider used when a step names none. @default first of: openai key, anthropic key, lab */
  defaultProvider: string | undefined;
  providers: Record<string, ProviderConfig>;
  /** How long a claim stays valid without renewal; a dead worker's steps return after this. @default 3000 */
  leaseMs: number;
  /** How often a worker renews its leases and reports liveness. @default 1000 */
  heartbeatMs: number;
  /**
   * On SIGTERM/SIGINT, how long running steps get to finish before they are handed back to the
   * queue (their attempt recorded as lost, the step re-queued at once). @default 5000
   */
  drainMs: number;
  /**
   * A worker process whose event loop has not turned for this long is stalled: its watchdog captures
   * the blocking JavaScript stack and the step it belongs to, and writes a `loop.blocked` report.
   * @default 500
   */
  loopStallMs: number;
  /**
   * A worker whose event loop stays blocked this long (or past the blocking step's deadline, if that
   * comes first) is killed and replaced; the blocking attempt fails as `loop.blocked`, the worker's
   * other steps are retried elsewhere at once. Keep it below `leaseMs - heartbeatMs` so that the
   * supervisor acts before the leases expire. @default 1500
   */
  loopKillMs: number;
  /** After SIGTERM, how long a worker process gets before SIGKILL. @default 1000 */
  killGraceMs: number;
  /** First delay before a crashed worker process is restarted; doubles per crash in a row. @default 100 */
  restartBackoffMs: number;
  /** Longest delay between restarts of a crash-looping worker (reset after a minute up). @default 10000 */
  restartBackoffMaxMs: number;
  /** How often the reaper looks for expired leases. @default 500 */
  reaperIntervalMs: number;
  /** After a step's signal aborts, how long a tool gets to settle before it is abandoned. @default 1000 */
  abortGraceMs: number;
  /** Deadline for steps that set no `timeoutMs` and whose tool has no default. @default 300000 */
  defaultTimeoutMs: number;
  /** Largest `timeoutMs` a plan may ask for. @default 86400000 (24 h) */
  maxTimeoutMs: number;
  /**
   * How long a step whose run request sets no `queueTimeoutMs` may wait for capacity (a full
   * concurrency key, a provider's limits) before it fails with QUEUE_TIMEOUT. @default undefined (no bound)
   */
  defaultQueueTimeoutMs: number | undefined;
  /** Largest request body the API accepts. @default 1048576 (1 MiB) */
  bodyLimitBytes: number;
  /** Port of the in-process hang lab started when no LLM key is configured (0 = ephemeral). @default 7401 */
  labPort: number;
  /** Start the in-process lab: 'auto' = when no provider key is configured. @default 'auto' */
  lab: 'auto' | 'on' | 'off';
  /**
   * Keep finished runs this long (`30d`, `12h`, `2w`; at least `1h`): the API process deletes older
   * ones with everything they own every hour, as `runwarden runs prune` does. Unset: keep them
   * forever. @default undefined
   */
  retention: string | undefined;
  /**
   * OpenTelemetry: export traces (run, step, attempt, LLM call) over OTLP/HTTP to this base URL
   * (`/v1/traces` is appended, as the OTLP specification says for OTEL_EXPORTER_OTLP_ENDPOINT).
   * Unset: no tracing, and nothing of it is loaded. @default undefined
   */
  otlpEndpoint: string | undefined;
  /** The config file that was read, if any. */
  configFile: string | undefined;
}
