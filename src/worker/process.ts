/**
 * `runwarden worker`: a process that only runs steps: no API, no hang lab. Start as many as you
 * like, on as many machines as you like, against one PostgreSQL (DATABASE_URL); `runwarden start`
 * serves the API. Each such process:
 * - migrates the schema if needed (an advisory lock makes processes starting together take turns);
 * - runs `concurrency` step slots, split over up to 4 claim loops (Workers: claims with leases,
 *   heartbeats, batched completions; see `loopsFor`);
 * - runs a reaper. Every process does, so the death of any one (the API's included) never leaves
 *   expired leases unreaped; on PostgreSQL only one reaps at a time (see expiredLeases in
 *   store/postgres/tx.ts), so running it everywhere costs one cheap transaction per tick each.
 * On `close()` the worker drains (its running steps get `drainMs` to finish, then are handed back
 * to the queue) and its connections are closed.
 */
import { hostname } from 'node:os';
import type { RunwardenConfig } from '../config/types.ts';
import { EngineCore } from '../engine/core.ts';
import { ProviderRegistry } from '../llm/index.ts';
import { buildTools } from '../tools/build.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { installProcessGuards } from './guards.ts';
import { Worker } from './worker.ts';

export interface WorkerProcessOptions {
  env?: Record<string, string | undefined>;
  log?: (line: string) => void;
  cwd?: string;
  /** How long running steps get to finish on close before they are handed back. @default 5000 */
  drainMs?: number;
}

export interface WorkerProcess {
  /** `<host>-<pid>`: its claim loops are the workers `<id>-0`, `<id>-1`, ... */
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
    const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, log });
    cleanups.push(() => store.close());
    await store.migrate();

    const providers = new ProviderRegistry({
      providers: config.providers,
      ...(config.defaultProvider ? { defaultProvider: config.defaultProvider } : {}),
      env,
    });
    cleanups.push(() => providers.close());
    const tools = await buildTools(config, { providers, store, cwd });
    const core = new EngineCore(store);

    // Several claim loops share the process's slots: each Worker runs its transactions one after
    // another (claim, then flush, ...), so one loop leaves the database idle while it waits on a
    // round trip. Measured with no-op steps on 2 vCPUs: 1 loop ~1000 steps/s, 2 loops ~1700,
    // 4 loops ~1850 (bench/postgres-engine.ts). Each loop is a worker of its own in the
    // workers table (`<host>-<pid>-<i>`).
    const loops = loopsFor(config.concurrency);
    const workers = Array.from({ length: loops }, (_, i) =>
      new Worker({
        core,
        tools,
        id: `${hostname()}-${process.pid}-${i}`,
        concurrency: Math.ceil(config.concurrency / loops),
        leaseMs: config.leaseMs,
        heartbeatMs: config.heartbeatMs,
        abortGraceMs: config.abortGraceMs,
        log,
      }),
    );
    for (const w of workers) w.start();
    cleanups.push(() => Promise.all(workers.map((w) => w.stop({ drainMs: opts.drainMs ?? 5000 }))).then(() => undefined));

    let reaping = false;
    const reaper = setInterval(() => {
      if (reaping) return;
      reaping = true;
      core
        .reap()
        .then(
          (n) => {
            if (n > 0) log(`reaper: ${n} expired lease(s) turned into lost attempts`);
          },
          (err: unknown) => log(`reaper failed, will retry: ${(err as Error).message}`),
        )
        .finally(() => {
          reaping = false;
        });
    }, config.reaperIntervalMs);
    cleanups.push(() => clearInterval(reaper));

    let closing: Promise<void> | undefined;
    return { id: `${hostname()}-${process.pid}`, store, workers, close: () => (closing ??= closeAll()) };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** One claim loop per 64 slots, at most 4: more loops only add contention on 2-8 vCPUs. */
export function loopsFor(concurrency: number): number {
  return Math.min(4, Math.max(1, Math.ceil(concurrency / 64)));
}
