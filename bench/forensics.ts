/**
 * Forensics overhead: the same workload with per-step tracking on and off, in one process.
 *
 * - noop: single-step runs of a tool that returns at once (the engine's own cost per step);
 * - llm: single-step runs of the `llm` tool (streaming chat) against the hang lab's healthy mode,
 *   the lab in a process of its own as a real provider would be. Every step makes one HTTP request,
 *   so tracking does everything it does in production: a channel event and a stack capture per
 *   request, a new socket now and then, byte counters.
 *
 * Each round is an on/off pair (alternating which goes first); the median of the per-pair ratios is
 * reported, which is what machine noise (other processes, frequency scaling) disturbs least.
 * `node bench/forensics.ts [--quick]` prints a table; `forensicsOverhead()` is the `npm run bench` stage.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { EngineApi } from '../src/engine/api.ts';
import { setForensicsEnabled } from '../src/forensics/channels.ts';
import { ProviderRegistry } from '../src/llm/registry.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { createLlmTool } from '../src/tools/llm.ts';
import { ToolRegistry } from '../src/tools/registry.ts';
import { defineTool } from '../src/tools/types.ts';
import { Worker } from '../src/worker/worker.ts';
import type { Result } from './sqlite-engine.ts';
import { median } from './peers/common.ts';

const ROOT = join(import.meta.dirname, '..');

/** The hang lab in a process of its own (`runwarden lab`), as a remote LLM server would be. */
export async function startLabProcess(extra: string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'runwarden.js'), 'lab', '--port', '0', ...extra], { stdio: ['ignore', 'pipe', 'ignore'] });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the lab did not start: ${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /runwarden lab listening on (http:\/\/\S+)/.exec(out);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.once('exit', (code) => reject(new Error(`the lab exited with ${code}: ${out}`)));
  });
  child.stdout?.resume();
  return { url, child };
}

type Workload = 'noop' | 'llm';

interface Sample {
  stepsPerS: number;
  /** CPU time of this process (engine, worker, client side) per step: insensitive to other load. */
  cpuUsPerStep: number;
}

/** One measurement: `jobs` runs enqueued, then drained by a fresh worker. */
export async function measure(workload: Workload, on: boolean, jobs: number, providers: ProviderRegistry | undefined): Promise<Sample> {
  setForensicsEnabled(on);
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-fx-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const tools = new ToolRegistry();
  tools.register(defineTool({ name: 'noop', run: () => null }));
  if (providers) tools.register(createLlmTool({ providers }));
  const engine = new EngineApi({ store, tools, limits: { defaultTimeoutMs: 60_000, maxTimeoutMs: 86_400_000 } });
  engine.start();
  const worker = new Worker({ core: engine.core, tools, concurrency: 256 });
  try {
    const step = workload === 'noop' ? { name: 'n', tool: 'noop' } : { name: 'ask', tool: 'llm', inputs: { prompt: 'Say hello in five words.', provider: 'lab' } };
    for (let i = 0; i < jobs; i++) await engine.createRun({ plan: { steps: [step] } });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    worker.start();
    for (;;) {
      const c = await store.stepCounts();
      if (c.succeeded >= jobs) break;
      if (c.failed > 0 || c.timed_out > 0) throw new Error(`benchmark step failed: ${JSON.stringify(c)}`);
      if (performance.now() - t0 > 600_000) throw new Error('benchmark timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
    const cpu = process.cpuUsage(cpu0);
    return { stepsPerS: jobs / ((performance.now() - t0) / 1000), cpuUsPerStep: (cpu.user + cpu.system) / jobs };
  } finally {
    await worker.stop({ drainMs: 2000 });
    await engine.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))] ?? NaN;
};


export interface OverheadOptions {
  /** Runs per measurement. @default noop 4000, llm 1000 */
  noopJobs?: number;
  llmJobs?: number;
  /** On/off pairs per workload. @default 12 */
  rounds?: number;
  log?: (line: string) => void;
}

export async function forensicsOverhead(o: OverheadOptions = {}): Promise<Result[]> {
  const rounds = o.rounds ?? 12;
  const log = o.log ?? (() => undefined);
  const lab = await startLabProcess();
  const providers = new ProviderRegistry({ env: {}, labUrl: lab.url });
  const results: Result[] = [];
  try {
    for (const workload of ['noop', 'llm'] as const) {
      const jobs = workload === 'noop' ? (o.noopJobs ?? 4000) : (o.llmJobs ?? 1000);
      const p = workload === 'llm' ? providers : undefined;
      // Warm-up: JIT, the lab's first connections, SQLite page cache.
      await measure(workload, true, Math.ceil(jobs / 5), p);
      await measure(workload, false, Math.ceil(jobs / 5), p);
      const on: Sample[] = [];
      const off: Sample[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const setting of r % 2 === 0 ? [true, false] : [false, true]) {
          const v = await measure(workload, setting, jobs, p);
          (setting ? on : off).push(v);
          log(`forensics ${workload} round ${r + 1}/${rounds} ${setting ? 'on ' : 'off'}: ${Math.round(v.stepsPerS)} steps/s, ${Math.round(v.cpuUsPerStep)} us CPU/step`);
        }
      }
      // Each round is an adjacent on/off pair, so the ratio within a pair is what drift affects least.
      const lossPairs = on.map((x, i) => 1 - x.stepsPerS / (off[i] as Sample).stepsPerS);
      const cpuPairs = on.map((x, i) => x.cpuUsPerStep / (off[i] as Sample).cpuUsPerStep - 1);
      const tputLoss = median(lossPairs);
      const cpuExtra = median(cpuPairs);
      const system = 'runwarden-sqlite';
      const name = `forensics-${workload}`;
      const pct = (v: number): number => Math.round(v * 1000) / 10;
      results.push(
        { system, workload: name, metric: 'steps_per_s_on', value: Math.round(median(on.map((x) => x.stepsPerS))) },
        { system, workload: name, metric: 'steps_per_s_off', value: Math.round(median(off.map((x) => x.stepsPerS))) },
        { system, workload: name, metric: 'throughput_loss_pct', value: pct(tputLoss) },
        { system, workload: name, metric: 'throughput_loss_p25_pct', value: pct(quantile(lossPairs, 0.25)) },
        { system, workload: name, metric: 'throughput_loss_p75_pct', value: pct(quantile(lossPairs, 0.75)) },
        { system, workload: name, metric: 'cpu_us_per_step_on', value: Math.round(median(on.map((x) => x.cpuUsPerStep))) },
        { system, workload: name, metric: 'cpu_us_per_step_off', value: Math.round(median(off.map((x) => x.cpuUsPerStep))) },
        { system, workload: name, metric: 'cpu_overhead_pct', value: pct(cpuExtra) },
      );
    }
  } finally {
    setForensicsEnabled(true);
    providers.close();
    lab.child.kill('SIGTERM');
  }
  return results;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } });
  const quick = values.quick ?? false;
  const results = await forensicsOverhead({
    noopJobs: quick ? 1000 : 4000,
    llmJobs: quick ? 400 : 1000,
    rounds: quick ? 4 : 12,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  console.log(`\nnode ${process.version}${quick ? ' (quick)' : ''}`);
  for (const r of results) console.log(`${r.workload.padEnd(16)} ${r.metric.padEnd(20)} ${r.value}`);
}
