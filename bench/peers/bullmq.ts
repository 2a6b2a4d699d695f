/**
 * BullMQ on Redis (127.0.0.1:6379), through its default client ioredis, under a fresh key prefix
 * `rwbench:<id>` whose keys are deleted afterwards.
 *
 * Throughput configuration, as BullMQ's docs recommend (guide/workers/concurrency, guide/queues/
 * adding-bulks, guide/queues/auto-removal-of-jobs): one Worker with `concurrency` (the same number
 * every system gets), jobs added with `addBulk` in chunks of 1,000, and `removeOnComplete: true` so
 * finished jobs do not pile up in Redis. Everything else at its defaults: `lockDuration` 30 s,
 * `stalledInterval` 30 s, `maxStalledCount` 1 (these set the crash-recovery time).
 *
 * BullMQ has no timeout for a running job: the worker renews the job's lock for as long as its
 * process lives (its docs leave timeouts to the processor, with an AbortController), so hang-cut is
 * reported as never cut, at the cap.
 */
import { readFileSync } from 'node:fs';
import { Queue, Worker, type Job, type Processor } from 'bullmq';
import type { BenchResult } from '../report.ts';
import { blackhole, hangingRequest, killAndRestart, percentile, REDIS, redisPrefix, round, signal, sleep, withDeadline } from './common.ts';

const SYSTEM = 'bullmq';
const QUEUE = 'bench';
const CHUNK = 1000;

export const configuration =
  'one `Worker` with `concurrency` N (the shared value), jobs added with `addBulk` in chunks of 1,000, `removeOnComplete: true` ' +
  '(docs: concurrency, adding jobs in bulk, auto-removal); client ioredis; everything else default (`lockDuration` 30 s, `stalledInterval` 30 s, ' +
  '`maxStalledCount` 1). No timeout exists for a running job (the lock is renewed while the process lives).';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../node_modules/bullmq/package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

export async function serverVersions(): Promise<Record<string, string>> {
  return withQueue(async (queue) => {
    const info = await (await queue.getBackend().client).info();
    const ioredis = (JSON.parse(readFileSync(new URL('../../node_modules/ioredis/package.json', import.meta.url), 'utf8')) as { version: string }).version;
    return { ioredis, 'redis-server': /redis_version:(\S+)/.exec(info)?.[1] ?? '?' };
  });
}

interface Ctx {
  queue: Queue;
  prefix: string;
}

async function withQueue<T>(fn: (queue: Queue, ctx: Ctx) => Promise<T>): Promise<T> {
  const prefix = redisPrefix();
  const queue = new Queue(QUEUE, { connection: { ...REDIS, connectTimeout: 5000 }, prefix, defaultJobOptions: { removeOnComplete: true } });
  queue.on('error', (err) => process.stderr.write(`bench: bullmq queue error: ${err.message}\n`));
  let ready = false;
  try {
    await withDeadline(queue.waitUntilReady(), 10_000, `Redis at ${REDIS.host}:${REDIS.port}`);
    ready = true;
    return await fn(queue, { queue, prefix });
  } finally {
    try {
      if (ready) await withDeadline(deleteKeys(queue, prefix), 30_000, `deleting ${prefix}:*`);
    } finally {
      // Never connected: closing may not settle, and the connection error is what the caller needs.
      const closing = withDeadline(queue.close(), 10_000, 'BullMQ queue close');
      if (ready) await closing;
      else await closing.catch(() => undefined);
    }
  }
}

async function deleteKeys(queue: Queue, prefix: string): Promise<void> {
  const client = await queue.getBackend().client;
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, { MATCH: `${prefix}:*`, COUNT: 1000 });
    if (keys.length > 0) await client.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}

interface RunningWorker {
  worker: Worker;
  close(): Promise<void>;
}

async function startWorker(ctx: Ctx, processor: Processor, concurrency: number): Promise<RunningWorker> {
  const worker = new Worker(QUEUE, processor, { connection: REDIS, prefix: ctx.prefix, concurrency, autorun: false });
  worker.on('error', (err) => process.stderr.write(`bench: bullmq worker error: ${err.message}\n`));
  await withDeadline(worker.waitUntilReady(), 10_000, 'BullMQ worker connection');
  const running = worker.run().catch((err: unknown) => process.stderr.write(`bench: bullmq worker stopped: ${String(err)}\n`));
  return {
    worker,
    async close() {
      await withDeadline(worker.close(true), 30_000, 'BullMQ worker close');
      await withDeadline(running, 30_000, 'BullMQ worker run loop');
    },
  };
}

async function addInChunks(queue: Queue, n: number, name: string, data: (i: number) => object): Promise<Job[]> {
  const jobs: Job[] = [];
  for (let i = 0; i < n; i += CHUNK) {
    const batch = Array.from({ length: Math.min(CHUNK, n - i) }, (_, k) => ({ name, data: data(i + k) }));
    jobs.push(...(await queue.addBulk(batch)));
  }
  return jobs;
}

const row = (workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system: SYSTEM, workload, metric, value, ...extra });

/** `jobs` no-op jobs enqueued with addBulk, then drained by one worker at `concurrency`. */
export async function noopThroughput(jobs: number, concurrency: number): Promise<BenchResult[]> {
  return withQueue(async (queue, ctx) => {
    const t0 = performance.now();
    await withDeadline(
      addInChunks(queue, jobs, 'noop', (i) => ({ i })),
      300_000,
      'BullMQ addBulk',
    );
    const enqueueS = (performance.now() - t0) / 1000;
    let done = 0;
    const all = signal();
    const t1 = performance.now();
    const w = await startWorker(ctx, async () => null, concurrency);
    w.worker.on('completed', () => {
      if (++done === jobs) all.resolve(performance.now());
    });
    try {
      const end = await withDeadline(all.promise, 600_000, `BullMQ draining ${jobs} jobs`);
      return [row('noop-throughput', 'steps_per_s', Math.round(jobs / ((end - t1) / 1000))), row('noop-throughput', 'enqueue_per_s', Math.round(jobs / enqueueS))];
    } finally {
      await w.close();
    }
  });
}

/** One job at a time into an idle worker (same process): `queue.add` to the handler's first line. */
export async function enqueueToStart(samples: number, concurrency = 128): Promise<BenchResult[]> {
  return withQueue(async (queue, ctx) => {
    const waiting = new Map<string, { resolve: (t: number) => void }>();
    const w = await startWorker(ctx, async (job: Job<{ id: string }>) => waiting.get(job.data.id)?.resolve(performance.now()), concurrency);
    try {
      await sleep(200); // let the worker reach its blocking wait for jobs
      const lat: number[] = [];
      for (let i = 0; i < samples; i++) {
        const id = `e${i}`;
        const s = signal();
        waiting.set(id, s);
        const t0 = performance.now();
        await queue.add('mark', { id });
        lat.push((await withDeadline(s.promise, 10_000, `BullMQ job ${id} to start`)) - t0);
        waiting.delete(id);
        await sleep(2);
      }
      return [row('enqueue-to-start', 'p50_ms', round(percentile(lat, 50))), row('enqueue-to-start', 'p99_ms', round(percentile(lat, 99)))];
    } finally {
      await w.close();
    }
  });
}

/**
 * Worker A (a child process, defaults) takes the one job and is SIGKILLed; worker B (defaults)
 * starts at once. BullMQ's stalled-job checker moves the job back once its lock (30 s) has expired,
 * on a check every 30 s that first marks the job and moves it on the next pass: measured 60 s in
 * most runs and 90 s in some (a pass skipped because the previous worker's check is still fresh).
 */
export async function crashRecovery(capMs: number): Promise<BenchResult[]> {
  return withQueue(async (queue, ctx) => {
    const job = await queue.add('hold', {}, { removeOnComplete: false });
    if (!job.id) throw new Error('bench: BullMQ returned a job without an id');
    const r = await killAndRestart(new URL('./workers/bullmq-worker.ts', import.meta.url), { prefix: ctx.prefix, queue: QUEUE, host: REDIS.host, port: String(REDIS.port) }, job.id, capMs);
    return [
      row('crash-recovery', 'ms', Math.round(r.ms), r.capped ? { capped: true, note: `not restarted within the ${capMs / 1000} s cap` } : { note: 'defaults: lockDuration 30 s, stalledInterval 30 s (60 or 90 s from run to run)' }),
    ];
  });
}

/** `samples` jobs stuck on a never-answering HTTP request; BullMQ has no timeout to cut them. */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  const hole = await blackhole();
  const cleanup = new AbortController();
  try {
    return await withQueue(async (queue, ctx) => {
      const startedAt = new Map<string, number>();
      const failedAt = new Map<string, number>();
      const w = await startWorker(
        ctx,
        async (job) => {
          startedAt.set(job.id ?? '', Date.now());
          await hangingRequest(hole.url, cleanup.signal);
        },
        Math.max(samples, 1),
      );
      w.worker.on('failed', (job) => {
        if (job && !cleanup.signal.aborted) failedAt.set(job.id ?? '', Date.now());
      });
      try {
        await addInChunks(queue, samples, 'hang', (i) => ({ i }));
        const until = performance.now() + 30_000;
        while (startedAt.size < samples) {
          if (performance.now() > until) throw new Error('bench: BullMQ hang-cut jobs did not all start');
          await sleep(5);
        }
        const lastDeadline = Math.max(...startedAt.values()) + deadlineMs;
        while (failedAt.size < samples && Date.now() < lastDeadline + capMs) await sleep(20);
        if (failedAt.size < samples) {
          const active = await queue.getActiveCount();
          const note = `no timeout for running jobs: ${active}/${samples} still active ${capMs / 1000} s past the deadline`;
          return [row('hang-cut', 'p50_ms', capMs, { capped: true, note }), row('hang-cut', 'p99_ms', capMs, { capped: true, note })];
        }
        const over = [...failedAt].map(([id, t]) => t - ((startedAt.get(id) ?? t) + deadlineMs));
        return [row('hang-cut', 'p50_ms', round(percentile(over, 50))), row('hang-cut', 'p99_ms', round(percentile(over, 99)))];
      } finally {
        cleanup.abort();
        await w.close();
      }
    });
  } finally {
    cleanup.abort();
    await hole.close();
  }
}
