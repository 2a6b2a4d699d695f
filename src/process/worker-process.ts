/**
 * A process that runs steps (no API, no hang lab): the claim loops (`Worker`s) of one process on the
 * shared store, with its providers and tools. It runs
 * - inside every supervised worker process (src/supervisor/child.ts adds the watchdog, the
 *   heartbeats to the supervisor and the relay of notifications; the supervisor's process reaps);
 * - as `runwarden worker --workers 0`: the claim loops in that process itself, unsupervised.
 * Start as many as you like, on as many machines as you like, against one PostgreSQL (DATABASE_URL).
 * Such a process:
 * - migrates the schema if needed (an advisory lock makes processes starting together take turns);
 * - runs `concurrency` step slots, split over up to 4 claim loops on PostgreSQL (see worker/loops.ts);
 * - runs a reaper, unless told not to. Every unsupervised process does, so the death of any one
 *   (the API's included) never leaves expired leases unreaped; on PostgreSQL only one reaps at a
 *   time (see expiredLeases in store/postgres/tx.ts), so running it everywhere costs one cheap
 *   transaction per tick each.
 * On `close()` the worker drains (its running steps get `drainMs` to finish, then are handed back
 * to the queue) and its connections are closed.
 */
import { hostname } from 'node:os';
import type { RunwardenConfig } from '../config/types.ts';
import { startReaper } from '../engine/reaper.ts';
import { Transitions } from '../engine/transitions.ts';
import { lostAttemptReport, waitTimeoutReport, queueTimeoutReport } from '../forensics/report.ts';
import type { Store } from '../store/store.ts';
import { loopsFor } from '../worker/loops.ts';
import type { Worker } from '../worker/worker.ts';
import { bootProcess, loadProcessTools, openProcessStore, startClaimLoops, within } from './boot.ts';

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
  const scope = await bootProcess(config, opts);
  return within(scope, async () => {
    const store = await openProcessStore(scope, { migrate: opts.migrate !== false });
    const { tools } = await loadProcessTools(scope, store, opts.labUrl ? { labUrl: opts.labUrl } : {});
    const core = new Transitions(store, { lostReport: lostAttemptReport, waitReport: waitTimeoutReport, queueReport: queueTimeoutReport });
    const id = opts.idPrefix ?? `${hostname()}-${process.pid}`;
    const workers = await startClaimLoops(scope, core, tools, {
      idPrefix: id,
      loops: loopsFor(config.concurrency, store.dialect),
      drainMs: opts.drainMs ?? 5000,
      ...(opts.onUncontained ? { onUncontained: opts.onUncontained } : {}),
    });
    // Registered last: it stops first, before the claim loops drain.
    if (opts.reaper !== false) scope.onClose(startReaper(core, { intervalMs: config.reaperIntervalMs, log: scope.log }));
    return { id, store, workers, close: () => scope.close() };
  });
}
