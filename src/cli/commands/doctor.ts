/** `runwarden doctor`: diagnose a deployment. Not in this version yet. */
import type { Command } from '../command.ts';
import { EXIT } from '../io.ts';

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Diagnose a deployment: database, migrations, workers, stuck steps, queue, providers (not available yet in this version).',
  usage: '',
  help: '',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(_args, io) {
    io.err('runwarden doctor is not available yet in this version: `curl <api>/health/detailed` and `runwarden db status` show most of what it will check.\n');
    return EXIT.USAGE;
  },
};
