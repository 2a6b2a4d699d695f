/** `runwarden worker`: workers only (no API, no lab), for more machines against one PostgreSQL. */
import { redactUrl } from '../../config/redact.ts';
import { listFlag, stringFlag } from '../command.ts';
import type { Command, ParsedArgs } from '../command.ts';
import type { ConfigFlags } from '../../config/resolve.ts';
import { handleShutdownSignals } from '../signals.ts';
import { loadConfig } from './config-flags.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'Run workers only (no API), for more machines against PostgreSQL (DATABASE_URL).',
  usage: '[--concurrency n] [--data-dir d] [--config f] [--tools m]... [--lease-ms n] [--heartbeat-ms n]',
  help: `  --concurrency n     steps this process runs at once (default 256)       env RUNWARDEN_CONCURRENCY
  --data-dir d        the SQLite file's directory, when DATABASE_URL is not set (default ./.runwarden)
  --config f          config file (default runwarden.config.{json,js,ts}) env RUNWARDEN_CONFIG
  --tools m           a tools module to load; repeatable                   env RUNWARDEN_TOOLS (comma-separated)
  --default-provider p  provider for steps that name none                env RUNWARDEN_DEFAULT_PROVIDER
  --lease-ms n        step lease length (default 3000)                    env RUNWARDEN_LEASE_MS
  --heartbeat-ms n    lease renewal period (default 1000)                 env RUNWARDEN_HEARTBEAT_MS

The store is the PostgreSQL database named by DATABASE_URL (or RUNWARDEN_DATABASE_URL); every
worker and API process of a deployment must name the same one, and load the same tools. The
process migrates the schema if needed, claims steps, and also reaps expired leases (one process
at a time does). Prints "runwarden worker <id> ready". SIGINT/SIGTERM drain it: running steps get
5 s to finish, then are handed back to the queue (exit 0); a second signal exits at once.
See docs/deployment.md.`,
  options: {
    concurrency: { type: 'string' },
    'data-dir': { type: 'string' },
    config: { type: 'string' },
    tools: { type: 'string', multiple: true },
    'default-provider': { type: 'string' },
    'lease-ms': { type: 'string' },
    'heartbeat-ms': { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const config = await loadConfig(workerFlags(args), io);
    const shutdown = handleShutdownSignals(io, 'runwarden worker');
    let proc: Awaited<ReturnType<typeof import('../../worker/process.ts').startWorkerProcess>>;
    try {
      const { startWorkerProcess } = await import('../../worker/process.ts');
      proc = await startWorkerProcess(config, { env: io.env, cwd: io.cwd, log: (line) => io.err(`${line}\n`) });
    } catch (err) {
      shutdown.dispose();
      throw err;
    }
    const where = config.databaseUrl !== undefined ? `database: ${redactUrl(config.databaseUrl)} (PostgreSQL)` : `data: ${config.dataDir} (SQLite)`;
    io.out(`runwarden worker ${proc.id} ready\n${where}\nconcurrency: ${config.concurrency}\n`);
    shutdown.started(() => proc.close());
    return shutdown.done;
  },
};

function workerFlags(args: ParsedArgs): ConfigFlags {
  return {
    concurrency: stringFlag(args, 'concurrency'),
    dataDir: stringFlag(args, 'data-dir'),
    config: stringFlag(args, 'config'),
    tools: listFlag(args, 'tools'),
    defaultProvider: stringFlag(args, 'default-provider'),
    leaseMs: stringFlag(args, 'lease-ms'),
    heartbeatMs: stringFlag(args, 'heartbeat-ms'),
  };
}
