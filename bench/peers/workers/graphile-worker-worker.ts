/**
 * crash-recovery worker for graphile-worker: `run()` at its default settings (concurrency 1,
 * pollInterval 2 s, no local queue) whose task reports the job and then holds it forever.
 * argv[2]: JSON `{ url }`.
 */
import { Logger, run } from 'graphile-worker';
import { workerSide } from '../common.ts';

const { config, started, hold } = workerSide();
await run({
  connectionString: config.url,
  crontab: '',
  logger: new Logger(() => (level, message) => {
    if ((level as string) === 'error') process.stderr.write(`graphile-worker-worker: ${message}\n`);
  }),
  taskList: {
    hold: async (_payload, helpers) => {
      started(helpers.job.id);
      await hold;
    },
  },
});
