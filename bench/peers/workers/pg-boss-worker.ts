/**
 * crash-recovery worker for pg-boss: `work()` at its default settings (batchSize 1, polling every
 * 2 s; jobs expire after 15 min, maintenance every 120 s) whose handler reports the job and then
 * holds it forever. argv[2]: JSON `{ url, queue }`.
 */
import PgBoss from 'pg-boss';
import { workerSide } from '../common.ts';

const { config, started, hold } = workerSide();
const boss = new PgBoss({ connectionString: config.url });
boss.on('error', (err) => process.stderr.write(`pg-boss-worker: ${err.message}\n`));
await boss.start();
await boss.work(config.queue ?? 'bench', async ([job]) => {
  if (job) started(job.id);
  await hold;
});
