/** Config resolution for commands: a CONFIG_INVALID error becomes exit 2 with one line per problem. */
import { RunwardenError } from '../../domain/errors.ts';
import { resolveConfig } from '../../config/resolve.ts';
import type { ConfigFlags } from '../../config/resolve.ts';
import type { RunwardenConfig } from '../../config/types.ts';
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
