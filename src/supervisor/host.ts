/**
 * `runwarden worker`: a supervisor and its worker processes, without the API, for more machines
 * (one PostgreSQL) or more processes on one SQLite data directory. This process migrates the schema
 * if needed, runs a reaper (on PostgreSQL one process reaps at a time; every process runs one, so
 * the death of any never leaves expired leases unreaped), and keeps `config.workers` worker
 * processes (at least 1) running under a Supervisor.
 */
import { redactedConfig } from '../config/redact.ts';
import type { RunwardenConfig } from '../config/types.ts';
import { Transitions } from '../engine/transitions.ts';
import { startReaper } from '../engine/reaper.ts';
import { lostAttemptReport } from '../forensics/report.ts';
import { setReportConfig } from '../forensics/resources.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { installProcessGuards } from '../worker/guards.ts';
import { Supervisor } from './supervisor.ts';

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
  const { log } = opts;
  installProcessGuards(log);
  setReportConfig(redactedConfig(config));
  const store = await openStore({ dataDir: config.dataDir, databaseUrl: config.databaseUrl, log });
  let stopReaper: () => void = () => undefined;
  try {
    await store.migrate();
    const core = new Transitions(store, { lostReport: lostAttemptReport });
    stopReaper = startReaper(core, { intervalMs: config.reaperIntervalMs, log });
    const supervisor = new Supervisor({ config, core, count: Math.max(1, config.workers), env: opts.env, cwd: opts.cwd, log });
    await supervisor.start();
    let closing: Promise<void> | undefined;
    return {
      id: supervisor.id,
      store,
      supervisor,
      close: () =>
        (closing ??= (async () => {
          try {
            await supervisor.stop();
          } finally {
            stopReaper();
            await store.close();
          }
        })()),
    };
  } catch (err) {
    stopReaper();
    await store.close();
    throw err;
  }
}
