/** `runwarden worker`: workers only, against a shared PostgreSQL. Not in this version yet. */
import type { Command } from '../command.ts';
import { EXIT } from '../io.ts';

export const workerCommand: Command = {
  name: 'worker',
  summary: 'Run workers only, for more machines against PostgreSQL (not available yet in this version).',
  usage: '',
  help: '',
  options: {},
  positionals: { min: 0, max: 0 },
  async run(_args, io) {
    io.err('runwarden worker is not available yet in this version: `runwarden start --workers N` runs the API and its workers together.\n');
    return EXIT.USAGE;
  },
};
