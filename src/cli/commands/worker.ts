/**
 * `runwarden worker`: a supervisor and its worker processes (no API, no lab), for more machines
 * against one PostgreSQL, or more processes on one SQLite data directory.
 */
import { redactUrl } from '../../config/redact.ts';
import type { Command } from '../command.ts';
import { handleShutdownSignals } from '../signals.ts';
import { loadConfig, WORKER_OPTIONS, workerConfigFlags } from './config-flags.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'Run supervised worker processes only (no API), for more machines against PostgreSQL (DATABASE_URL).',
  usage: '[--workers n] [--concurrency n] [--data-dir d] [--config f] [--tools m]... [--tool-isolation thread|inline] [--lease-ms n] [--heartbeat-ms n] [--drain-ms n]',
  help: `  --workers n         worker processes (default: CPU count); 0: run the claim
                      loops in this process, unsupervised                 env RUNWARDEN_WORKERS
  --concurrency n     steps each worker process runs at once (default 256) env RUNWARDEN_CONCURRENCY
  --data-dir d        the SQLite file's directory, when DATABASE_URL is not set (default ./.runwarden)
  --config f          config file (default runwarden.config.{json,js,ts}) env RUNWARDEN_CONFIG
  --tools m           a tools module to load; repeatable                   env RUNWARDEN_TOOLS (comma-separated)
  --tool-isolation thread|inline  how tools from modules run (default thread: a
                      thread of their own, stopped when a step is cut)     env RUNWARDEN_TOOL_ISOLATION
  --default-provider p  provider for steps that name none                env RUNWARDEN_DEFAULT_PROVIDER
  --lease-ms n        step lease length (default 3000)                    env RUNWARDEN_LEASE_MS
  --heartbeat-ms n    lease renewal period (default 1000)                 env RUNWARDEN_HEARTBEAT_MS
  --drain-ms n        on SIGINT/SIGTERM, how long running steps get to finish
                      before they are handed back (default 5000)          env RUNWARDEN_DRAIN_MS

The store is the PostgreSQL database named by DATABASE_URL (or RUNWARDEN_DATABASE_URL); every
worker and API process of a deployment must name the same one, and load the same tools. This
process migrates the schema if needed, reaps expired leases (one process at a time does), and
supervises its worker processes: one that hangs, spins or crashes is killed if need be and
replaced, its steps retried on the others (docs/operations.md). Prints "runwarden worker <id>
ready". SIGINT/SIGTERM drain it: running steps get --drain-ms to finish, then are handed back to
the queue (exit 0); a second signal exits at once. See docs/deployment.md.`,
  options: WORKER_OPTIONS,
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const config = await loadConfig(workerConfigFlags(args), io);
    const shutdown = handleShutdownSignals(io, 'runwarden worker');
    const log = (line: string): void => io.err(`${line}\n`);
    let proc: { id: string; close(): Promise<void> };
    try {
      if (config.workers === 0) {
        const { startWorkerProcess } = await import('../../process/worker-process.ts');
        proc = await startWorkerProcess(config, { env: io.env, cwd: io.cwd, log, drainMs: config.drainMs });
      } else {
        const { startWorkerHost } = await import('../../process/host.ts');
        proc = await startWorkerHost(config, { env: io.env, cwd: io.cwd, log });
      }
    } catch (err) {
      shutdown.dispose();
      throw err;
    }
    const where = config.databaseUrl !== undefined ? `database: ${redactUrl(config.databaseUrl)} (PostgreSQL)` : `data: ${config.dataDir} (SQLite)`;
    const workers = config.workers === 0 ? 'in this process (unsupervised)' : `${config.workers} supervised process${config.workers === 1 ? '' : 'es'}`;
    io.out(`runwarden worker ${proc.id} ready\n${where}\nworkers: ${workers}, ${config.concurrency} steps each\n`);
    shutdown.started(() => proc.close());
    return shutdown.done;
  },
};
