/**
 * runwarden on PostgreSQL, as deployed: `runwarden worker` processes against one database.
 * Workloads: no-op steps per second with 1, 2 and 4 worker processes; enqueue-to-start latency
 * with LISTEN/NOTIFY; database statements and transactions per step; crash-recovery and hang-cut
 * (deployment.ts, for `npm run bench`); and, when graphile-worker is installed somewhere
 * (GRAPHILE_WORKER_DIR=<dir with node_modules/graphile-worker>), the same no-op throughput on
 * graphile-worker, same machine, same database server.
 *
 *   node bench/postgres-engine.ts [--quick] [--json file]
 *
 * This module is also the tools module the worker processes load (`--tools bench/postgres-engine.ts`):
 * its default export is the `noop` and `mark` tools. Nothing runs on import.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { validateRunRequest } from '../src/domain/plan.ts';
import { Transitions } from '../src/engine/transitions.ts';
import { PostgresStore } from '../src/store/postgres/index.ts';
import { ToolRegistry } from '../src/tools/registry.ts';
import { defineTool } from '../src/tools/types.ts';
import { Worker } from '../src/worker/worker.ts';
import { crashRecoveryOn, hangCutOn, now, spawnNode, startWorkerHost, withPostgresCluster, type BenchProcess } from './deployment.ts';
import type { BenchResult } from './report.ts';

export interface Result {
  system: string;
  workload: string;
  metric: string;
  value: number;
}

/**
 * The tools the benchmark's worker processes run. Inline, on the worker's loop, as the peers run
 * their handlers (and as runwarden-sqlite's tool objects run): tools from a module run in a tool
 * thread each by default, which measures thread start-up (~30 MB and tens of ms a thread), not the
 * engine, and under load made no-op steps fail for want of a thread.
 */
const noop = defineTool({ name: 'noop', description: 'Does nothing (benchmarks).', isolation: 'inline', run: () => null });
const mark = defineTool({
  name: 'mark',
  isolation: 'inline',
  description: 'Returns the wall-clock time (epoch ms, sub-ms precision) at which it started (benchmarks).',
  run: () => ({ t: performance.timeOrigin + performance.now() }),
});
export default [noop, mark];

const SELF = join(import.meta.dirname, 'postgres-engine.ts');
const ADMIN_URL = process.env.RUNWARDEN_BENCH_PG_URL ?? process.env.RUNWARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const LIMITS = { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 };
const SYSTEM = 'runwarden-postgres';

const round = (v: number): number => Math.round(v * 100) / 100;
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A fresh database for one workload, dropped afterwards. */
async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `rwb_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  try {
    return await fn(u.toString());
  } finally {
    await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  }
}

/**
 * `n` `runwarden worker` hosts loading this module's tools, each supervising as many worker
 * processes as the machine has CPUs (its default), which share `concurrency` between them: the
 * steps in flight per host are `concurrency`, like a peer's one worker.
 */
function startWorkers(url: string, n: number, concurrency: number): BenchProcess[] {
  const procs = cpus().length;
  const each = Math.max(1, Math.ceil(concurrency / procs));
  return Array.from({ length: n }, () => startWorkerHost(url, [SELF], ['--workers', String(procs), '--concurrency', String(each)]));
}

async function tools(): Promise<ToolRegistry> {
  const r = new ToolRegistry();
  r.register(noop);
  r.register(mark);
  return r;
}

/** Enqueues `jobs` single-step runs through `parallel` concurrent submitters. */
export async function enqueue(store: PostgresStore, jobs: number, tool: string, parallel = 16): Promise<number> {
  const core = new Transitions(store);
  const validated = await validateRunRequest({ plan: { steps: [{ name: 'n', tool }] } }, await tools(), LIMITS);
  const t0 = now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < jobs) {
        next++;
        await core.createRun(validated, { steps: [{ name: 'n', tool }] });
      }
    }),
  );
  return jobs / ((now() - t0) / 1000);
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`benchmark timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * `jobs` single-step no-op runs are enqueued first; then `workers` worker processes start together.
 * Steps per second are counted from the moment the last worker is ready to the last step finished,
 * so process start-up is not in the number.
 */
export async function noopThroughput(jobs: number, workers: number, concurrency = 256): Promise<Result[]> {
  return withDatabase(async (url) => {
    const store = new PostgresStore({ url, poolMax: 8 });
    try {
      await store.migrate();
      const enqueuePerS = await enqueue(store, jobs, 'noop');
      const procs = startWorkers(url, workers, concurrency);
      try {
        const allReady = Math.max(...(await Promise.all(procs.map((p) => p.ready))));
        // Polled with a query the partial indexes answer (a count over all steps every few ms would
        // load the server being measured); the rate comes from the steps' finished_at, not from when
        // the poll noticed. Then every step must have succeeded.
        await waitUntil(
          async () => (await store.pool.query<{ open: boolean }>("SELECT EXISTS (SELECT 1 FROM steps WHERE status = 'queued') OR EXISTS (SELECT 1 FROM steps WHERE status = 'running') AS open")).rows[0]?.open === false,
          600_000,
          `${jobs} steps`,
        );
        const succeeded = (await store.stepCounts()).succeeded;
        if (succeeded !== jobs) throw new Error(`noop-throughput: ${succeeded} of ${jobs} steps succeeded`);
        const r = await store.pool.query<{ after: number; last: number }>('SELECT count(*) FILTER (WHERE finished_at >= $1)::int AS after, max(finished_at) AS last FROM steps', [
          Math.floor(allReady),
        ]);
        const { after, last } = r.rows[0] as { after: number; last: number };
        const stepsPerS = after / ((Number(last) - allReady) / 1000);
        const workload = `noop-throughput-${workers}w`;
        return [
          { system: SYSTEM, workload, metric: 'steps_per_s', value: Math.round(stepsPerS) },
          { system: SYSTEM, workload, metric: 'enqueue_per_s', value: Math.round(enqueuePerS) },
        ];
      } finally {
        await Promise.all(procs.map((p) => p.stop()));
      }
    } finally {
      await store.close();
    }
  });
}

/**
 * One idle worker process; runs submitted one at a time from this process. Latency is from just
 * before the submitting call to the moment the tool starts in the worker process (same machine,
 * same wall clock): commit, NOTIFY, wake-up, claim transaction, start.
 */
export async function enqueueToStart(samples: number, concurrency = 256): Promise<Result[]> {
  return withDatabase(async (url) => {
    const store = new PostgresStore({ url, poolMax: 4 });
    try {
      await store.migrate();
      const [proc] = startWorkers(url, 1, concurrency);
      if (!proc) throw new Error('no worker');
      try {
        await proc.ready;
        const core = new Transitions(store);
        const validated = await validateRunRequest({ plan: { steps: [{ name: 'm', tool: 'mark' }] } }, await tools(), LIMITS);
        // Warm up connections and plans on both sides.
        for (let i = 0; i < 20; i++) await submitAndWait(store, core, validated);
        const lat: number[] = [];
        for (let i = 0; i < samples; i++) {
          lat.push(await submitAndWait(store, core, validated));
          // Let the worker go idle again, like a step submitted out of the blue.
          await new Promise((r) => setTimeout(r, 3));
        }
        return [
          { system: SYSTEM, workload: 'enqueue-to-start', metric: 'p50_ms', value: round(percentile(lat, 50)) },
          { system: SYSTEM, workload: 'enqueue-to-start', metric: 'p99_ms', value: round(percentile(lat, 99)) },
        ];
      } finally {
        await proc.stop();
      }
    } finally {
      await store.close();
    }
  });
}

async function submitAndWait(store: PostgresStore, core: Transitions, validated: Awaited<ReturnType<typeof validateRunRequest>>): Promise<number> {
  const t0 = now();
  const { runId } = await core.createRun(validated, {});
  let startedAt: number | undefined;
  await waitUntil(
    async () => {
      const s = await store.getStep(runId, 'm');
      startedAt = (s?.outputs as { t?: number } | null)?.t;
      return startedAt !== undefined;
    },
    10_000,
    'a marked step',
  );
  return (startedAt as number) - t0;
}

/**
 * What one step costs the database: statements and transactions per no-op step, counted on the
 * client (every `query` call of pg is one round trip), with one in-process worker.
 */
export async function statementsPerStep(jobs: number): Promise<Result[]> {
  return withDatabase(async (url) => {
    const store = new PostgresStore({ url, poolMax: 10 });
    try {
      await store.migrate();
      await enqueue(store, jobs, 'noop');
      const proto = pg.Client.prototype as unknown as { query: (...a: unknown[]) => unknown };
      const original = proto.query;
      let statements = 0;
      let commits = 0;
      proto.query = function (this: unknown, ...args: unknown[]) {
        statements++;
        const first = args[0];
        if (first === 'COMMIT') commits++;
        return original.apply(this, args);
      };
      const worker = new Worker({ core: new Transitions(store), tools: await tools(), concurrency: 256, pollMs: 1000, heartbeatMs: 60_000 });
      const t0 = now();
      try {
        worker.start();
        await waitUntil(async () => worker.stats.completed >= jobs, 600_000, `${jobs} steps`);
      } finally {
        proto.query = original;
        await worker.stop({ drainMs: 1000 });
      }
      const seconds = (now() - t0) / 1000;
      return [
        { system: SYSTEM, workload: 'cost-per-step (1 in-process worker)', metric: 'statements_per_step', value: round(statements / jobs) },
        { system: SYSTEM, workload: 'cost-per-step (1 in-process worker)', metric: 'commits_per_step', value: round(commits / jobs) },
        { system: SYSTEM, workload: 'cost-per-step (1 in-process worker)', metric: 'steps_per_s', value: Math.round(jobs / seconds) },
      ];
    } finally {
      await store.close();
    }
  });
}

/**
 * graphile-worker on the same machine and server: `jobs` no-op jobs added in bulk first, then
 * `workers` processes (concurrency `concurrency` each) start together; jobs per second from the
 * last one ready to the queue empty. Needs GRAPHILE_WORKER_DIR (a directory where
 * `npm install graphile-worker` was run); not a dependency of runwarden.
 */
export async function graphileWorkerThroughput(jobs: number, workers: number, concurrency: number, dir: string, batched = false): Promise<Result[]> {
  const script = join(dir, `rw-bench-graphile${batched ? '-batched' : ''}.mjs`);
  // Batched: graphile-worker's own high-throughput settings (docs: worker.graphile.org/docs/performance#batching).
  const preset = batched ? `preset: { worker: { localQueue: { size: ${concurrency * 4} }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },` : '';
  writeFileSync(
    script,
    `import { run } from 'graphile-worker';
const runner = await run({ ${preset} connectionString: process.env.DATABASE_URL, concurrency: ${concurrency}, maxPoolSize: ${concurrency + 1}, noHandleSignals: true, pollInterval: 1000, taskList: { noop: async () => {} } });
process.stdout.write('graphile ready\\n');
process.on('SIGTERM', () => { runner.stop().then(() => process.exit(0)); });
`,
  );
  return withDatabase(async (url) => {
    const { runMigrations } = (await import(join(dir, 'node_modules', 'graphile-worker', 'dist', 'index.js'))) as {
      runMigrations: (o: { connectionString: string }) => Promise<void>;
    };
    await runMigrations({ connectionString: url });
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (let done = 0; done < jobs; done += 5000) {
        const n = Math.min(5000, jobs - done);
        await c.query("SELECT graphile_worker.add_jobs(array_agg(('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec)) FROM generate_series(1, $1)", [n]);
      }
      const procs = Array.from({ length: workers }, () => spawnNode('graphile-worker', [script], { DATABASE_URL: url }, /graphile ready/));
      try {
        await Promise.all(procs.map((p) => p.ready));
        const left0 = Number((await c.query('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n);
        const t0 = now();
        let t1 = t0;
        await waitUntil(
          async () => {
            const n = Number((await c.query('SELECT count(*) AS n FROM graphile_worker._private_jobs')).rows[0].n);
            t1 = now();
            return n === 0;
          },
          600_000,
          'graphile-worker to drain',
        );
        const perS = left0 / ((t1 - t0) / 1000);
        return [{ system: `graphile-worker${batched ? ' (batched)' : ''}`, workload: `noop-throughput-${workers}w`, metric: 'jobs_per_s', value: Math.round(perS) }];
      } finally {
        await Promise.all(procs.map((p) => p.stop()));
      }
    } finally {
      await c.end();
    }
  });
}

/**
 * crash-recovery as users deploy runwarden on PostgreSQL: a fresh database, one `runwarden worker`
 * at its defaults, runs submitted to a `runwarden start --workers 0` API (see deployment.ts).
 * `samples` SIGKILLs of the worker process holding a step, then `treeSamples` of the whole
 * `runwarden worker` (recovery through lease expiry).
 */
export async function crashRecovery(capMs: number, samples = 5, treeSamples = 2): Promise<BenchResult[]> {
  return withPostgresCluster((c) => crashRecoveryOn(c, SYSTEM, capMs, samples, treeSamples));
}

/** hang-cut on the same deployment as crashRecovery (see deployment.ts). */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  return withPostgresCluster((c) => hangCutOn(c, SYSTEM, samples, capMs, deadlineMs));
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } });
  const quick = values.quick ?? false;
  const jobs = quick ? 5000 : 20_000;
  const results: Result[] = [];
  const stage = async (name: string, fn: () => Promise<Result[]>): Promise<void> => {
    process.stderr.write(`bench: ${name} ...\n`);
    const t0 = performance.now();
    results.push(...(await fn()));
    process.stderr.write(`bench: ${name} done in ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  };
  for (const w of [1, 2, 4]) await stage(`noop-throughput, ${jobs} single-step runs, ${w} worker process(es)`, () => noopThroughput(jobs, w));
  await stage('enqueue-to-start', () => enqueueToStart(quick ? 200 : 1000));
  await stage('cost per step', () => statementsPerStep(quick ? 2000 : 5000));
  const gw = process.env.GRAPHILE_WORKER_DIR;
  if (gw) {
    for (const batched of [false, true]) {
      for (const w of [1, 2, 4]) await stage(`graphile-worker${batched ? ' (batched)' : ''}, ${jobs} jobs, ${w} process(es)`, () => graphileWorkerThroughput(jobs, w, 16, gw, batched));
    }
  }
  else process.stderr.write('bench: GRAPHILE_WORKER_DIR not set: skipping the graphile-worker comparison\n');

  const machine = { platform: platform(), arch: arch(), cpus: cpus().length, cpuModel: cpus()[0]?.model ?? '', memGiB: Math.round(totalmem() / 2 ** 30), node: process.version };
  const rows = results.map((r) => [r.system, r.workload, r.metric, String(r.value)]);
  const widths = [0, 1, 2, 3].map((i) => Math.max(...[['system', 'workload', 'metric', 'value'], ...rows].map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  console.log(`\nmachine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, node ${machine.node}${quick ? ' (quick)' : ''}`);
  console.log(line(['system', 'workload', 'metric', 'value']));
  for (const r of rows) console.log(line(r));
  if (values.json) writeFileSync(values.json, JSON.stringify({ machine, results }, null, 2));
}

if (import.meta.main) await main();
