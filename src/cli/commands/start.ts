/** `runwarden start`: the API and supervised workers on one machine. */
import { isLoopbackHost } from '../../config/host.ts';
import { redactUrl } from '../../config/redact.ts';
import { stringFlag } from '../command.ts';
import type { Command, ParsedArgs } from '../command.ts';
import type { ConfigFlags } from '../../config/resolve.ts';
import { CliError, EXIT } from '../io.ts';
import { handleShutdownSignals } from '../signals.ts';
import { loadConfig, WORKER_OPTIONS, workerConfigFlags } from './config-flags.ts';

export const startCommand: Command = {
  name: 'start',
  summary: 'Start the API and supervised workers (SQLite under --data-dir, or PostgreSQL with DATABASE_URL).',
  usage: '[--port n] [--host h] [--data-dir d] [--workers n] [--config f] [--tools m]... [--lab auto|on|off]',
  help: `  --port n            API port (default 7400; 0 picks a free port)        env RUNWARDEN_PORT
  --host h            bind address (default 127.0.0.1); anything but loopback
                      requires RUNWARDEN_TOKEN                             env RUNWARDEN_HOST
  --data-dir d        where the SQLite file lives (default ./.runwarden)   env RUNWARDEN_DATA_DIR
  --workers n         worker processes (default: CPU count; 0: API only)  env RUNWARDEN_WORKERS
  --concurrency n     steps one worker runs at once (default 256)          env RUNWARDEN_CONCURRENCY
  --config f          config file (default runwarden.config.{json,js,ts}) env RUNWARDEN_CONFIG
  --tools m           a tools module to load; repeatable                   env RUNWARDEN_TOOLS (comma-separated)
  --tool-isolation thread|inline  how tools from modules run (default thread: a
                      thread of their own, stopped when a step is cut)     env RUNWARDEN_TOOL_ISOLATION
  --default-provider p  provider for steps that name none                env RUNWARDEN_DEFAULT_PROVIDER
  --lab auto|on|off   start the in-process hang lab (auto: when no LLM key is set)  env RUNWARDEN_LAB
  --lab-port n        port of the in-process lab (default 7401)            env RUNWARDEN_LAB_PORT
  --lease-ms n        step lease length (default 3000)                    env RUNWARDEN_LEASE_MS
  --heartbeat-ms n    lease renewal period (default 1000)                 env RUNWARDEN_HEARTBEAT_MS
  --drain-ms n        on SIGINT/SIGTERM, how long running steps get to finish
                      before they are handed back (default 5000)          env RUNWARDEN_DRAIN_MS

Each worker process is supervised: one whose event loop stays blocked (RUNWARDEN_LOOP_KILL_MS,
default 1500 ms, or past the blocking step's deadline) is killed and replaced, one that crashes is
restarted with a backoff; their steps are retried on the others. See docs/operations.md.

Prints "runwarden listening on <url>". SIGINT/SIGTERM stop it gracefully (exit 0); a second signal
exits at once. Every key is described in docs/configuration.md.`,
  options: {
    ...WORKER_OPTIONS,
    port: { type: 'string' },
    host: { type: 'string' },
    lab: { type: 'string' },
    'lab-port': { type: 'string' },
  },
  positionals: { min: 0, max: 0 },
  async run(args, io) {
    const config = await loadConfig(startFlags(args), io);
    if (!isLoopbackHost(config.host) && config.token === undefined) {
      throw new CliError(EXIT.USAGE, `listening on ${config.host} (not loopback) requires a bearer token: set RUNWARDEN_TOKEN`);
    }
    const shutdown = handleShutdownSignals(io, 'runwarden');
    let runtime: Awaited<ReturnType<typeof import('../../runtime.ts').startRuntime>>;
    try {
      const { startRuntime } = await import('../../runtime.ts');
      runtime = await startRuntime(config, { env: io.env, cwd: io.cwd, log: (line) => io.err(`${line}\n`), workerMode: 'processes' });
    } catch (err) {
      shutdown.dispose();
      if ((err as { code?: unknown }).code === 'EADDRINUSE') {
        throw new CliError(EXIT.USAGE, `port ${config.port} on ${config.host} is already in use; choose another with --port or RUNWARDEN_PORT (0 picks a free one)`);
      }
      throw err;
    }
    // One write, so that whoever parses the first line also gets the rest together.
    const lines = [
      `runwarden listening on ${runtime.url}`,
      config.databaseUrl !== undefined ? `database: ${redactUrl(config.databaseUrl)} (PostgreSQL)` : `data: ${config.dataDir} (SQLite)`,
      ...(runtime.labUrl !== undefined ? [`lab: ${runtime.labUrl} (hang lab; GET ${runtime.labUrl}/modes lists its failure modes)`] : []),
      `workers: ${config.workers === 0 ? 'none (API only)' : `${config.workers} supervised process${config.workers === 1 ? '' : 'es'}, ${config.concurrency} steps each`}`,
      ...(config.configFile !== undefined ? [`config: ${config.configFile}`] : []),
    ];
    io.out(`${lines.join('\n')}\n`);
    shutdown.started(() => runtime.close());
    return shutdown.done;
  },
};

function startFlags(args: ParsedArgs): ConfigFlags {
  return {
    ...workerConfigFlags(args),
    port: stringFlag(args, 'port'),
    host: stringFlag(args, 'host'),
    labPort: stringFlag(args, 'lab-port'),
    lab: stringFlag(args, 'lab'),
  };
}
