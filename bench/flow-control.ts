/**
 * Flow control (docs/flow-control.md), measured: what priorities and concurrency keys cost the
 * claim, and how much of a provider's quota provider limits use.
 *
 * - flow-claim: `jobs` single-step no-op runs on SQLite in one process, claimed without flow
 *   fields, then with a priority and a concurrency key on every run (10 keys, a limit that never
 *   binds, so the same work is claimed and only the bookkeeping differs). Goal: <= 10 % loss.
 * - flow-quota: `steps` LLM steps against the lab's `quota;rpm=1200` (20 requests in any second)
 *   with the provider's `requestsPerMinute: 1200`: achieved rate / allowed rate (goal >= 0.9) and
 *   the 429s the lab sent (goal 0). One process here; test/flow/provider-limits.test.ts runs the
 *   same against several worker processes.
 *
 * Run alone: node_modules/.bin/node bench/flow-control.ts  (under the heavy lock on a shared machine)
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EngineApi } from '../src/engine/api.ts';
import { startLab } from '../src/lab/index.ts';
import { ProviderRegistry } from '../src/llm/index.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { buildTools } from '../src/tools/build.ts';
import { defineTool } from '../src/tools/types.ts';
import { Worker } from '../src/worker/worker.ts';
import type { BenchResult } from './report.ts';

const SYSTEM = 'runwarden-sqlite';

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 5): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('benchmark timed out');
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

type Providers = (store: SqliteStore) => ProviderRegistry;

async function withSqlite<T>(providers: Providers, fn: (engine: EngineApi, worker: Worker, store: SqliteStore) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-flow-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const registry = providers(store);
  const tools = await buildTools({ tools: [] }, { providers: registry, store, cwd: process.cwd(), objects: [defineTool({ name: 'noop', run: () => null })] });
  const engine = new EngineApi({ store, tools, limits: { defaultTimeoutMs: 120_000, maxTimeoutMs: 86_400_000 } });
  engine.start();
  const worker = new Worker({ core: engine.core, tools, concurrency: 256 });
  try {
    return await fn(engine, worker, store);
  } finally {
    await worker.stop({ drainMs: 2000 });
    await engine.stop();
    registry.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function claimRate(jobs: number, flow: boolean): Promise<number> {
  return withSqlite(() => new ProviderRegistry({ env: {} }), async (engine, worker, store) => {
    for (let i = 0; i < jobs; i++) {
      const extra = flow ? { priority: i % 7, concurrency: { key: `tenant-${i % 10}`, limit: 10_000 } } : {};
      await engine.createRun({ plan: { steps: [{ name: 'n', tool: 'noop' }] }, ...extra });
    }
    const t0 = performance.now();
    worker.start();
    await waitUntil(async () => worker.stats.completed >= jobs, 600_000, 2);
    const s = (performance.now() - t0) / 1000;
    const done = (await store.stepCounts()).succeeded;
    if (done !== jobs) throw new Error(`flow-claim: ${done} of ${jobs} steps succeeded`);
    return jobs / s;
  });
}

export async function flowClaim(o: { jobs?: number; rounds?: number; log?: (line: string) => void } = {}): Promise<BenchResult[]> {
  const jobs = o.jobs ?? 5000;
  const rounds = o.rounds ?? 3;
  const none: number[] = [];
  const flow: number[] = [];
  // Alternated, best of each: the machine's noise hits both alike.
  for (let r = 0; r < rounds; r++) {
    none.push(await claimRate(jobs, false));
    flow.push(await claimRate(jobs, true));
    o.log?.(`flow-claim round ${r + 1}: ${Math.round(none.at(-1) ?? 0)} vs ${Math.round(flow.at(-1) ?? 0)} steps/s`);
  }
  const best = (xs: number[]): number => Math.max(...xs);
  const loss = 1 - best(flow) / best(none);
  return [
    { system: SYSTEM, workload: 'flow-claim', metric: 'steps_per_s_no_flow', value: Math.round(best(none)) },
    { system: SYSTEM, workload: 'flow-claim', metric: 'steps_per_s_priority_and_keys', value: Math.round(best(flow)) },
    { system: SYSTEM, workload: 'flow-claim', metric: 'loss_pct', value: Math.round(loss * 1000) / 10, note: 'goal <= 10' },
  ];
}

export async function flowQuota(o: { steps?: number; log?: (line: string) => void } = {}): Promise<BenchResult[]> {
  const steps = o.steps ?? 300;
  const lab = await startLab({ port: 0 });
  try {
    const providers: Providers = (store) =>
      new ProviderRegistry({
        env: {},
        providers: { quota: { type: 'openai', baseUrl: `${lab.url}/quota;rpm=1200/v1`, maxRetries: 0, limits: { requestsPerMinute: 1200 } } },
        limitStore: store.providerLimits,
      });
    return await withSqlite(providers, async (engine, worker, store) => {
      const run = await engine.createRun({
        plan: { steps: Array.from({ length: steps }, (_, i) => ({ name: `s${i}`, tool: 'llm', inputs: { provider: 'quota', prompt: `q${i}`, stream: false } })) },
      });
      const t0 = performance.now();
      worker.start();
      await waitUntil(async () => ['succeeded', 'failed'].includes((await store.getRun(run.run.id))?.status ?? ''), 300_000, 50);
      const s = (performance.now() - t0) / 1000;
      const stats = (await (await fetch(`${lab.url}/stats`)).json()) as { modes: Record<string, { requests: number; rateLimited: number }> };
      const quota = stats.modes.quota ?? { requests: 0, rateLimited: 0 };
      const allowedS = steps / 20;
      o.log?.(`flow-quota: ${steps} calls in ${s.toFixed(1)} s (allowed: ${allowedS} s), ${quota.rateLimited} 429s`);
      return [
        { system: SYSTEM, workload: 'flow-quota', metric: 'achieved_over_allowed', value: Math.round((allowedS / s) * 100) / 100, note: 'goal >= 0.9' },
        { system: SYSTEM, workload: 'flow-quota', metric: 'seconds', value: Math.round(s * 10) / 10 },
        { system: SYSTEM, workload: 'flow-quota', metric: 'rate_limited', value: quota.rateLimited, note: 'goal 0' },
      ];
    });
  } finally {
    await lab.close();
  }
}

if (import.meta.main) {
  const log = (line: string): void => console.log(line);
  for (const r of [...(await flowClaim({ log })), ...(await flowQuota({ log }))]) console.log(`${r.workload} ${r.metric} ${r.value}${r.note ? ` (${r.note})` : ''}`);
}
