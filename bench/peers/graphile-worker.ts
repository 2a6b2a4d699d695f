/**
 * graphile-worker on PostgreSQL (127.0.0.1:5432), in a fresh database `rwbench_<id>` dropped
 * afterwards.
 *
 * Throughput configuration, after its performance page (worker.graphile.org/docs/performance, the
 * "batching" section, whose own stats use `localQueue.size` 500, `completeJobBatchDelay` 0,
 * `failJobBatchDelay` 0 and `maxPoolSize` = concurrency + 1): `concurrentJobs` N (the shared value),
 * `localQueue.size` 2000 (measured here faster than 500 with N = 128), completions and failures
 * batched with delay 0, `maxPoolSize` N + 2 (the typings: "`concurrentJobs + 2`, whichever is
 * larger"; it opens connections on demand, 6 at most here); jobs added with `addJobs` (one
 * `add_jobs` call per 1,000), then `ANALYZE` as for pg-boss. Everything else default: `pollInterval`
 * 2 s, LISTEN/NOTIFY for new jobs.
 *
 * graphile-worker has no timeout for a running job, and a job locked by a worker that died stays
 * locked for 4 hours before another worker may take it (scanned every 8 to 10 minutes).
 */
import { EventEmitter } from 'node:events';
import { readFileSync } from 'node:fs';
import { Logger, makeWorkerUtils, run, type Runner, type TaskList, type WorkerEvents, type WorkerUtils } from 'graphile-worker';
import type { BenchResult } from '../report.ts';
import { blackhole, hangingRequest, killAndRestart, percentile, round, signal, sleep, waitFor, withDatabase, withDeadline, type BenchDatabase } from './common.ts';

const SYSTEM = 'graphile-worker';
const CHUNK = 1000;
/** Measured on the 2-core bench machine with concurrency 128: 2000 beat 500 and 1000. */
const LOCAL_QUEUE_SIZE = 2000;

export const configuration =
  '`concurrentJobs` N (the shared value), `localQueue: { size: 2000 }`, `completeJobBatchDelay: 0`, `failJobBatchDelay: 0`, `maxPoolSize` N + 2 ' +
  '(docs: performance / batching); jobs added with `addJobs`, 1,000 per call; everything else default (`pollInterval` 2 s, LISTEN/NOTIFY). ' +
  'No timeout exists for a running job; a dead worker\'s job stays locked for 4 h.';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../node_modules/graphile-worker/package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Errors go to stderr; the info chatter (worker started, job completed) does not. */
export const quietLogger = new Logger(() => (level, message) => {
  if ((level as string) === 'error') process.stderr.write(`graphile-worker: ${message}\n`);
});

async function withUtils<T>(fn: (db: BenchDatabase, utils: WorkerUtils) => Promise<T>): Promise<T> {
  return withDatabase(async (db) => {
    const utils = await makeWorkerUtils({ connectionString: db.url, logger: quietLogger });
    try {
      await withDeadline(utils.migrate(), 60_000, 'graphile-worker migrate');
      return await fn(db, utils);
    } finally {
      await utils.release();
    }
  });
}

async function startRunner(db: BenchDatabase, taskList: TaskList, concurrency: number, events: WorkerEvents = new EventEmitter() as WorkerEvents): Promise<Runner> {
  return withDeadline(
    run({
      connectionString: db.url,
      concurrency,
      maxPoolSize: Math.max(10, concurrency + 2),
      noHandleSignals: true,
      logger: quietLogger,
      crontab: '',
      taskList,
      events,
      preset: { worker: { localQueue: { size: LOCAL_QUEUE_SIZE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    }),
    30_000,
    'graphile-worker run()',
  );
}

const stop = (runner: Runner): Promise<void> => withDeadline(runner.stop(), 30_000, 'graphile-worker stop');

async function addInChunks(utils: WorkerUtils, n: number, identifier: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += CHUNK) {
    const specs = Array.from({ length: Math.min(CHUNK, n - i) }, (_, k) => ({ identifier, payload: { i: i + k } }));
    ids.push(...(await utils.addJobs(specs)).map((j) => j.id));
  }
  return ids;
}

const remaining = async (db: BenchDatabase): Promise<number> => Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker._private_jobs'))[0]?.n ?? NaN);

const row = (workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system: SYSTEM, workload, metric, value, ...extra });

/**
 * `jobs` no-op jobs added first, then one runner drains them. The clock starts at `pool:create`
 * (the pool spawns its workers and fills its local queue right after) and stops when the job table
 * is empty: completing a job deletes it, so an empty table means every completion is committed.
 */
export async function noopThroughput(jobs: number, concurrency: number): Promise<BenchResult[]> {
  return withUtils(async (db, utils) => {
    const t0 = performance.now();
    await withDeadline(addInChunks(utils, jobs, 'noop'), 300_000, 'graphile-worker addJobs');
    const enqueueS = (performance.now() - t0) / 1000;
    await db.query('ANALYZE graphile_worker._private_jobs'); // as for pg-boss: the statistics autovacuum would have
    const events = new EventEmitter() as WorkerEvents;
    let t1 = NaN;
    events.once('pool:create', () => (t1 = performance.now()));
    let ran = 0;
    const handlersDone = signal();
    const runner = await startRunner(
      db,
      {
        noop: () => {
          if (++ran === jobs) handlersDone.resolve(performance.now());
        },
      },
      concurrency,
      events,
    );
    try {
      await withDeadline(handlersDone.promise, 600_000, `graphile-worker running ${jobs} jobs`);
      await waitFor(async () => (await remaining(db)) === 0, 60_000, 'graphile-worker completions to commit', 10);
      const end = performance.now();
      return [row('noop-throughput', 'steps_per_s', Math.round(jobs / ((end - t1) / 1000))), row('noop-throughput', 'enqueue_per_s', Math.round(jobs / enqueueS))];
    } finally {
      await stop(runner);
    }
  });
}

/** One job at a time (`addJob` on a separate pool, as a producer would) into an idle runner. */
export async function enqueueToStart(samples: number, concurrency = 128): Promise<BenchResult[]> {
  return withUtils(async (db, utils) => {
    const waiting = new Map<string, { resolve: (t: number) => void }>();
    const runner = await startRunner(db, { mark: (payload) => waiting.get((payload as { id: string }).id)?.resolve(performance.now()) }, concurrency);
    try {
      await sleep(300); // LISTEN established, local queue idle
      const lat: number[] = [];
      for (let i = 0; i < samples; i++) {
        const id = `e${i}`;
        const s = signal();
        waiting.set(id, s);
        const t0 = performance.now();
        await utils.addJob('mark', { id });
        lat.push((await withDeadline(s.promise, 10_000, `graphile-worker job ${id} to start`)) - t0);
        waiting.delete(id);
        await sleep(2);
      }
      return [row('enqueue-to-start', 'p50_ms', round(percentile(lat, 50))), row('enqueue-to-start', 'p99_ms', round(percentile(lat, 99)))];
    } finally {
      await stop(runner);
    }
  });
}

/** Worker A (child process, defaults) takes the job and is SIGKILLed; B never gets it before 4 h. */
export async function crashRecovery(capMs: number): Promise<BenchResult[]> {
  return withUtils(async (db, utils) => {
    const job = await utils.addJob('hold', {});
    const r = await killAndRestart(new URL('./workers/graphile-worker-worker.ts', import.meta.url), { url: db.url }, job.id, capMs);
    return [
      row('crash-recovery', 'ms', Math.round(r.ms), r.capped ? { capped: true, note: `not restarted within the ${capMs / 1000} s cap (a dead worker's lock is released after 4 h)` } : {}),
    ];
  });
}

/** `samples` jobs stuck on a never-answering HTTP request; graphile-worker has no timeout to cut them. */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  const hole = await blackhole();
  const cleanup = new AbortController();
  try {
    return await withUtils(async (db, utils) => {
      const startedAt: number[] = [];
      let failed = 0;
      const events = new EventEmitter() as WorkerEvents;
      events.on('job:error', () => {
        if (!cleanup.signal.aborted) failed++;
      });
      const runner = await startRunner(
        db,
        {
          hang: async () => {
            startedAt.push(Date.now());
            await hangingRequest(hole.url, cleanup.signal);
          },
        },
        Math.max(samples, 1),
        events,
      );
      try {
        await addInChunks(utils, samples, 'hang');
        await waitFor(() => startedAt.length >= samples, 30_000, 'graphile-worker hang-cut jobs to start', 5);
        const lastDeadline = Math.max(...startedAt) + deadlineMs;
        while (failed < samples && Date.now() < lastDeadline + capMs) await sleep(20);
        if (failed >= samples) throw new Error('bench: graphile-worker cut hanging jobs, which this adapter does not expect: measure it');
        const locked = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM graphile_worker._private_jobs WHERE locked_at IS NOT NULL'))[0]?.n ?? NaN);
        const note = `no timeout for running jobs: ${locked}/${samples} still locked ${capMs / 1000} s past the deadline`;
        return [row('hang-cut', 'p50_ms', capMs, { capped: true, note }), row('hang-cut', 'p99_ms', capMs, { capped: true, note })];
      } finally {
        cleanup.abort();
        await stop(runner);
      }
    });
  } finally {
    cleanup.abort();
    await hole.close();
  }
}
