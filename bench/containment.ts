/**
 * Containment: what it costs, and how fast a cut step's work stops.
 *
 * - cost: single-step runs of a user tool from a tools module, with `toolIsolation: 'thread'` (each
 *   attempt in a tool thread, stoppable) and `'inline'` (on the worker's loop), in paired rounds:
 *   throughput and per-step latency (the step's own started -> finished) for a no-op and for a tool
 *   making one request to the lab (the lab in a process of its own). The loss is the median of the
 *   per-pair losses.
 * - stop: a CPU burner, a file writer and a shell child that ignores SIGTERM, each with a 500 ms
 *   deadline and a 500 ms grace; "work stopped" is the last moment its effect was seen (the file it
 *   marks grew, after the step had ended), measured from its deadline. Goal: p99 <= grace + 200 ms.
 *
 * `node bench/containment.ts [--quick]` prints a table; `containmentCost()` and `containmentStop()`
 * are `npm run bench` stages.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { staticDefaults } from '../src/config/fields.ts';
import type { RunwardenConfig } from '../src/config/types.ts';
import { startRuntime, type Runtime } from '../src/runtime.ts';
import { startLabProcess } from './forensics.ts';
import type { Result } from './sqlite-engine.ts';

const TOOLS = join(import.meta.dirname, 'containment-tools.ts');
const SYSTEM = 'runwarden-sqlite';
const GRACE = 500;

function config(dir: string, isolation: 'thread' | 'inline'): RunwardenConfig {
  return {
    ...staticDefaults(),
    port: 0,
    dataDir: dir,
    workers: 1,
    concurrency: 64,
    defaultProvider: undefined,
    labPort: 0,
    lab: 'off',
    configFile: undefined,
    tools: [TOOLS],
    toolIsolation: isolation,
    abortGraceMs: GRACE,
  };
}

async function withRuntime<T>(isolation: 'thread' | 'inline', fn: (rt: Runtime, dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-contain-'));
  const rt = await startRuntime(config(dir, isolation), { env: {} });
  try {
    return await fn(rt, dir);
  } finally {
    await rt.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))] ?? NaN;
};
const median = (xs: number[]): number => quantile(xs, 0.5);

interface Sample {
  stepsPerS: number;
  /** Median of each step's started -> finished. */
  stepP50Ms: number;
}

async function measure(isolation: 'thread' | 'inline', tool: 'noop' | 'ask_lab', jobs: number, labUrl: string): Promise<Sample> {
  return withRuntime(isolation, async (rt) => {
    const ids: string[] = [];
    const t0 = performance.now();
    for (let i = 0; i < jobs; i++) ids.push((await rt.engine.createRun({ plan: { steps: [{ name: 's', tool, inputs: tool === 'ask_lab' ? { url: labUrl } : {} }] } })).run.id);
    for (;;) {
      const c = await rt.store.stepCounts();
      if (c.succeeded >= jobs) break;
      if (c.failed > 0 || c.timed_out > 0) throw new Error(`benchmark step failed: ${JSON.stringify(c)}`);
      if (performance.now() - t0 > 600_000) throw new Error('benchmark timed out');
      await new Promise((r) => setTimeout(r, 10));
    }
    const seconds = (performance.now() - t0) / 1000;
    const durations: number[] = [];
    for (const id of ids.slice(0, 500)) {
      const s = (await rt.engine.getRun(id)).steps[0];
      if (s?.startedAt && s.finishedAt) durations.push(Date.parse(s.finishedAt) - Date.parse(s.startedAt));
    }
    return { stepsPerS: jobs / seconds, stepP50Ms: median(durations) };
  });
}

export interface CostOptions {
  noopJobs?: number;
  llmJobs?: number;
  rounds?: number;
  log?: (line: string) => void;
}

export async function containmentCost(o: CostOptions = {}): Promise<Result[]> {
  const rounds = o.rounds ?? 5;
  const log = o.log ?? (() => undefined);
  const lab = await startLabProcess();
  const out: Result[] = [];
  try {
    for (const tool of ['noop', 'ask_lab'] as const) {
      const jobs = tool === 'noop' ? (o.noopJobs ?? 2000) : (o.llmJobs ?? 500);
      await measure('thread', tool, Math.ceil(jobs / 5), lab.url); // warm-up
      const on: Sample[] = [];
      const off: Sample[] = [];
      for (let r = 0; r < rounds; r++) {
        for (const mode of r % 2 === 0 ? (['thread', 'inline'] as const) : (['inline', 'thread'] as const)) {
          const v = await measure(mode, tool, jobs, lab.url);
          (mode === 'thread' ? on : off).push(v);
          log(`containment ${tool} round ${r + 1}/${rounds} ${mode}: ${Math.round(v.stepsPerS)} steps/s, step p50 ${v.stepP50Ms} ms`);
        }
      }
      const loss = median(on.map((x, i) => 1 - x.stepsPerS / (off[i] as Sample).stepsPerS));
      const workload = `containment-cost-${tool === 'noop' ? 'noop' : 'llm'}`;
      out.push(
        { system: SYSTEM, workload, metric: 'steps_per_s_thread', value: Math.round(median(on.map((x) => x.stepsPerS))) },
        { system: SYSTEM, workload, metric: 'steps_per_s_inline', value: Math.round(median(off.map((x) => x.stepsPerS))) },
        { system: SYSTEM, workload, metric: 'throughput_loss_pct', value: Math.round(loss * 1000) / 10 },
        { system: SYSTEM, workload, metric: 'step_p50_ms_thread', value: median(on.map((x) => x.stepP50Ms)) },
        { system: SYSTEM, workload, metric: 'step_p50_ms_inline', value: median(off.map((x) => x.stepP50Ms)) },
      );
    }
  } finally {
    lab.child.kill('SIGTERM');
  }
  return out;
}

/**
 * Watches a file from `from` until `ended()` is true and it has not grown for `quietMs` since;
 * returns when it last grew (epoch ms). Gives up after a minute: a step that never ends is a
 * failure of its own.
 */
async function lastGrowth(file: string, from: number, quietMs: number, ended: () => Promise<boolean>): Promise<number> {
  const size = (): number => {
    try {
      return statSync(file).size;
    } catch {
      return 0;
    }
  };
  let last = size();
  let grewAt = from;
  let endedAt: number | undefined;
  const giveUp = from + 60_000;
  for (let tick = 0; ; tick++) {
    const t = Date.now();
    if (endedAt !== undefined && t - Math.max(grewAt, endedAt) >= quietMs) return grewAt;
    if (t > giveUp) throw new Error(`${file}: the step did not end within a minute`);
    // The step's status is read every 25 ms; the file's size every 2 ms.
    if (endedAt === undefined && tick % 12 === 0 && (await ended())) endedAt = Date.now();
    await new Promise((r) => setTimeout(r, 2));
    const now = size();
    if (now !== last) {
      last = now;
      grewAt = Date.now();
    }
  }
}

export async function containmentStop(o: { samples?: number; isolation?: 'thread' | 'inline'; log?: (line: string) => void } = {}): Promise<Result[]> {
  const samples = o.samples ?? 10;
  const isolation = o.isolation ?? 'thread';
  const log = o.log ?? (() => undefined);
  const out: Result[] = [];
  await withRuntime(isolation, async (rt, dir) => {
    for (const tool of ['burner', 'writer', 'stubborn_child'] as const) {
      const stops: number[] = [];
      for (let i = 0; i < samples; i++) {
        const file = join(dir, `${tool}-${i}.out`);
        const run = (await rt.engine.createRun({ plan: { steps: [{ name: 's', tool, inputs: { file }, timeoutMs: 500, retries: { max: 0 } }] } })).run;
        let deadline: number;
        for (;;) {
          const s = (await rt.engine.getStep(run.id, 's')).attemptsDetail[0];
          if (s) {
            deadline = Date.parse(s.deadlineAt);
            break;
          }
          await new Promise((r) => setTimeout(r, 5));
        }
        // Watched from the claim until a second after it last grew once the step had ended: a tool
        // still working would have grown it again. (A tool slow to start, on a loaded machine, has
        // not grown it yet; the step's end, not a quiet second, says when to stop looking.)
        const stoppedAt = await lastGrowth(file, Date.now(), 1000, async () => {
          const status = (await rt.engine.getStep(run.id, 's')).status;
          if (status === 'running' || status === 'queued') return false;
          if (status !== 'timed_out') throw new Error(`${tool}: expected timed_out, got ${status}`);
          return true;
        });
        stops.push(stoppedAt - deadline);
        log(`containment stop ${tool} ${i + 1}/${samples}: work stopped ${stoppedAt - deadline} ms after the deadline`);
      }
      const workload = `containment-stop-${tool.replace('_', '-')}`;
      out.push(
        { system: SYSTEM, workload, metric: 'stop_after_deadline_p50_ms', value: median(stops) },
        { system: SYSTEM, workload, metric: 'stop_after_deadline_p99_ms', value: quantile(stops, 0.99) },
        { system: SYSTEM, workload, metric: 'stop_after_grace_p99_ms', value: quantile(stops, 0.99) - GRACE },
      );
    }
  });
  return out;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false }, only: { type: 'string' } } });
  const quick = values.quick ?? false;
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const rows: Result[] = [];
  if (values.only !== 'cost') rows.push(...(await containmentStop({ samples: quick ? 5 : 20, log })));
  if (values.only !== 'stop') rows.push(...(await containmentCost({ noopJobs: quick ? 1000 : 3000, llmJobs: quick ? 300 : 1000, rounds: quick ? 3 : 7, log })));
  console.log(`\nnode ${process.version}${quick ? ' (quick)' : ''}`);
  for (const r of rows) console.log(`${r.workload.padEnd(30)} ${r.metric.padEnd(28)} ${r.value}`);
}
