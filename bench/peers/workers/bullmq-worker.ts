/**
 * crash-recovery worker for BullMQ: a Worker at its default settings (concurrency 1, lockDuration
 * 30 s, stalledInterval 30 s) whose handler reports the job and then holds it forever.
 * argv[2]: JSON `{ prefix, queue, host, port }`.
 */
import { Worker } from 'bullmq';
import { workerSide } from '../common.ts';

const { config, started, hold } = workerSide();
const worker = new Worker(
  config.queue ?? 'bench',
  async (job) => {
    started(job.id ?? '');
    await hold;
  },
  { connection: { host: config.host ?? '127.0.0.1', port: Number(config.port ?? 6379) }, prefix: config.prefix },
);
worker.on('error', (err) => process.stderr.write(`bullmq-worker: ${err.message}\n`));
