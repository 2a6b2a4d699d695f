/**
 * Issue 3's measure: 2,000 concurrent `llm` steps on one worker against the lab's healthy mode with
 * 2 s latency (event-loop delay p99 and memory per in-flight step), and the engine's overhead per
 * LLM call against a bare fetch to the same lab.
 * Run: node --expose-gc bench/llm-concurrency.ts [--steps 2000] [--latency 2000] [--json]
 * (`--json`: the rows as one JSON array on stdout). `npm run bench` runs it that way in a child
 * process (`llmConcurrencyIsolated`), so that its heap holds nothing else of the bench.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { EngineApi } from '../src/engine/api.ts';
import { ProviderRegistry } from '../src/llm/index.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { buildTools } from '../src/tools/build.ts';
import { Worker } from '../src/worker/worker.ts';
import { runNode } from './peers/common.ts';
import type { BenchResult } from './report.ts';
import { startLabProcess } from './forensics.ts';
import type { Result } from './sqlite-engine.ts';

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, everyMs = 50): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('benchmark timed out');
    await new Promise((r) => (everyMs > 0 ? setTimeout(r, everyMs) : setImmediate(r)));
  }
}

export async function llmConcurrency(steps = 2000, latencyMs = 2000): Promise<Result[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-llmc-'));
  // The lab runs in a process of its own: serving 2,000 responses at once is the remote server's
  // work, and in this process it would count in the worker's event-loop delay.
  const lab = await startLabProcess(['--latency-ms', String(latencyMs)]);
  let store: SqliteStore;
  try {
    store = new SqliteStore({ path: join(dir, 'runwarden.db') });
    await store.migrate();
  } catch (err) {
    lab.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const providers = new ProviderRegistry({ env: {}, labUrl: lab.url, defaultProvider: 'lab' });
  const tools = await buildTools({ tools: [] }, { providers, store, cwd: process.cwd() });
  const engine = new EngineApi({ store, tools, limits: { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 } });
  engine.start();
  const worker = new Worker({ core: engine.core, tools, concurrency: steps });
  try {
    worker.start();
    // Warm up connections and code paths, then measure a quiet baseline.
    const warm = await engine.createRun({ plan: { steps: [{ name: 'w', tool: 'llm', inputs: { prompt: 'warm up' } }] } });
    await waitUntil(async () => (await store.getRun(warm.run.id))?.status === 'succeeded', 30_000);
    global.gc?.();
    const baseHeap = process.memoryUsage().heapUsed;
    const baseRss = process.memoryUsage().rss;

    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();
    const plan = { plan: { steps: Array.from({ length: steps }, (_, i) => ({ name: `s${i}`, tool: 'llm', inputs: { prompt: `question number ${i}` } })) } };
    const run = (await engine.createRun(plan)).run;
    // Peak: every step in flight (the lab holds each for `latencyMs`).
    let peakHeap = 0;
    let peakRss = 0;
    let peakInflight = 0;
    await waitUntil(async () => {
      const m = process.memoryUsage();
      if (worker.inflight >= peakInflight) {
        peakInflight = worker.inflight;
        peakHeap = Math.max(peakHeap, m.heapUsed);
        peakRss = Math.max(peakRss, m.rss);
      }
      const r = await store.getRun(run.id);
      return r?.status === 'succeeded' || r?.status === 'failed';
    }, 120_000);
    loop.disable();
    const status = (await store.getRun(run.id))?.status;
    if (status !== 'succeeded') throw new Error(`llm-concurrency run ended ${status}`);

    // Overhead per call: sequential llm steps at zero latency versus sequential bare fetches.
    const n = 200;
    const zero = `${lab.url}/healthy;latency_ms=0/v1/chat/completions`;
    const body = JSON.stringify({ model: 'lab-chat', messages: [{ role: 'user', content: 'hello' }], stream: true, stream_options: { include_usage: true } });
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const res = await fetch(zero, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.text();
    }
    const bareMs = (performance.now() - t0) / n;
    const zp = new ProviderRegistry({ env: {}, providers: { zero: { type: 'openai', baseUrl: `${lab.url}/healthy;latency_ms=0/v1` } }, labUrl: lab.url });
    const zt = await buildTools({ tools: [] }, { providers: zp, store, cwd: process.cwd() });
    const zEngine = new EngineApi({ store, tools: zt, limits: { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 } });
    const zWorker = new Worker({ core: zEngine.core, tools: zt, concurrency: 1 });
    await worker.stop({ drainMs: 1000 });
    zWorker.start();
    const t1 = performance.now();
    for (let i = 0; i < n; i++) {
      const r = await zEngine.createRun({ plan: { steps: [{ name: 'z', tool: 'llm', inputs: { prompt: 'hello', provider: 'zero' } }] } });
      // Polled on every turn of the loop so the wait adds microseconds, not a poll interval.
      await waitUntil(async () => (await store.getRun(r.run.id))?.status === 'succeeded', 10_000, 0);
    }
    const engineMs = (performance.now() - t1) / n;
    await zWorker.stop({ drainMs: 1000 });
    zp.close();

    const sys = 'runwarden-sqlite';
    return [
      { system: sys, workload: 'llm-concurrency', metric: 'steps', value: steps },
      { system: sys, workload: 'llm-concurrency', metric: 'peak_inflight', value: peakInflight },
      { system: sys, workload: 'llm-concurrency', metric: 'loop_delay_p99_ms', value: Math.round(loop.percentile(99) / 1e4) / 100 },
      { system: sys, workload: 'llm-concurrency', metric: 'heap_kb_per_inflight_step', value: Math.round((peakHeap - baseHeap) / 1024 / Math.max(1, peakInflight)) },
      { system: sys, workload: 'llm-concurrency', metric: 'rss_kb_per_inflight_step', value: Math.round((peakRss - baseRss) / 1024 / Math.max(1, peakInflight)) },
      { system: sys, workload: 'llm-call-overhead', metric: 'bare_fetch_ms', value: Math.round(bareMs * 100) / 100 },
      { system: sys, workload: 'llm-call-overhead', metric: 'engine_step_ms', value: Math.round(engineMs * 100) / 100 },
    ];
  } finally {
    await worker.stop({ drainMs: 1000 });
    await engine.stop();
    providers.close();
    await store.close();
    lab.child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The `npm run bench` stage: this file in a child process with `--expose-gc` (memory measured after
 * a GC, in a heap of its own), its rows turned into the table's: loop delay p99, heap and RSS per
 * in-flight step, and the engine's overhead per LLM call over a bare fetch.
 */
export async function llmConcurrencyIsolated(steps = 2000, latencyMs = 2000, timeoutMs = 240_000): Promise<BenchResult[]> {
  const out = await runNode(['--expose-gc', import.meta.filename, '--json', '--steps', String(steps), '--latency', String(latencyMs)], timeoutMs, 'bench/llm-concurrency.ts');
  const rows = JSON.parse(out.trim().split('\n').at(-1) ?? '[]') as Result[];
  const v = (metric: string): number => {
    const r = rows.find((x) => x.metric === metric);
    if (!r) throw new Error(`bench: llm-concurrency reported no ${metric}`);
    return r.value;
  };
  const system = 'runwarden-sqlite';
  const what = `${v('steps')} llm steps at once on one in-process worker (peak ${v('peak_inflight')} in flight), lab (its own process) at ${latencyMs / 1000} s latency`;
  const row = (metric: string, value: number, note: string): BenchResult => ({ system, workload: 'llm-concurrency', metric, value, note });
  return [
    row('loop_delay_p99_ms', v('loop_delay_p99_ms'), what),
    row('heap_kb_per_step', v('heap_kb_per_inflight_step'), `${what}; peak heap over the idle baseline, after a GC`),
    row('rss_kb_per_step', v('rss_kb_per_inflight_step'), `${what}; peak RSS over the idle baseline`),
    row('overhead_ms_per_call', Math.round((v('engine_step_ms') - v('bare_fetch_ms')) * 100) / 100, `one llm step at a time ${v('engine_step_ms')} ms vs a bare fetch ${v('bare_fetch_ms')} ms, lab at 0 latency`),
  ];
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { steps: { type: 'string', default: '2000' }, latency: { type: 'string', default: '2000' }, json: { type: 'boolean', default: false } } });
  const results = await llmConcurrency(Number(values.steps), Number(values.latency));
  if (values.json) console.log(JSON.stringify(results));
  else for (const r of results) console.log(`${r.workload.padEnd(18)} ${r.metric.padEnd(28)} ${r.value}`);
}
