/**
 * runwarden on SQLite, in one process: the engine, one worker, a real SQLite file.
 * Workloads: no-op throughput, enqueue-to-start latency, deadline overshoot; crash-recovery and
 * hang-cut run the CLI instead (`runwarden start`, deployment.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineApi } from '../src/engine/api.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { builtinTools } from '../src/tools/builtin.ts';
import { ToolRegistry } from '../src/tools/registry.ts';
import { defineTool } from '../src/tools/types.ts';
import { Worker } from '../src/worker/worker.ts';
import { crashRecoveryOn, hangCutOn, withSqliteCluster } from './deployment.ts';
import type { BenchResult } from './report.ts';

export interface Result {
  system: string;
  workload: string;
  metric: string;
  value: number;
}

const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;
};

async function withEngine<T>(fn: (e: EngineApi, w: Worker, started: Map<string, number>) => Promise<T>, workerOpts: { concurrency?: number } = {}): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const started = new Map<string, number>();
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  tools.register(defineTool({ name: 'noop', run: () => null }));
  tools.register(
    defineTool({
      name: 'mark',
      run: (_ctx, input: { id: string }) => {
        started.set(input.id, performance.now());
        return null;
      },
    }),
  );
  const engine = new EngineApi({ store, tools, limits: { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 } });
  engine.start();
  const worker = new Worker({ core: engine.core, tools, concurrency: workerOpts.concurrency ?? 256 });
  try {
    return await fn(engine, worker, started);
  } finally {
    await worker.stop({ drainMs: 2000 });
    await engine.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 25): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** `jobs` single-step runs enqueued first, then processed; steps/s from first claim to last finish. */
export async function noopThroughput(jobs: number, concurrency: number): Promise<Result[]> {
  return withEngine(
    async (engine, worker) => {
      const t0 = performance.now();
      for (let i = 0; i < jobs; i++) await engine.createRun({ plan: { steps: [{ name: 'n', tool: 'noop' }] } });
      const enqueueS = (performance.now() - t0) / 1000;
      const t1 = performance.now();
      worker.start();
      // The worker's count of committed completions: cheap to poll, where counting the steps table
      // every few ms would cost the measured thread a scan each time. Checked against the table after.
      await waitUntil(async () => worker.stats.completed >= jobs, 600_000, 2);
      const processS = (performance.now() - t1) / 1000;
      const succeeded = (await engine.store.stepCounts()).succeeded;
      if (succeeded !== jobs) throw new Error(`noop-throughput: ${succeeded} of ${jobs} steps succeeded`);
      return [
        { system: 'runwarden-sqlite', workload: 'noop-throughput', metric: 'steps_per_s', value: Math.round(jobs / processS) },
        { system: 'runwarden-sqlite', workload: 'noop-throughput', metric: 'enqueue_per_s', value: Math.round(jobs / enqueueS) },
      ];
    },
    { concurrency },
  );
}

/** One run of `steps` independent steps: how fast one big fan-out drains. */
export async function fanOutThroughput(steps: number): Promise<Result[]> {
  return withEngine(async (engine, worker) => {
    const plan = { plan: { steps: Array.from({ length: steps }, (_, i) => ({ name: `s${i}`, tool: 'noop' })) } };
    const run = (await engine.createRun(plan)).run;
    const t1 = performance.now();
    worker.start();
    await waitUntil(async () => (await engine.store.getRun(run.id))?.status === 'succeeded', 600_000);
    return [{ system: 'runwarden-sqlite', workload: 'fanout-throughput', metric: 'steps_per_s', value: Math.round(steps / ((performance.now() - t1) / 1000)) }];
  });
}

/** Runs submitted one at a time into an idle worker: submit call to tool start. */
export async function enqueueToStart(samples: number): Promise<Result[]> {
  return withEngine(async (engine, worker, started) => {
    worker.start();
    const lat: number[] = [];
    for (let i = 0; i < samples; i++) {
      const id = `e${i}`;
      const t0 = performance.now();
      await engine.createRun({ plan: { steps: [{ name: 'm', tool: 'mark', inputs: { id } }] } });
      await waitUntil(async () => started.has(id), 10_000);
      lat.push((started.get(id) as number) - t0);
      await new Promise((r) => setTimeout(r, 2));
    }
    return [
      { system: 'runwarden-sqlite', workload: 'enqueue-to-start', metric: 'p50_ms', value: round(percentile(lat, 50)) },
      { system: 'runwarden-sqlite', workload: 'enqueue-to-start', metric: 'p99_ms', value: round(percentile(lat, 99)) },
    ];
  });
}

/** Steps that sleep far past a short deadline: how late after the deadline is the step finished. */
export async function deadlineOvershoot(samples: number, timeoutMs = 200): Promise<Result[]> {
  return withEngine(async (engine, worker) => {
    worker.start();
    const plan = { plan: { steps: Array.from({ length: samples }, (_, i) => ({ name: `s${i}`, tool: 'sleep', inputs: { ms: 60_000 }, timeoutMs })) } };
    const run = (await engine.createRun(plan)).run;
    await waitUntil(async () => (await engine.store.getRun(run.id))?.status === 'failed', 60_000);
    const events = await engine.listEvents(run.id, 0, 100_000);
    const deadlines = new Map<string, number>();
    for (const e of events) if (e.type === 'step.started') deadlines.set(e.stepName as string, Date.parse(e.data.deadlineAt as string));
    const over = events
      .filter((e) => e.type === 'step.finished')
      .map((e) => Date.parse(e.ts) - (deadlines.get(e.stepName as string) as number));
    return [
      { system: 'runwarden-sqlite', workload: 'deadline-overshoot', metric: 'p50_ms', value: percentile(over, 50) },
      { system: 'runwarden-sqlite', workload: 'deadline-overshoot', metric: 'p99_ms', value: percentile(over, 99) },
    ];
  });
}

const round = (v: number): number => Math.round(v * 100) / 100;

/**
 * crash-recovery as users run runwarden: `runwarden start` on a fresh data directory at its defaults
 * (see deployment.ts). `samples` SIGKILLs of the worker process holding a step, then `treeSamples`
 * of the whole `runwarden start` (recovery through lease expiry).
 */
export async function crashRecovery(capMs: number, samples = 5, treeSamples = 2): Promise<BenchResult[]> {
  return withSqliteCluster((c) => crashRecoveryOn(c, 'runwarden-sqlite', capMs, samples, treeSamples));
}

/** hang-cut through `runwarden start` on a fresh data directory (see deployment.ts). */
export async function hangCut(samples: number, capMs: number, deadlineMs: number): Promise<BenchResult[]> {
  return withSqliteCluster((c) => hangCutOn(c, 'runwarden-sqlite', samples, capMs, deadlineMs));
}
