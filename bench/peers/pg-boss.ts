/**
 * pg-boss on PostgreSQL (127.0.0.1:5432), in a fresh database `rwbench_<id>` dropped afterwards.
 *
 * Throughput configuration. pg-boss's docs scale a worker by `batchSize` ("fetch multiple jobs at
 * once") and by calling `work()` more than once; `notifyWorker(id)` "bypasses the job polling
 * interval for this iteration". A `work()` loop sleeps `pollingIntervalSeconds` (2 s by default,
 * 0.5 s at least) after *every* batch, even a full one, which caps one loop at batchSize per
 * interval; so the handler notifies its own worker when its batch came back full, and the loop
 * fetches again at once, as long as jobs are waiting. Settings: `batchSize` 1000, two `work()`
 * loops, at most N (the shared concurrency) jobs of a batch in flight at a time; jobs added with
 * `insert` (1,000 per call), then `ANALYZE` (see noopThroughput). Everything else default
 * (retryLimit 2, expireIn 15 min, maintenance every 120 s).
 *
 * pg-boss has a timeout for running jobs: `expireInSeconds` (at least 1 s). The worker races the
 * handler against it and fails the job when it wins; hang-cut uses it.
 */
import { readFileSync } from 'node:fs';
import PgBoss from 'pg-boss';
import type { BenchResult } from '../report.ts';
import { blackhole, hangingRequest, killAndRestart, percentile, round, signal, sleep, waitFor, withDatabase, withDeadline, type BenchDatabase } from './common.ts';

const SYSTEM = 'pg-boss';
const QUEUE = 'bench';
const CHUNK = 1000;
/**
 * Measured here (20,000 jobs, after ANALYZE): 2 loops x 1000 with self-notify 25-30k jobs/s; 1 x 1000
 * 22-24k; 4 x 1000 23-28k; 2 x 500 13-14k; without self-notify 2 x 1000 1.1k (the 2 s sleep), and
 * 8 loops polling every 0.5 s 16-17k.
 */
const BATCH_SIZE = 1000;
const WORKERS = 2;

export const configuration =
  `\`work()\` called ${WORKERS} times with \`batchSize: ${BATCH_SIZE}\`, at most N (the shared value) jobs of a batch in flight, and \`notifyWorker(id)\` from the handler ` +
  'when its batch came back full (a `work()` loop otherwise sleeps `pollingIntervalSeconds`, 2 s by default, after every batch); jobs added with `insert`, ' +
  '1,000 per call; enqueue-to-start calls `notifyWorker` after `send` (same process); everything else default (`retryLimit` 2, `expireInSeconds` 900, ' +
  'maintenance every 120 s). hang-cut uses `expireInSeconds`.';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../node_modules/pg-boss/package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

async function withBoss<T>(fn: (boss: PgBoss, db: BenchDatabase) => Promise<T>): Promise<T> {
  return withDatabase(async (db) => {
    const boss = new PgBoss({ connectionString: db.url });
    boss.on('error', (err) => process.stderr.write(`bench: pg-boss error: ${err.message}\n`));
    await withDeadline(boss.start(), 60_000, 'pg-boss start');
    try {
      await boss.createQueue(QUEUE);
      return await fn(boss, db);
    } finally {
      await withDeadline(boss.stop({ graceful: false, wait: true, timeout: 5000 }), 30_000, 'pg-boss stop');
    }
  });
}

/** Runs `fn` over `items` with at most `limit` in flight. */
async function eachLimited<T>(items: T[], limit: number, fn: (item: T) => unknown): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++] as T;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/** Starts WORKERS `work()` loops; each notifies itself after a full batch (see the file comment). */
async function startWorkers(boss: PgBoss, concurrency: number, handle: (job: PgBoss.Job<{ id?: string }>) => unknown, options: PgBoss.WorkOptions = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let w = 0; w < WORKERS; w++) {
    let id = '';
    id = await boss.work<{ id?: string }>(QUEUE, { batchSize: BATCH_SIZE, ...options }, async (jobs) => {
      await eachLimited(jobs, concurrency, handle);
      if (jobs.length >= (options.batchSize ?? BATCH_SIZE)) boss.notifyWorker(id);
    });
    ids.push(id);
  }
  return ids;
}

const count = async (db: BenchDatabase, where: string): Promise<number> =>
  Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM pgboss.job WHERE name = $1 AND ${where}`, [QUEUE]))[0]?.n ?? NaN);

const row = (workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system: SYSTEM, workload, metric, value, ...extra });

/**
 * `jobs` no-op jobs inserted first, then drained. pg-boss completes a batch after its handler
 * returns without awaiting it, so the clock stops when the job table has no job left that is not
 * `completed`.
 */
export async function noopThroughput(jobs: number, concurrency: number): Promise<BenchResult[]> {
  return withBoss(async (boss, db) => {
    const t0 = performance.now();
    for (let i = 0; i < jobs; i += CHUNK) {
      await withDeadline(
        boss.insert(Array.from({ length: Math.min(CHUNK, jobs - i) }, (_, k) => ({ name: QUEUE, data: { i: i + k } }))),
        60_000,
        'pg-boss insert',
      );
    }
    const enqueueS = (performance.now() - t0) / 1000;
    // Planner statistics, as autovacuum would have gathered them on any database up for a minute.
    // Without them a fresh queue's completion query is a nested loop: about 1 s per 1,000 jobs
    // completed while 10,000 are active, which would measure the fresh table, not pg-boss.
    await db.query('ANALYZE pgboss.job');
    let ran = 0;
    const handlersDone = signal();
    const t1 = performance.now();
    await startWorkers(boss, concurrency, () => {
      if (++ran === jobs) handlersDone.resolve(performance.now());
    });
    try {
      await withDeadline(handlersDone.promise, 600_000, `pg-boss running ${jobs} jobs`);
      await waitFor(async () => (await count(db, "state <> 'completed'")) === 0, 60_000, 'pg-boss completions to commit', 10);
      const end = performance.now();
      return [row('noop-throughput', 'steps_per_s', Math.round(jobs / ((end - t1) / 1000))), row('noop-throughput', 'enqueue_per_s', Math.round(jobs / enqueueS))];
    } finally {
      await boss.offWork(QUEUE);
    }
  });
}

/**
 * One job at a time into idle workers. pg-boss polls (no LISTEN/NOTIFY); in the same process the
 * producer can wake its workers with `notifyWorker`, which this measures. Across processes the
 * latency is the polling interval instead (2 s by default, 0.5 s at least).
 */
export async function enqueueToStart(samples: number, concurrency = 128): Promise<BenchResult[]> {
  return withBoss(async (boss) => {
    const waiting = new Map<string, { resolve: (t: number) => void }>();
    const ids = await startWorkers(boss, concurrency, (job) => waiting.get(job.data.id ?? '')?.resolve(performance.now()));
    try {
      await sleep(300);
      const lat: number[] = [];
      for (let i = 0; i < samples; i++) {
        const id = `e${i}`;
        const s = signal();
        waiting.set(id, s);
        const t0 = performance.now();
        await boss.send(QUEUE, { id });
        for (const w of ids) boss.notifyWorker(w);
        lat.push((await withDeadline(s.promise, 10_000, `pg-boss job ${id} to start`)) - t0);
        waiting.delete(id);
        await sleep(2);
      }
      return [
        row('enqueue-to-start', 'p50_ms', round(percentile(lat, 50)), { note: 'in-process notifyWorker after send' }),
        row('enqueue-to-start', 'p99_ms', round(percentile(lat, 99)), { note: 'in-process notifyWorker after send' }),
      ];
    } finally {
      await boss.offWork(QUEUE);
    }
  });
}

/**
 * Worker A (child process, defaults) takes the job and is SIGKILLed; B (defaults) polls every 2 s
 * but the job stays `active` until it expires (15 min) and maintenance (every 120 s) retries it.
 */
export async function crashRecovery(capMs: number): Promise<BenchResult[]> {
  return withBoss(async (boss, db) => {
    const jobId = await boss.send(QUEUE, {});
    if (!jobId) throw new Error('bench: pg-boss send returned no id');
    const r = await killAndRestart(new URL('./workers/pg-boss-worker.ts', import.meta.url), { url: db.url, queue: QUEUE }, jobId, capMs);
    return [
      row('crash-recovery', 'ms', Math.round(r.ms), r.capped ? { capped: true, note: `not restarted within the ${capMs / 1000} s cap (an active job expires after 15 min, checked every 120 s)` } : {}),
    ];
  });
}

/**
 * `samples` jobs stuck on a never-answering HTTP request with `expireInSeconds` = the deadline and
 * no retry; overshoot from the database's own clock: completed_on - (started_on + expire_in).
 */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  if (deadlineMs % 1000 !== 0 || deadlineMs < 1000) throw new Error('bench: pg-boss expireInSeconds needs a whole number of seconds, at least 1');
  const hole = await blackhole();
  const cleanup = new AbortController();
  try {
    return await withBoss(async (boss, db) => {
      await startWorkers(boss, Math.max(samples, 1), () => hangingRequest(hole.url, cleanup.signal));
      try {
        await boss.insert(Array.from({ length: samples }, (_, i) => ({ name: QUEUE, data: { i }, expireInSeconds: deadlineMs / 1000, retryLimit: 0 })));
        await waitFor(async () => (await count(db, 'started_on IS NOT NULL')) >= samples, 30_000, 'pg-boss hang-cut jobs to start', 20);
        const until = performance.now() + deadlineMs + capMs;
        while ((await count(db, "state = 'failed'")) < samples && performance.now() < until) await sleep(50);
        const rows = await db.query<{ over: string | null }>(
          "SELECT (extract(epoch FROM completed_on - (started_on + expire_in)) * 1000)::float8 AS over FROM pgboss.job WHERE name = $1 AND state = 'failed'",
          [QUEUE],
        );
        if (rows.length < samples) {
          const note = `${samples - rows.length}/${samples} not failed ${capMs / 1000} s past the deadline`;
          return [row('hang-cut', 'p50_ms', capMs, { capped: true, note }), row('hang-cut', 'p99_ms', capMs, { capped: true, note })];
        }
        const over = rows.map((r) => Number(r.over));
        const note = `expireInSeconds ${deadlineMs / 1000}: failed by the worker's own timer; the request itself is left running`;
        // Measured, not assumed: the requests' sockets once every job has failed.
        const open = hole.open();
        return [
          row('hang-cut', 'p50_ms', round(percentile(over, 50)), { note }),
          row('hang-cut', 'p99_ms', round(percentile(over, 99)), { note }),
          row('hang-cut', 'sockets_left_open', open, { note: `of the ${hole.requests()} requests' sockets, once every job had failed` }),
        ];
      } finally {
        cleanup.abort();
        await boss.offWork(QUEUE);
      }
    });
  } finally {
    cleanup.abort();
    await hole.close();
  }
}
