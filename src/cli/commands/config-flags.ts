/**
 * Config resolution for commands: a CONFIG_INVALID error becomes exit 2 with one line per problem;
 * and the flags every command that runs workers (`start`, `worker`) takes.
 */
import { RunwardenError } from '../../domain/errors.ts';
import { resolveConfig } from '../../config/resolve.ts';
import type { ConfigFlags } from '../../config/resolve.ts';
import type { RunwardenConfig } from '../../config/types.ts';
import { listFlag, stringFlag, type ParsedArgs } from '../command.ts';
import { CliError, EXIT } from '../io.ts';
import type { Io } from '../io.ts';

export async function loadConfig(flags: ConfigFlags, io: Io): Promise<Readonly<RunwardenConfig>> {
  try {
    return await resolveConfig({ flags, env: io.env, cwd: io.cwd });
  } catch (err) {
    if (err instanceof RunwardenError && err.code === 'CONFIG_INVALID') {
      const details = err.details ?? [];
      if (details.length > 1) {
        throw new CliError(EXIT.USAGE, 'invalid configuration:', { lines: details.map((d) => `  - ${d.message}`) });
      }
      throw new CliError(EXIT.USAGE, err.message);
    }
    throw err;
  }
}

/** The flags of `start` and `worker` that configure their worker processes. */
export const WORKER_OPTIONS = {
  workers: { type: 'string' },
  concurrency: { type: 'string' },
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  tools: { type: 'string', multiple: true },
  'tool-isolation': { type: 'string' },
  'default-provider': { type: 'string' },
  'lease-ms': { type: 'string' },
  'heartbeat-ms': { type: 'string' },
  'drain-ms': { type: 'string' },
} as const;

export function workerConfigFlags(args: ParsedArgs): ConfigFlags {
  return {
    workers: stringFlag(args, 'workers'),
    concurrency: stringFlag(args, 'concurrency'),
    dataDir: stringFlag(args, 'data-dir'),
    config: stringFlag(args, 'config'),
    tools: listFlag(args, 'tools'),
    toolIsolation: stringFlag(args, 'tool-isolation'),
    defaultProvider: stringFlag(args, 'default-provider'),
    leaseMs: stringFlag(args, 'lease-ms'),
    heartbeatMs: stringFlag(args, 'heartbeat-ms'),
    drainMs: stringFlag(args, 'drain-ms'),
  };
}
