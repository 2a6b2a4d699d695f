/**
 * A process that runs steps (no API, no hang lab): the claim loops (`Worker`s) of one process on the
 * shared store, with its providers and tools. It runs
 * - inside every supervised worker process (src/supervisor/child.ts adds the watchdog, the
 *   heartbeats to the supervisor and the relay of notifications; the supervisor's process reaps);
 * - as `runwarden worker --workers 0`: the claim loops in that process itself, unsupervised.
 * Start as many as you like, on as many machines as you like, against one PostgreSQL (DATABASE_URL).
 * Such a process:
 * - migrates the schema if needed (an advisory lock makes processes starting together take turns);
 * - runs `concurrency` step slots, split over up to 4 claim loops on PostgreSQL (see `loopsFor`);
 * - runs a reaper, unless told not to. Every unsupervised process does, so the death of any one
 *   (the API's included) never leaves expired leases unreaped; on PostgreSQL only one reaps at a
 *   time (see expiredLeases in store/postgres/tx.ts), so running it everywhere costs one cheap
 *   transaction per tick each.
 * On `close()` the worker drains (its running steps get `drainMs` to finish, then are handed back
 * to the queue) and its connections are closed.
 */
import { hostname } from 'node:os';
import type { RunwardenConfig } from '../config/types.ts';
import { Transitions } from '../engine/transitions.ts';
import { startReaper } from '../engine/reaper.ts';
import { lostAttemptReport } from '../forensics/report.ts';
import { ProviderRegistry } from '../llm/index.ts';
import { buildTools } from '../tools/build.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { configuredSecrets } from '../config/secrets.ts';
import { registerConfiguredSecret, registerSecretsFromEnv } from '../forensics/redact.ts';
import { installProcessGuards } from './guards.ts';
import { ToolThreadPool } from './isolation/pool.ts';
import { Worker } from './worker.ts';
import { startTracing } from '../telemetry/tracing.ts';

export interface WorkerProcessOptions {
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
  cwd?: string;
  /** How long running steps get to finish on close before they are handed back. @default 5000 */
  drainMs?: number;
  /** Base URL of a hang lab (the API process's), for the `lab` provider. */
  labUrl?: string;
  /** Its claim loops are `<idPrefix>-0`, `<idPrefix>-1`, ... @default `<host>-<pid>` */
  idPrefix?: string;
  /** Apply pending migrations first. @default true */
  migrate?: boolean;
  /** Run a reaper in this process. @default true */
  reaper?: boolean;
  /** A tool thread could not be stopped; only replacing this process will (see WorkerOptions). */
  onUncontained?: (why: string) => void;
}

export interface WorkerProcess {
  /** `<host>-<pid>` (or the `idPrefix` given): its claim loops are the workers `<id>-0`, `<id>-1`, ... */
  id: string;
  store: Store;
  workers: Worker[];
  close(): Promise<void>;
}

export async function startWorkerProcess(config: Readonly<RunwardenConfig>, opts: WorkerProcessOptions = {}): Promise<WorkerProcess> {
  const env = opts.env ?? {};
  const log = opts.log ?? (() => undefined);
  const cwd = opts.cwd ?? process.cwd();
  installProcessGuards(log);
  // The same secrets as the API process: a tool's log line or error here may carry a provider header.
  registerSecretsFromEnv(env);
  for (const v of configuredSecrets(config, env)) registerConfiguredSecret(v);

  const cleanups: Array<() => Promise<void> | void> = [];
  const closeAll = async (): Promise<void> => {
    for (const fn of cleanups.reverse()) {
      try {
        await fn();
      } catch (err) {
        log(`worker shutdown step failed: ${(err as Error).message}`);
      }
    }
  };

  try {
    if (config.otlpEndpoint) cleanups.push(await startTracing(config.otlpEndpoint, { log }));
    const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, log });
    cleanups.push(() => store.close());
    if (opts.migrate !== false) await store.migrate();

    const providers = new ProviderRegistry({
      providers: config.providers,
      ...(config.defaultProvider ? { defaultProvider: config.defaultProvider } : {}),
      env,
      ...(opts.labUrl ? { labUrl: opts.labUrl } : {}),
    });
    cleanups.push(() => providers.close());
    const tools = await buildTools(config, { providers, store, cwd });
    const core = new Transitions(store, { lostReport: lostAttemptReport });
    // One pool of tool threads for all claim loops; closed after they stopped (cleanups run in reverse).
    const threads = new ToolThreadPool({ modules: tools.threadModules(), cwd, log, warm: config.toolThreadsWarm });
    cleanups.push(() => threads.close());

    const id = opts.idPrefix ?? `${hostname()}-${process.pid}`;
    const loops = loopsFor(config.concurrency, store.dialect);
    const workers = Array.from({ length: loops }, (_, i) =>
      new Worker({
        core,
        tools,
        id: `${id}-${i}`,
        concurrency: Math.ceil(config.concurrency / loops),
        leaseMs: config.leaseMs,
        heartbeatMs: config.heartbeatMs,
        abortGraceMs: config.abortGraceMs,
        threads,
        ...(opts.onUncontained ? { onUncontained: opts.onUncontained } : {}),
        log,
      }),
    );
    for (const w of workers) w.start();
    // Ready once its tools can run: the first tool thread has loaded the tools modules.
    await Promise.all(workers.map((w) => w.ready()));
    cleanups.push(() => Promise.all(workers.map((w) => w.stop({ drainMs: opts.drainMs ?? 5000 }))).then(() => undefined));

    if (opts.reaper !== false) cleanups.push(startReaper(core, { intervalMs: config.reaperIntervalMs, log }));

    let closing: Promise<void> | undefined;
    return { id, store, workers, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Claim loops per process. On PostgreSQL several loops share the process's slots: each Worker runs
 * its transactions one after another (claim, then flush, ...), so one loop leaves the database idle
 * while it waits on a round trip. Measured with no-op steps on 2 vCPUs: 1 loop ~1000 steps/s,
 * 2 loops ~1700, 4 loops ~1850 (bench/postgres-engine.ts): one loop per 64 slots, at most 4 (more
 * only add contention on 2-8 vCPUs). On SQLite one: its transactions run one at a time anyway.
 * Each loop is a worker of its own in the workers table (`<id>-<i>`).
 */
export function loopsFor(concurrency: number, dialect: 'sqlite' | 'postgres'): number {
  return dialect === 'sqlite' ? 1 : Math.min(4, Math.max(1, Math.ceil(concurrency / 64)));
}
