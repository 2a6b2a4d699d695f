/**
 * DBOS Transact (`@dbos-inc/dbos-sdk`) on PostgreSQL (127.0.0.1:5432): its system database is a
 * fresh database `rwbench_<id>`, dropped afterwards.
 *
 * A runwarden run of one step is a DBOS workflow of one step (`DBOS.runStep`), enqueued on a DBOS
 * queue and run by the process that dequeues it: the durable-steps model both share. Configured as
 * DBOS's docs say for a deployment of several processes without Conductor (its hosted service):
 * every process has an executor ID of its own (`executorID`; "it must be set to a unique value for
 * each process" when queues use `workerConcurrency`), the queue's `workerConcurrency` is N (the
 * shared in-flight value), and queues are registered after `launch` (DBOS 5: their configuration
 * lives in the database). Work is enqueued with `DBOSClient.enqueueInTransaction`, 1,000 per
 * transaction (DBOS's way of enqueueing many at once, in a transaction the caller owns).
 *
 * The queue's `minPollingIntervalMs` is DBOS's documented knob for how often a queue is polled
 * (default 1,000 ms): DBOS has no wake-up on enqueue, so with the default a worker starts at most
 * `workerConcurrency` workflows per second. POLL_MS below is what throughput and enqueue-to-start
 * use, with the measurements that chose it.
 *
 * hang-cut uses the step's own `timeoutMS` (DBOS 5): the attempt fails with DBOSStepTimeoutError
 * at the deadline, and, as its typings say, "the attempt's code is not forcibly terminated".
 *
 * Everything runs in this process (DBOS is one global per process, launched and shut down per
 * measurement) except the crash-recovery workers (workers/dbos-worker.ts).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DBOS, DBOSClient } from '@dbos-inc/dbos-sdk';
import pg from 'pg';
import type { BenchResult } from '../report.ts';
import { blackhole, hangingRequest, killAndRestart, percentile, randomId, round, sleep, waitFor, withDatabase, withDeadline, type BenchDatabase } from './common.ts';

const SYSTEM = 'dbos';
const APP = 'rwbench';
/** One application version everywhere: enqueued work names it, so no process waits to become "the latest version". */
export const APP_VERSION = 'rwbench-1';
export const QUEUE = 'bench';
const CHUNK = 1000;
/**
 * Measured here (3,000 one-step workflows, workerConcurrency 128, a loaded 2-core machine): a
 * 1,000 ms poll (the default) drained 113 workflows/s, 100 ms 154-194/s, 20 ms 179/s; a
 * workerConcurrency of 512 or 10,000, or a system pool of 40, was no faster (the process then
 * waits on the database: 22 % of a core).
 */
export const POLL_MS = 100;

export const configuration =
  `one process, \`executorID\` of its own (DBOS: unique per process when queues use worker limits), a queue registered after \`launch\` with \`workerConcurrency\` N (the shared value) ` +
  `and \`minPollingIntervalMs\` ${POLL_MS} (default 1,000: DBOS polls its queues and has no wake-up on enqueue, so at the default one process starts at most N workflows a second); ` +
  'each job is a workflow of one `DBOS.runStep`; work enqueued with `DBOSClient.enqueueInTransaction`, 1,000 per transaction; a `logger` that keeps warnings and errors, one line each; ' +
  'everything else default (system pool 10, 3 queue dispatch lanes). hang-cut: the step\'s `timeoutMS` = the deadline, no retries. ' +
  'crash-recovery `ms`: the killed executor restarted under its own ID (it recovers its PENDING workflows at `launch`); `ms_other_process`: a fresh process with an executor ID of its own.';

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../../node_modules/@dbos-inc/dbos-sdk/package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/**
 * DBOS's log in one line per warning or error on stderr (its console logger prints a stack for
 * every timed-out step, which hang-cut makes on purpose).
 */
const logger = {
  info: () => undefined,
  debug: () => undefined,
  warn: (e: unknown) => void process.stderr.write(`bench: dbos warn: ${String(e).split('\n')[0]}\n`),
  error: (e: unknown) => {
    const line = e instanceof Error ? e.message : String(e);
    if (!/timed out after/.test(line)) process.stderr.write(`bench: dbos error: ${line.split('\n')[0]}\n`);
  },
};

/** The configuration every DBOS process of the bench launches with (the crash-recovery workers too). */
export function dbosConfig(url: string, executorID: string): Parameters<typeof DBOS.setConfig>[0] {
  return { name: APP, systemDatabaseUrl: url, executorID, applicationVersion: APP_VERSION, logger };
}

const row = (workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system: SYSTEM, workload, metric, value, ...extra });

/**
 * Registers what `register` defines, launches DBOS on `db` (a fresh system database when not given)
 * with the queue, runs `fn`, and always shuts DBOS down (clearing its registry); a database it
 * created it drops.
 */
async function withDbos<T>(register: () => void, queue: { workerConcurrency: number; minPollingIntervalMs?: number }, fn: (db: BenchDatabase) => Promise<T>, on?: BenchDatabase): Promise<T> {
  if (!on) return withDatabase((db) => withDbos(register, queue, fn, db));
  register();
  DBOS.setConfig(dbosConfig(on.url, `bench-${randomId()}`));
  await withDeadline(DBOS.launch(), 60_000, 'DBOS launch');
  try {
    await DBOS.registerQueue(QUEUE, { workerConcurrency: queue.workerConcurrency, minPollingIntervalMs: queue.minPollingIntervalMs ?? POLL_MS });
    return await fn(on);
  } finally {
    await withDeadline(DBOS.shutdown({ deregister: true }), 30_000, 'DBOS shutdown');
  }
}

/** `n` enqueues of `workflowName` with DBOS's client, `CHUNK` per transaction on one connection. */
export async function enqueueBulk(url: string, workflowName: string, n: number, args: (i: number) => unknown[] = () => [], ids?: (i: number) => string): Promise<void> {
  const client = await DBOSClient.create({ systemDatabaseUrl: url, applicationName: APP });
  const conn = new pg.Client({ connectionString: url, application_name: 'rwbench-dbos-enqueue' });
  conn.on('error', () => undefined); // a broken connection fails the next query, which reports it
  await conn.connect();
  try {
    for (let i = 0; i < n; i += CHUNK) {
      await conn.query('BEGIN');
      for (let k = i; k < Math.min(n, i + CHUNK); k++) {
        await client.enqueueInTransaction(conn, { workflowName, queueName: QUEUE, appVersion: APP_VERSION, ...(ids ? { workflowID: ids(k) } : {}) }, ...(args(k) as []));
      }
      await conn.query('COMMIT');
    }
  } finally {
    await conn.end().catch(() => undefined); // already closed: nothing left to report
    await client.destroy();
  }
}

const countStatus = async (db: BenchDatabase, status: string): Promise<number> =>
  Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM dbos.workflow_status WHERE status = $1', [status]))[0]?.n ?? NaN);

/**
 * `jobs` one-step workflows enqueued first (DBOS not yet launched, so nothing runs), then one DBOS
 * process drains them: from `launch` returning to the last workflow's completion as the system
 * database recorded it (`completed_at`, the database clock in epoch ms).
 */
export async function noopThroughput(jobs: number, concurrency: number, pollMs = POLL_MS): Promise<BenchResult[]> {
  return withDatabase(async (db) => {
    const noop = async (): Promise<void> => {
      await DBOS.runStep(async () => null, { name: 'noop' });
    };
    // The system database exists before the enqueue, as a deployment's first launch leaves it.
    await withDeadline(DBOS.migrate(db.url), 60_000, 'DBOS migrate');

    const t0 = performance.now();
    await withDeadline(enqueueBulk(db.url, 'noop', jobs), 600_000, 'DBOS enqueue');
    const enqueueS = (performance.now() - t0) / 1000;
    await db.query('ANALYZE dbos.workflow_status');
    const register = (): void => void DBOS.registerWorkflow(noop, { name: 'noop' });
    return withDbos(register, { workerConcurrency: concurrency, minPollingIntervalMs: pollMs }, async () => {
      const start = Number((await db.query<{ t: string }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint AS t'))[0]?.t);
      await waitFor(async () => (await countStatus(db, 'SUCCESS')) >= jobs, 600_000, `DBOS running ${jobs} workflows`, 50);
      const last = Number((await db.query<{ t: string }>("SELECT max(completed_at) AS t FROM dbos.workflow_status WHERE status = 'SUCCESS'"))[0]?.t);
      const steps = Number((await db.query<{ n: string }>("SELECT count(*) AS n FROM dbos.operation_outputs WHERE function_name = 'noop'"))[0]?.n);
      if (steps !== jobs) throw new Error(`bench: DBOS recorded ${steps} of ${jobs} steps`);
      return [
        row('noop-throughput', 'steps_per_s', Math.round(jobs / ((last - start) / 1000)), { note: `queue polled every ${pollMs} ms` }),
        row('noop-throughput', 'enqueue_per_s', Math.round(jobs / enqueueS), { note: 'enqueueInTransaction, 1,000 per transaction' }),
      ];
    }, db);
  });
}

/** One workflow at a time onto the queue of an idle DBOS process (same process), 2 ms apart: `startWorkflow` to the step's first line. */
export async function enqueueToStart(samples: number, concurrency = 128): Promise<BenchResult[]> {
  const started = new Map<number, number>();
  let mark!: (i: number) => Promise<void>;
  const register = (): void => {
    mark = DBOS.registerWorkflow(
      async (i: number) => {
        await DBOS.runStep(async () => void started.set(i, performance.now()), { name: 'mark' });
      },
      { name: 'mark' },
    );
  };
  return withDbos(register, { workerConcurrency: concurrency }, async () => {
    await sleep(300);
    const lat: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      await DBOS.startWorkflow(mark, { queueName: QUEUE })(i);
      await waitFor(() => started.has(i), 30_000, `DBOS workflow ${i} to start`, 1);
      lat.push((started.get(i) as number) - t0);
      await sleep(2);
    }
    const note = `queue polled every ${POLL_MS} ms`;
    return [row('enqueue-to-start', 'p50_ms', round(percentile(lat, 50)), { note }), row('enqueue-to-start', 'p99_ms', round(percentile(lat, 99)), { note })];
  });
}

/**
 * `samples` workflows whose one step has `timeoutMS` = the deadline and never returns: it writes to
 * a file of its own every 10 ms and waits on a request to a server that never answers. Overshoot:
 * the workflow's ERROR as recorded (`updated_at`) minus the step's start plus the deadline, both
 * from the system database's own rows. Then whether the steps' code still runs: the files that
 * still grow over the next second, and the requests' sockets still open.
 */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  const hole = await blackhole();
  const dir = mkdtempSync(join(tmpdir(), 'rwbench-dbos-hang-'));
  const cleanup = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  let hang!: (i: number) => Promise<void>;
  const register = (): void => {
    hang = DBOS.registerWorkflow(
      async (i: number) => {
        await DBOS.runStep(
          async () => {
            const file = join(dir, `step-${i}.log`);
            timers.push(setInterval(() => appendFileSync(file, 'x'), 10));
            await hangingRequest(hole.url, cleanup.signal);
          },
          { name: 'hang', timeoutMS: deadlineMs },
        );
      },
      { name: 'hang' },
    );
  };
  try {
    return await withDbos(register, { workerConcurrency: Math.max(samples, 1) }, async (db) => {
      for (let i = 0; i < samples; i++) await DBOS.startWorkflow(hang, { queueName: QUEUE })(i);
      const until = performance.now() + 30_000 + deadlineMs + capMs;
      while ((await countStatus(db, 'ERROR')) < samples && performance.now() < until) await sleep(50);
      const rows = await db.query<{ over: string }>(
        `SELECT (w.updated_at - o.started_at_epoch_ms - $1)::float8 AS over
           FROM dbos.workflow_status w JOIN dbos.operation_outputs o ON o.workflow_uuid = w.workflow_uuid AND o.function_name = 'hang'
          WHERE w.status = 'ERROR'`,
        [deadlineMs],
      );
      if (rows.length < samples) {
        const note = `${samples - rows.length}/${samples} not failed ${capMs / 1000} s past the deadline`;
        return [row('hang-cut', 'p50_ms', capMs, { capped: true, note }), row('hang-cut', 'p99_ms', capMs, { capped: true, note })];
      }
      const over = rows.map((r) => Number(r.over));
      const growing = await stillGrowing(dir, samples, 1000);
      const note = `step timeoutMS ${deadlineMs}: the workflow recorded ERROR (DBOSStepTimeoutError); ${growing}/${samples} steps' code still running after it`;
      return [
        row('hang-cut', 'p50_ms', round(percentile(over, 50)), { note }),
        row('hang-cut', 'p99_ms', round(percentile(over, 99)), { note }),
        row('hang-cut', 'sockets_left_open', hole.open(), { note: `of the ${hole.requests()} requests' sockets, once every workflow had failed` }),
        row('hang-cut', 'steps_still_running', growing, { note: `of ${samples} timed-out steps, those whose file still grew in the second after the last one failed` }),
      ];
    });
  } finally {
    cleanup.abort();
    for (const t of timers) clearInterval(t);
    await hole.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** How many of the files `step-<i>.log` in `dir` grew over `ms`. */
export async function stillGrowing(dir: string, n: number, ms: number): Promise<number> {
  const size = (i: number): number => {
    try {
      return statSync(join(dir, `step-${i}.log`)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      throw err;
    }
  };
  const before = Array.from({ length: n }, (_, i) => size(i));
  await sleep(ms);
  return before.filter((b, i) => size(i) > b).length;
}

/**
 * Worker A dequeues the one workflow and is SIGKILLed. `ms`: the recovery DBOS documents for a
 * self-hosted process: the killed executor restarted at once under its own executor ID, which
 * recovers its PENDING workflows at `launch`. `ms_other_process`: the same kill, and a fresh
 * process with an executor ID of its own started at once: does it ever run the workflow?
 */
export async function crashRecovery(capMs: number): Promise<BenchResult[]> {
  return withDatabase(async (db) => {
    const script = new URL('./workers/dbos-worker.ts', import.meta.url);
    // The system database, as a first deployment would have left it.
    await withDeadline(DBOS.migrate(db.url), 60_000, 'DBOS migrate');
    const other = await sample(db.url, script, 'wf-other', capMs, false);
    const same = await sample(db.url, script, 'wf-same', capMs, true);
    return [
      row('crash-recovery', 'ms', Math.round(same.ms), {
        ...(same.capped ? { capped: true } : {}),
        note: same.capped ? `not recovered within the ${capMs / 1000} s cap` : 'the killed executor restarted at once under its own executor ID (DBOS recovers its PENDING workflows at launch)',
      }),
      row('crash-recovery', 'ms_other_process', Math.round(other.ms), {
        ...(other.capped ? { capped: true } : {}),
        note: other.capped
          ? `a fresh process with its own executor ID never ran it within the ${capMs / 1000} s cap (without Conductor, DBOS recovers an executor's workflows only in an executor of the same ID)`
          : 'run by a fresh process with its own executor ID',
      }),
    ];
  });
}

async function sample(url: string, script: URL, workflowID: string, capMs: number, sameExecutor: boolean): Promise<{ ms: number; capped: boolean }> {
  await enqueueBulk(url, 'hold', 1, () => [], () => workflowID);
  const a = { url, executorID: `exec-a-${workflowID}` };
  const b = sameExecutor ? a : { url, executorID: `exec-b-${workflowID}` };
  return killAndRestart(script, a, workflowID, capMs, b);
}
