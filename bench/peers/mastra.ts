/**
 * Mastra workflows (`@mastra/core`) with the durable storage its docs call production-ready,
 * `PostgresStore` (`@mastra/pg`), on PostgreSQL (127.0.0.1:5432) in a fresh database
 * `rwbench_<id>` dropped afterwards.
 *
 * A runwarden run of one step is a Mastra workflow of one step (`createWorkflow().then(step)`),
 * run by Mastra's default execution engine: `workflow.createRun()` then `run.start()` in the
 * process that holds the Mastra instance, its snapshots persisted to the store as it goes. That is
 * Mastra's default deployment (its workers "run in the same process as the API" unless split;
 * the split deployment is in beta and needs a Redis Streams or Google Cloud PubSub backend and a
 * `mastra build` server, so it is not measured here). Mastra has no queue of its own: throughput
 * keeps N (the shared in-flight value) runs started at a time, and there is no enqueue rate.
 *
 * Mastra has no timeout for a step or a run. Its way to stop a run is `run.cancel()`, which fires
 * the step's `abortSignal` and records the run `canceled`; hang-cut calls it at the deadline.
 *
 * crash-recovery: Mastra restarts runs left `running` only when asked: `restartAllActiveWorkflowRuns()`,
 * which its docs say the Mastra server calls when it starts. `ms` is a fresh process doing that at
 * boot; `ms_other_process` a process already running, which never does.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleLogger } from '@mastra/core/logger';
import { Mastra } from '@mastra/core/mastra';
import { createStep, createWorkflow } from '@mastra/core/workflows';
import { PostgresStore } from '@mastra/pg';
import { z } from 'zod';
import type { BenchResult } from '../report.ts';
import { stillGrowing } from './dbos.ts';
import { blackhole, hangingRequest, killAndRestart, percentile, randomId, round, sleep, spawnWorker, waitFor, withDatabase, withDeadline, type BenchDatabase } from './common.ts';

const SYSTEM = 'mastra';

export const configuration =
  '`new Mastra({ storage: new PostgresStore({ id, connectionString }), workflows })` (PostgresStore: Mastra\'s production storage for PostgreSQL; its pool default `max` 20), ' +
  'the default execution engine in one process; each job is a workflow of one `createStep`, run with `createRun()` + `start()`, N (the shared value) runs at a time; ' +
  'logger: Mastra\'s `ConsoleLogger` at level warn. hang-cut: `run.cancel()` at the deadline (Mastra has no step or run timeout). ' +
  'crash-recovery: a fresh process that calls `mastra.restartAllActiveWorkflowRuns()` at boot, as the Mastra server does; `ms_other_process`: another process already running.';

export function version(): string {
  const v = (pkg: string): string => (JSON.parse(readFileSync(new URL(`../../node_modules/${pkg}/package.json`, import.meta.url), 'utf8')) as { version: string }).version;
  return `${v('@mastra/core')} (@mastra/pg ${v('@mastra/pg')})`;
}

const row = (workload: string, metric: string, value: number, extra: Partial<BenchResult> = {}): BenchResult => ({ system: SYSTEM, workload, metric, value, ...extra });

const empty = z.object({});

/** A workflow `id` of one step whose body is `execute`. */
function commitOne(id: string, execute: (args: { runId: string; abortSignal: AbortSignal }) => Promise<unknown>) {
  const step = createStep({
    id: `${id}-step`,
    inputSchema: empty,
    outputSchema: empty,
    execute: async ({ runId, abortSignal }) => {
      await execute({ runId, abortSignal });
      return {};
    },
  });
  return createWorkflow({ id, inputSchema: empty, outputSchema: empty }).then(step).commit();
}
export const oneStepWorkflow = commitOne;

/** The Mastra instance every process of the bench builds (the crash-recovery workers too). */
export function mastraOn(url: string, workflows: Record<string, ReturnType<typeof commitOne>>): { mastra: Mastra; storage: PostgresStore } {
  const storage = new PostgresStore({ id: `rwbench-${randomId()}`, connectionString: url });
  const mastra = new Mastra({ storage, workflows, logger: new ConsoleLogger({ level: 'warn' }) });
  return { mastra, storage };
}

async function withMastra<T>(workflows: Record<string, ReturnType<typeof commitOne>>, fn: (mastra: Mastra, db: BenchDatabase) => Promise<T>): Promise<T> {
  return withDatabase(async (db) => {
    const { mastra, storage } = mastraOn(db.url, workflows);
    try {
      await withDeadline(storage.init(), 60_000, 'Mastra PostgresStore init');
      return await fn(mastra, db);
    } finally {
      await withDeadline(storage.close(), 30_000, 'Mastra PostgresStore close');
    }
  });
}

/** Runs `fn` over 0..n-1 with at most `limit` in flight. */
async function lanes(n: number, limit: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, n) }, async () => {
      while (next < n) await fn(next++);
    }),
  );
}

const snapshotTable = async (db: BenchDatabase): Promise<string> => {
  const rows = await db.query<{ t: string }>("SELECT table_name AS t FROM information_schema.tables WHERE table_name LIKE 'mastra_workflow_snapshot%' ORDER BY 1 LIMIT 1");
  const t = rows[0]?.t;
  if (!t) throw new Error('bench: Mastra created no workflow snapshot table');
  return t;
};

/** Runs in the store by the status their snapshot records. */
async function statuses(db: BenchDatabase): Promise<Map<string, number>> {
  const table = await snapshotTable(db);
  const rows = await db.query<{ s: string; n: string }>(`SELECT snapshot::jsonb->>'status' AS s, count(*) AS n FROM ${table} GROUP BY 1`);
  return new Map(rows.map((r) => [r.s, Number(r.n)]));
}

/** `jobs` one-step workflow runs, N started at a time in this process: from the first start to the last run's `start()` resolving, then checked in the store. */
export async function noopThroughput(jobs: number, concurrency: number): Promise<BenchResult[]> {
  const noop = oneStepWorkflow('noop', async () => undefined);
  return withMastra({ noop }, async (mastra, db) => {
    const wf = mastra.getWorkflow('noop');
    let failed = 0;
    const t0 = performance.now();
    await withDeadline(
      lanes(jobs, concurrency, async () => {
        const run = await wf.createRun();
        const r = await run.start({ inputData: {} });
        if (r.status !== 'success') failed++;
      }),
      600_000,
      `Mastra running ${jobs} workflows`,
    );
    const s = (performance.now() - t0) / 1000;
    const ok = (await statuses(db)).get('success') ?? 0;
    if (failed > 0 || ok !== jobs) throw new Error(`bench: Mastra: ${failed} runs did not succeed, ${ok} of ${jobs} recorded success`);
    return [row('noop-throughput', 'steps_per_s', Math.round(jobs / s), { note: `createRun + start, ${concurrency} at a time, in-process (no queue)` })];
  });
}

/** One run at a time into an idle Mastra (same process), 2 ms apart: `createRun()` to the step's first line. */
export async function enqueueToStart(samples: number): Promise<BenchResult[]> {
  let startedAt = 0;
  const mark = oneStepWorkflow('mark', async () => void (startedAt = performance.now()));
  return withMastra({ mark }, async (mastra) => {
    const wf = mastra.getWorkflow('mark');
    const lat: number[] = [];
    for (let i = 0; i < samples + 10; i++) {
      startedAt = 0;
      const t0 = performance.now();
      const run = await wf.createRun();
      const done = run.start({ inputData: {} });
      await waitFor(() => startedAt > 0, 30_000, 'a Mastra step to start', 1);
      if (i >= 10) lat.push(startedAt - t0); // the first runs warm up its store's statements
      await withDeadline(done, 30_000, 'a Mastra run to finish');
      await sleep(2);
    }
    const note = 'createRun + start in-process (no queue)';
    return [row('enqueue-to-start', 'p50_ms', round(percentile(lat, 50)), { note }), row('enqueue-to-start', 'p99_ms', round(percentile(lat, 99)), { note })];
  });
}

/**
 * `samples` runs whose one step never returns: it writes to a file of its own every 10 ms and waits
 * on a request to a server that never answers, ignoring its abortSignal (as code stuck in a call
 * does). At the deadline the bench calls `run.cancel()`. Overshoot: from the deadline to the run's
 * snapshot recording `canceled` (the snapshot row's updatedAt, the database clock). Then whether
 * the steps' code still runs: files still growing over the next second, sockets still open.
 */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  const hole = await blackhole();
  const dir = mkdtempSync(join(tmpdir(), 'rwbench-mastra-hang-'));
  const cleanup = new AbortController();
  const timers: NodeJS.Timeout[] = [];
  const startedAt = new Map<string, number>();
  let n = 0;
  const hang = oneStepWorkflow('hang', async ({ runId }) => {
    startedAt.set(runId, Date.now());
    const file = join(dir, `step-${n++}.log`);
    timers.push(setInterval(() => appendFileSync(file, 'x'), 10));
    await hangingRequest(hole.url, cleanup.signal);
  });
  try {
    return await withMastra({ hang }, async (mastra, db) => {
      const wf = mastra.getWorkflow('hang');
      const runs = await Promise.all(Array.from({ length: samples }, () => wf.createRun()));
      const deadlines = new Map<string, number>();
      const cancels: Array<Promise<unknown>> = [];
      for (const run of runs) {
        void run.start({ inputData: {} }).catch(() => undefined); // its outcome is read from the store below
      }
      await waitFor(() => startedAt.size >= samples, 30_000, 'Mastra hang-cut steps to start', 5);
      for (const run of runs) {
        const at = (startedAt.get(run.runId) as number) + deadlineMs;
        deadlines.set(run.runId, at);
        cancels.push(
          sleep(Math.max(0, at - Date.now())).then(() => run.cancel()),
        );
      }
      await withDeadline(Promise.all(cancels), deadlineMs + capMs, 'Mastra run.cancel()');
      const table = await snapshotTable(db);
      const until = performance.now() + capMs;
      let rows: Array<{ id: string; at: string }> = [];
      while (performance.now() < until) {
        rows = await db.query<{ id: string; at: string }>(
          `SELECT run_id AS id, (extract(epoch FROM "updatedAt") * 1000)::float8 AS at FROM ${table} WHERE snapshot::jsonb->>'status' = 'canceled'`,
        );
        if (rows.length >= samples) break;
        await sleep(50);
      }
      if (rows.length < samples) {
        const note = `${samples - rows.length}/${samples} not recorded canceled ${capMs / 1000} s past the deadline`;
        return [row('hang-cut', 'p50_ms', capMs, { capped: true, note }), row('hang-cut', 'p99_ms', capMs, { capped: true, note })];
      }
      const over = rows.map((r) => Number(r.at) - (deadlines.get(r.id) as number));
      const growing = await stillGrowing(dir, samples, 1000);
      const note = `run.cancel() at the deadline (no timeout exists): recorded canceled; ${growing}/${samples} steps' code still running after it`;
      return [
        row('hang-cut', 'p50_ms', round(percentile(over, 50)), { note }),
        row('hang-cut', 'p99_ms', round(percentile(over, 99)), { note }),
        row('hang-cut', 'sockets_left_open', hole.open(), { note: `of the ${hole.requests()} requests' sockets, once every run was canceled` }),
        row('hang-cut', 'steps_still_running', growing, { note: `of ${samples} canceled steps, those whose file still grew in the second after the last one was canceled` }),
      ];
    });
  } finally {
    cleanup.abort();
    for (const t of timers) clearInterval(t);
    await hole.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Worker A starts the one run (Mastra runs where it is started) and is SIGKILLed inside its step.
 * `ms`: a fresh process that calls `restartAllActiveWorkflowRuns()` at boot, started at once.
 * `ms_other_process`: a process that was already running when A died (it never looks).
 */
export async function crashRecovery(capMs: number): Promise<BenchResult[]> {
  return withDatabase(async (db) => {
    const script = new URL('./workers/mastra-worker.ts', import.meta.url);
    const { storage } = mastraOn(db.url, {});
    await withDeadline(storage.init(), 60_000, 'Mastra PostgresStore init');
    await storage.close();
    const boot = await killAndRestart(script, { url: db.url, start: 'run-boot' }, 'run-boot', capMs, { url: db.url, restartAtBoot: '1' });
    const liveResult = await liveProcessSample(script, db.url, capMs);
    return [
      row('crash-recovery', 'ms', Math.round(boot.ms), {
        ...(boot.capped ? { capped: true } : {}),
        note: boot.capped ? `not restarted within the ${capMs / 1000} s cap` : 'a fresh process calling restartAllActiveWorkflowRuns() at boot (the Mastra server does): the run restarted from its active step',
      }),
      row('crash-recovery', 'ms_other_process', Math.round(liveResult.ms), {
        ...(liveResult.capped ? { capped: true } : {}),
        note: liveResult.capped ? `a process already running never picked it up within the ${capMs / 1000} s cap (restarts happen only when called)` : 'picked up by a process already running',
      }),
    ];
  });
}

/** A idle Mastra process up first; worker A starts run-live and is SIGKILLed: does the idle one ever run it? */
async function liveProcessSample(script: URL, url: string, capMs: number): Promise<{ ms: number; capped: boolean }> {
  const live = spawnWorker(script, { url });
  const a = spawnWorker(script, { url, start: 'run-live' });
  try {
    if (!(await live.started('ready', 60_000))) throw new Error('bench: the idle Mastra worker never booted');
    if (!(await a.started('run-live', 60_000))) throw new Error('bench: the Mastra worker never started run-live');
    await a.kill();
    const killedAt = Date.now();
    const seen = await live.started('run-live', capMs);
    return seen ? { ms: Math.max(0, seen.at - killedAt), capped: false } : { ms: capMs, capped: true };
  } finally {
    await a.kill();
    await live.kill();
  }
}
