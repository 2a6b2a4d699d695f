/**
 * Supervised worker processes, measured:
 * - kill-to-retry: a worker process holding a step is SIGKILLed from outside; the time until the
 *   step's next attempt starts on another worker (goal: p50 <= 3 s at default settings);
 * - stall detection: a tool starts a synchronous spin; the time until the supervisor (in the API
 *   process) reports the blocked loop (goal: <= 1 s);
 * - heartbeat overhead: no-op steps through one worker process with the watchdog and heartbeats on,
 *   then off, alternately (goal: <= 2 % fewer steps/s).
 * The first two run `runwarden start` as users do, with default lease, heartbeat and stall
 * settings; the third runs a Supervisor in this process on a SQLite file.
 *
 *   node bench/supervisor.ts [--rounds n] [--steps n] [--pairs n] [--json file]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveConfig } from '../src/config/resolve.ts';
import { validateRunRequest } from '../src/domain/plan.ts';
import type { RunWithSteps, StepDetail } from '../src/domain/records.ts';
import { Transitions } from '../src/engine/transitions.ts';
import { SqliteStore } from '../src/store/sqlite/index.ts';
import { Supervisor } from '../src/supervisor/supervisor.ts';
import { builtinTools } from '../src/tools/builtin.ts';
import { ToolRegistry } from '../src/tools/registry.ts';
import { ROOT, startDeployment as deploy, type Deployment } from './deployment.ts';
import { percentile, poll, sleep } from './peers/common.ts';

const TOOLS = join(ROOT, 'test', 'supervisor', 'fixtures', 'tools.ts');

const { values } = parseArgs({ options: { rounds: { type: 'string' }, steps: { type: 'string' }, pairs: { type: 'string' }, json: { type: 'string' } } });
const ROUNDS = Number(values.rounds ?? 10);
const STEPS = Number(values.steps ?? 20_000);
/** On/off throughput runs, alternated so that drift on a shared machine hits both. */
const PAIRS = Number(values.pairs ?? 5);

const pct = percentile;
const median = (xs: number[]): number => pct(xs, 50);
/** Polls until `check` gives a value; a failing check (the API restarting, say) counts as not yet. */
const waitFor = <T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> => poll(() => check().catch(() => undefined), timeoutMs, what);

const startDeployment = (dir: string, workers: number): Promise<Deployment> => deploy({ dataDir: dir, workers, tools: [TOOLS] });

async function killToRetry(): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-sup-'));
  const d = await startDeployment(dir, 2);
  const out: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const run = await d.post<RunWithSteps>('/runs', { plan: { steps: [{ name: 'nap', tool: 'sleep', inputs: { ms: 2000 }, timeoutMs: 30_000 }] } });
      const step = await waitFor(async () => {
        const s = await d.get<StepDetail>(`/runs/${run.id}/steps/nap`);
        return s.status === 'running' && s.workerId ? s : undefined;
      }, 10_000, 'the step to run');
      const health = await d.health();
      const pid = health.supervisor?.workers.find((w) => w.workerIds.includes(step.workerId as string))?.pid;
      if (!pid) throw new Error('no pid for the step\'s worker');
      const killedAt = Date.now();
      process.kill(pid, 'SIGKILL');
      const next = await waitFor(async () => (await d.get<StepDetail>(`/runs/${run.id}/steps/nap`)).attemptsDetail.find((a) => a.attempt === 2), 15_000, 'the next attempt');
      out.push(Date.parse(next.startedAt) - killedAt);
      // The killed worker's replacement is up before the next round.
      await waitFor(async () => ((await d.health()).supervisor?.alive === 2 ? true : undefined), 20_000, 'workers back');
    }
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

async function stallDetection(): Promise<{ detect: number[]; capture: number[] }> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-sup-'));
  const d = await startDeployment(dir, 2);
  const detect: number[] = [];
  const capture: number[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const from = d.lines.length;
      const run = await d.post<RunWithSteps>('/runs', { plan: { steps: [{ name: 'spin', tool: 'spin', inputs: { ms: 4000 }, timeoutMs: 30_000 }] } });
      const blocked = await waitFor(async () => d.lines.slice(from).find((l) => l.line.includes('event loop blocked for') && l.line.includes('step spin')), 15_000, 'the stall report');
      const started = d.lines.slice(from).map((l) => /spin-start (\d+)/.exec(l.line)?.[1]).find((x) => x !== undefined);
      if (!started) throw new Error('the spinner did not say when it started');
      detect.push(blocked.at - Number(started));
      const step = await waitFor(async () => {
        const s = await d.get<StepDetail>(`/runs/${run.id}/steps/spin`);
        return s.status === 'failed' ? s : undefined;
      }, 20_000, 'the spinner to end');
      const w = (step.hangReports[0] as { worker?: { captureMs?: number } } | undefined)?.worker;
      if (typeof w?.captureMs === 'number') capture.push(w.captureMs);
      await waitFor(async () => ((await d.health()).supervisor?.alive === 2 ? true : undefined), 20_000, 'workers back');
    }
  } finally {
    await d.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { detect, capture };
}

/** CPU time (user + system) a process has used so far, ms (Linux /proc). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100;
}

/**
 * Steps per second through one supervised worker process, liveness on or off; the worker's CPU per
 * step, and its CPU when idle. Measured once the worker has settled (its start, the watchdog
 * thread's included, is a one-time cost, not an overhead on throughput).
 */
async function throughput(liveness: boolean): Promise<{ perS: number; cpuUsPerStep: number; idleCpuMsPerS: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'rw-bench-sup-'));
  const store = new SqliteStore({ path: join(dir, 'runwarden.db') });
  await store.migrate();
  const core = new Transitions(store);
  const tools = new ToolRegistry();
  for (const t of builtinTools) tools.register(t);
  // Runs of up to 10,000 independent echo steps, so that enqueueing them never paces the worker.
  const per = Math.min(10_000, STEPS);
  const validated = await validateRunRequest({ plan: { steps: Array.from({ length: per }, (_, i) => ({ name: `s${i}`, tool: 'echo', inputs: { i } })) } }, tools, {
    defaultTimeoutMs: 60_000,
    maxTimeoutMs: 86_400_000,
  });
  const config = await resolveConfig({ flags: { dataDir: dir, lab: 'off', workers: 1 }, env: {}, cwd: dir });
  const sup = new Supervisor({ config, core, count: 1, env: { PATH: process.env.PATH }, cwd: ROOT, log: () => undefined, liveness });
  try {
    await sup.start();
    await sup.ready();
    const pid = sup.pids()[0];
    if (!pid) throw new Error('no worker process');
    await sleep(1500);
    const idle0 = cpuMs(pid);
    await sleep(3000);
    const idleCpuMsPerS = Math.round(((cpuMs(pid) - idle0) / 3) * 10) / 10;
    const cpu0 = cpuMs(pid);
    for (let i = 0; i < STEPS / per; i++) await core.createRun(validated, {});
    await waitFor(async () => ((await store.stepCounts()).succeeded === STEPS ? true : undefined), 300_000, 'every step');
    const cpuUsPerStep = Math.round(((cpuMs(pid) - cpu0) * 1000) / STEPS);
    const r = store.get('SELECT min(started_at) AS a, max(finished_at) AS b FROM steps') as { a: number; b: number };
    return { perS: Math.round((STEPS / (r.b - r.a)) * 1000), cpuUsPerStep, idleCpuMsPerS };
  } finally {
    await sup.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const t0 = Date.now();
const kill = await killToRetry();
const stall = await stallDetection();
const onRuns: Array<Awaited<ReturnType<typeof throughput>>> = [];
const offRuns: Array<Awaited<ReturnType<typeof throughput>>> = [];
for (let i = 0; i < PAIRS; i++) {
  // Alternate which goes first, so that warm-up and drift do not favour one.
  if (i % 2 === 0) {
    onRuns.push(await throughput(true));
    offRuns.push(await throughput(false));
  } else {
    offRuns.push(await throughput(false));
    onRuns.push(await throughput(true));
  }
}
const on = onRuns.map((r) => r.perS);
const off = offRuns.map((r) => r.perS);
const overheadPct = Math.round((1 - median(on) / median(off)) * 1000) / 10;
const cpuOn = median(onRuns.map((r) => r.cpuUsPerStep));
const cpuOff = median(offRuns.map((r) => r.cpuUsPerStep));
const cpuPct = Math.round((cpuOn / cpuOff - 1) * 1000) / 10;
const idleOn = median(onRuns.map((r) => r.idleCpuMsPerS));
const idleOff = median(offRuns.map((r) => r.idleCpuMsPerS));

const rows: Array<[string, string, string, string]> = [
  ['kill-to-retry (SIGKILL of a worker)', `p50 ${median(kill)} ms, p90 ${pct(kill, 90)} ms, max ${Math.max(...kill)} ms`, 'p50 <= 3000 ms', median(kill) <= 3000 ? 'met' : 'MISSED'],
  ['stall detection (spin start to report)', `p50 ${median(stall.detect)} ms, max ${Math.max(...stall.detect)} ms`, '<= 1000 ms', Math.max(...stall.detect) <= 1000 ? 'met' : 'MISSED'],
  ['  of which stack capture (inspector)', `p50 ${median(stall.capture)} ms, max ${Math.max(...stall.capture)} ms`, '', ''],
  ['heartbeat overhead (no-op steps/s)', `on ${median(on)}/s, off ${median(off)}/s: ${overheadPct} %`, '<= 2 %', overheadPct <= 2 ? 'met' : 'MISSED'],
  ['  worker CPU per step', `on ${cpuOn} us, off ${cpuOff} us: ${cpuPct} %`, '', ''],
  ['  idle worker CPU', `on ${idleOn} ms/s, off ${idleOff} ms/s`, '', ''],
];
const w = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length), ['measure', 'value', 'goal', ''][i]?.length ?? 0));
console.log(`supervised workers: ${ROUNDS} rounds, ${STEPS} steps per throughput run; ${availableParallelism()} x ${cpus()[0]?.model ?? '?'}, Node ${process.version}; took ${Math.round((Date.now() - t0) / 1000)} s`);
for (const r of [['measure', 'value', 'goal', ''] as const, ...rows]) console.log(r.map((c, i) => c.padEnd(w[i] ?? 0)).join('  ').trimEnd());
console.log(`raw: kill-to-retry ${kill.join(' ')} ms; detection ${stall.detect.join(' ')} ms; throughput on ${on.join(' ')}, off ${off.join(' ')} steps/s; cpu per step on ${onRuns.map((r) => r.cpuUsPerStep).join(' ')}, off ${offRuns.map((r) => r.cpuUsPerStep).join(' ')} us`);
if (values.json) writeFileSync(values.json, JSON.stringify({ killToRetryMs: kill, stallDetectMs: stall.detect, captureMs: stall.capture, throughputOn: onRuns, throughputOff: offRuns, overheadPct, cpuPct }, null, 2));
