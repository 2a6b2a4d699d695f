/**
 * `runwarden worker`: a supervisor and its worker processes, without the API, for more machines
 * (one PostgreSQL) or more processes on one SQLite data directory. This process migrates the schema
 * if needed, runs a reaper (on PostgreSQL one process reaps at a time; every process runs one, so
 * the death of any never leaves expired leases unreaped), fires schedules' ticks (so does every API
 * process: one of either kind alive is enough), and keeps `config.workers` worker
 * processes (at least 1) running under a Supervisor.
 */
import type { RunwardenConfig } from '../config/types.ts';
import { startReaper } from '../engine/reaper.ts';
import { startScheduler } from '../engine/scheduler.ts';
import { Transitions } from '../engine/transitions.ts';
import { lostAttemptReport, waitTimeoutReport, queueTimeoutReport } from '../forensics/report.ts';
import type { Store } from '../store/store.ts';
import { Supervisor } from '../supervisor/supervisor.ts';
import { bootProcess, openProcessStore, within } from './boot.ts';

export interface WorkerHost {
  /** `<host>-<pid>`: every claim loop of its workers is `<id>-<worker pid>-<i>`. */
  id: string;
  store: Store;
  supervisor: Supervisor;
  close(): Promise<void>;
}

export async function startWorkerHost(
  config: Readonly<RunwardenConfig>,
  opts: { env: Record<string, string | undefined>; cwd: string; log: (line: string) => void },
): Promise<WorkerHost> {
  const scope = await bootProcess(config, opts);
  return within(scope, async () => {
    const store = await openProcessStore(scope);
    const core = new Transitions(store, { lostReport: lostAttemptReport, waitReport: waitTimeoutReport, queueReport: queueTimeoutReport });
    scope.onClose(startReaper(core, { intervalMs: config.reaperIntervalMs, log: opts.log }));
    // Ticks fire from every API process and every worker host (docs/schedules.md).
    const scheduler = startScheduler(core, { log: opts.log });
    scope.onClose(() => scheduler.stop());
    const supervisor = new Supervisor({ config, core, count: Math.max(1, config.workers), env: opts.env, cwd: opts.cwd, log: opts.log });
    await supervisor.start();
    scope.onClose(() => supervisor.stop());
    return { id: supervisor.id, store, supervisor, close: () => scope.close() };
  });
}
