/**
 * `npm run bench [-- --quick] [-- --json file] [-- --only a,b] [-- --workload x,y] [-- --write-docs]`
 *
 * runwarden and its peers, same machine, same run, one stage after the other, each on fresh state:
 * job queues (BullMQ, graphile-worker, pg-boss) and workflow engines (DBOS, Mastra). Prints one
 * table with every value against the best peer of each kind;
 * `--json` writes `{ machine, results, ... }`; `--write-docs` regenerates docs/benchmarks.md and
 * docs/benchmarks.svg. Numbers from one noisy machine: compare ratios, not absolute values.
 *
 * A system module is used for a workload when it exports the workload's function: noopThroughput,
 * enqueueToStart, crashRecovery(capMs), hangCut(samples, capMs, deadlineMs), llmConcurrencyIsolated,
 * ... (see WORKLOADS). runwarden's crash-recovery and hang-cut run the CLI (bench/deployment.ts).
 * Quick mode (`--quick`) stays under 10 minutes (about 3.5 here): the crash-recovery cap is 100 s
 * (BullMQ's default recovery measures 60 or 90 s: its stalled check runs every 30 s, needs two
 * passes, and sometimes skips one) and the systems run that workload side by side.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { arch, cpus, platform, totalmem } from 'node:os';
import { parseArgs } from 'node:util';
import { postgresVersion, withDeadline } from './peers/common.ts';
import { markdown } from './report-docs.ts';
import { svgChart, textTable, type BenchResult, type Machine, type Params, type Report } from './report.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    only: { type: 'string' },
    workload: { type: 'string' },
    'write-docs': { type: 'boolean', default: false },
    from: { type: 'string' },
  },
});
const quick = values.quick ?? false;

/** Every system gets the same job count and concurrency; caps and sample counts per mode. */
const P: Params = {
  jobs: 20_000,
  // The workflow engines run 100-300 durable workflows a second here: 20,000 would take minutes each.
  engineJobs: quick ? 3000 : 20_000,
  concurrency: 128,
  e2sSamples: quick ? 200 : 1000,
  crashCapMs: quick ? 100_000 : 150_000,
  hangSamples: quick ? 20 : 100,
  hangCapMs: quick ? 10_000 : 60_000,
  deadlineMs: 1000,
};

type Fn = (...args: never[]) => Promise<BenchResult[]>;
type Mod = Record<string, unknown>;

interface SystemSpec {
  name: string;
  /** Modules (relative to bench/) whose exports provide this system's workloads. */
  modules: string[];
  /** One line on how the system is configured, for the docs. */
  configuration: string;
}

const SYSTEMS: SystemSpec[] = [
  {
    name: 'runwarden-sqlite',
    modules: ['./sqlite-engine.ts', './forensics.ts', './llm-concurrency.ts', './containment.ts', './enqueue.ts', './tracing.ts', './flow-control.ts'],
    configuration:
      'one process: the engine and one in-process `Worker` with concurrency N on a fresh SQLite file (node:sqlite, WAL); runs created one at a time with `engine.createRun`. ' +
      'crash-recovery and hang-cut run the CLI as users do instead: `runwarden start` on a fresh data directory at its defaults (the API and CPU-count supervised worker processes, ' +
      'lease 3 s), runs submitted over its HTTP API; llm-concurrency runs bench/llm-concurrency.ts in a child process (`--expose-gc`).',
  },
  {
    name: 'runwarden-postgres',
    modules: ['./postgres-engine.ts', './enqueue.ts', './scale-out.ts', './flow-control.ts'],
    configuration:
      'a fresh database; one `runwarden worker` host (its default: one supervised worker process per CPU, here 2, sharing concurrency N; LISTEN/NOTIFY wake-ups), runs created from the bench process (so its enqueue-to-start crosses processes; the peers\' does not). ' +
      'crash-recovery and hang-cut: one `runwarden worker` at its defaults (CPU-count supervised worker processes, lease 3 s), runs submitted to a `runwarden start --workers 0` API process.',
  },
  { name: 'bullmq', modules: ['./peers/bullmq.ts'], configuration: '' },
  { name: 'graphile-worker', modules: ['./peers/graphile-worker.ts'], configuration: '' },
  { name: 'pg-boss', modules: ['./peers/pg-boss.ts'], configuration: '' },
  { name: 'dbos', modules: ['./peers/dbos.ts'], configuration: '' },
  { name: 'mastra', modules: ['./peers/mastra.ts'], configuration: '' },
];

const ENGINES = new Set(['dbos', 'mastra']);

interface WorkloadSpec {
  name: string;
  /** Seconds a stage may take beyond its own internal deadlines before the bench gives up. */
  budgetS: number;
  /** Runs the workload for `system` from its modules' exports, or undefined when none exports it. */
  pick(system: string, mods: Mod[]): (() => Promise<BenchResult[]>) | undefined;
}

const fn = (mods: Mod[], name: string): Fn | undefined => mods.map((m) => m[name]).find((f): f is Fn => typeof f === 'function');
const renamed = (rows: BenchResult[], from: string, to: string, note?: string): BenchResult[] =>
  rows.map((r) => (r.workload === from ? { ...r, workload: to, ...(note ? { note } : {}) } : r));

const WORKLOADS: WorkloadSpec[] = [
  {
    name: 'noop-throughput',
    budgetS: 900,
    pick(system, mods) {
      const f = fn(mods, 'noopThroughput') as ((jobs: number, b: number, c?: number) => Promise<BenchResult[]>) | undefined;
      if (!f) return undefined;
      // postgres-engine's signature is (jobs, hosts, concurrency): one `runwarden worker` host with N steps in flight, as every peer has one worker.
      if (system === 'runwarden-postgres') return async () => renamed(await f(P.jobs, 1, P.concurrency), 'noop-throughput-1w', 'noop-throughput', '1 runwarden worker host (2 processes)');
      if (ENGINES.has(system)) return async () => (await f(P.engineJobs, P.concurrency)).map((r) => ({ ...r, note: `${P.engineJobs.toLocaleString('en-US')} jobs; ${r.note ?? ''}`.replace(/; $/, '') }));
      return () => f(P.jobs, P.concurrency);
    },
  },
  {
    name: 'enqueue',
    budgetS: 300,
    pick: (system, mods) => {
      // runwarden over HTTP (bench/enqueue.ts): POST /runs/batch and concurrent single POST /runs.
      const f = fn(mods, 'enqueueRates') as ((system: string, quick: boolean) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(system, quick));
    },
  },
  {
    name: 'enqueue-to-start',
    budgetS: 300,
    pick: (_s, mods) => {
      // Same concurrency as noop-throughput where the module takes one (the worker's idle state depends on it).
      const f = fn(mods, 'enqueueToStart') as ((n: number, c?: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(P.e2sSamples, P.concurrency));
    },
  },
  {
    name: 'hang-cut',
    budgetS: 180,
    pick: (_s, mods) => {
      const f = fn(mods, 'hangCut') as ((n: number, cap: number, deadline: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(P.hangSamples, P.hangCapMs, P.deadlineMs));
    },
  },
  {
    name: 'crash-recovery',
    budgetS: 240,
    pick: (_s, mods) => {
      // The peers take one sample (their recovery is a timer of 30 s or more); runwarden's modules
      // also take how many times to SIGKILL a worker process, then the whole process tree.
      const f = fn(mods, 'crashRecovery') as ((cap: number, samples?: number, treeSamples?: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(P.crashCapMs, quick ? 5 : 10, quick ? 2 : 3));
    },
  },
  {
    name: 'scale-out',
    budgetS: 600,
    pick: (_s, mods) => {
      const f = fn(mods, 'scaleOut') as ((jobs: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(quick ? 6000 : 20_000));
    },
  },
  {
    name: 'tracing-overhead',
    budgetS: 600,
    pick: (_s, mods) => {
      const f = fn(mods, 'tracingOverhead') as ((o: object) => Promise<BenchResult[]>) | undefined;
      return f && (() => f({ jobs: quick ? 3000 : 10_000, pairs: quick ? 3 : 5, concurrency: P.concurrency }));
    },
  },
  {
    name: 'fanout-throughput',
    budgetS: 300,
    pick: (_s, mods) => {
      const f = fn(mods, 'fanOutThroughput') as ((steps: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(quick ? 2000 : 10_000));
    },
  },
  {
    name: 'deadline-overshoot',
    budgetS: 120,
    pick: (_s, mods) => {
      const f = fn(mods, 'deadlineOvershoot') as ((n: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(quick ? 50 : 200));
    },
  },
  {
    name: 'forensics-overhead',
    budgetS: 900,
    pick: (_s, mods) => {
      const f = fn(mods, 'forensicsOverhead') as ((o: object) => Promise<BenchResult[]>) | undefined;
      if (!f) return undefined;
      return async () => withOverheadRatio(await f({ noopJobs: quick ? 1000 : 5000, llmJobs: quick ? 400 : 1500, rounds: quick ? 3 : 7 }));
    },
  },
  {
    name: 'containment-cost',
    budgetS: 900,
    pick: (_s, mods) => {
      const f = fn(mods, 'containmentCost') as ((o: object) => Promise<BenchResult[]>) | undefined;
      return f && (() => f({ noopJobs: quick ? 1000 : 3000, llmJobs: quick ? 300 : 1000, rounds: quick ? 3 : 7, log }));
    },
  },
  {
    name: 'containment-stop',
    budgetS: 300,
    pick: (_s, mods) => {
      const f = fn(mods, 'containmentStop') as ((o: object) => Promise<BenchResult[]>) | undefined;
      return f && (() => f({ samples: quick ? 10 : 30, log }));
    },
  },
  {
    name: 'flow-claim',
    budgetS: 600,
    pick: (system, mods) => {
      // One in-process SQLite worker: what the claim's flow bookkeeping costs, not a deployment.
      const f = system === 'runwarden-sqlite' ? (fn(mods, 'flowClaim') as ((o: object) => Promise<BenchResult[]>) | undefined) : undefined;
      return f && (() => f({ jobs: quick ? 2000 : 5000, rounds: quick ? 3 : 5, log }));
    },
  },
  {
    name: 'flow-quota',
    budgetS: 300,
    pick: (system, mods) => {
      // A real deployment of each store: SQLite with 2 supervised workers, PostgreSQL with 3.
      const f = fn(mods, 'flowQuota') as ((o: object) => Promise<BenchResult[]>) | undefined;
      return f && (() => f({ steps: 300, system, log }));
    },
  },
  {
    name: 'llm-concurrency',
    budgetS: 300,
    pick: (_s, mods) => {
      const f = fn(mods, 'llmConcurrencyIsolated') as ((steps: number, latencyMs: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(2000, 2000));
    },
  },
  {
    name: 'cost-per-step',
    budgetS: 300,
    pick: (_s, mods) => {
      const f = fn(mods, 'statementsPerStep') as ((jobs: number) => Promise<BenchResult[]>) | undefined;
      return f && (() => f(quick ? 2000 : 5000));
    },
  },
];

/**
 * The issue's `forensics-overhead` metric is throughput off / on. forensics.ts reports the median of
 * per-pair throughput losses; off/on of a pair is 1 / (1 - loss), a monotonic map, so the median
 * ratio is 1 / (1 - median loss).
 */
function withOverheadRatio(rows: BenchResult[]): BenchResult[] {
  const extra: BenchResult[] = [];
  for (const r of rows) {
    if (r.metric !== 'throughput_loss_pct') continue;
    const kind = r.workload.replace(/^forensics-/, '');
    extra.push({ system: r.system, workload: 'forensics-overhead', metric: kind === 'noop' ? 'ratio' : `ratio_${kind}`, value: Math.round((1 / (1 - r.value / 100)) * 1000) / 1000, note: 'throughput off / on, median of pairs' });
  }
  return [...extra, ...rows];
}

function parseList(v: string | undefined, valid: string[], what: string): string[] {
  if (!v) return valid;
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = list.filter((s) => !valid.includes(s));
  if (bad.length > 0) {
    process.stderr.write(`bench: unknown ${what}: ${bad.join(', ')} (known: ${valid.join(', ')})\n`);
    process.exit(2);
  }
  return list;
}

const systems = parseList(values.only, SYSTEMS.map((s) => s.name), 'system');
const workloads = parseList(values.workload, WORKLOADS.map((w) => w.name), 'workload');
const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);

// No worker child outlives an interrupted bench (common.ts SIGKILLs them on exit).
process.once('SIGINT', () => {
  log('interrupted');
  process.exit(130);
});

async function load(spec: SystemSpec): Promise<{ mods: Mod[]; errors: string[] }> {
  const mods: Mod[] = [];
  const errors: string[] = [];
  for (const rel of spec.modules) {
    const url = new URL(rel, import.meta.url);
    if (!existsSync(url)) continue;
    try {
      mods.push((await import(url.href)) as Mod);
    } catch (err) {
      errors.push(`${spec.name}: cannot load ${rel}: ${(err as Error).message}`);
    }
  }
  return { mods, errors };
}

async function runAll(): Promise<Report> {
  const started = new Date();
  const t0 = performance.now();
  const results: BenchResult[] = [];
  const errors: string[] = [];
  const loaded = new Map<string, Mod[]>();
  for (const spec of SYSTEMS.filter((s) => systems.includes(s.name))) {
    const { mods, errors: e } = await load(spec);
    errors.push(...e);
    loaded.set(spec.name, mods);
  }

  let gaveUp = false;
  const stage = async (workload: WorkloadSpec, system: string, run: () => Promise<BenchResult[]>): Promise<void> => {
    log(`${workload.name} / ${system} ...`);
    const s0 = performance.now();
    try {
      const budgetMs = workload.budgetS * 1000 + (workload.name === 'crash-recovery' ? P.crashCapMs : 0);
      results.push(...(await withDeadline(run(), budgetMs, `${system}/${workload.name}`)));
      log(`${workload.name} / ${system} done in ${((performance.now() - s0) / 1000).toFixed(1)} s`);
    } catch (err) {
      const message = (err as Error).message.split('\n')[0] ?? String(err);
      errors.push(`${system}/${workload.name}: ${message}`);
      log(`${workload.name} / ${system} FAILED: ${message}`);
      // A stage past its budget may still be running; later numbers would be measured beside it.
      if (message.includes('did not finish within')) gaveUp = true;
    }
  };

  for (const w of WORKLOADS.filter((x) => workloads.includes(x.name))) {
    if (gaveUp) break;
    const runs = [...loaded].flatMap(([system, mods]) => {
      const run = w.pick(system, mods);
      return run ? [{ system, run }] : [];
    });
    if (w.name === 'crash-recovery') {
      // Each system waits on its own timers (30 s to 4 h), not on the CPU: side by side costs no accuracy.
      await Promise.all(runs.map((r) => stage(w, r.system, r.run)));
    } else {
      for (const r of runs) await stage(w, r.system, r.run);
    }
  }

  const configs: Record<string, string> = {};
  for (const s of SYSTEMS.filter((x) => systems.includes(x.name))) {
    const c = (loaded.get(s.name)?.[0]?.configuration as string | undefined) ?? s.configuration;
    if (c) configs[s.name] = c;
  }
  // Where the JSON went is not part of how the numbers were made.
  const argv = process.argv.slice(2).join(' ').replace(/(--json[ =])\S+/, '$1<file>');
  return {
    machine: {
      platform: platform(),
      arch: arch(),
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? '',
      memGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      versions: gaveUp ? {} : await versions(loaded),
    },
    results,
    command: `npm run bench${argv ? ` -- ${argv}` : ''}`,
    mode: quick ? 'quick' : 'full',
    startedAt: started.toISOString(),
    durationS: (performance.now() - t0) / 1000,
    configs,
    errors,
    params: P,
    ...(gaveUp ? { gaveUp } : {}),
  };
}

async function versions(loaded: Map<string, Mod[]>): Promise<Machine['versions']> {
  const v: Record<string, string> = {};
  for (const p of ['bullmq', 'graphile-worker', 'pg-boss', 'dbos', 'mastra']) {
    const m = loaded.get(p)?.[0];
    if (typeof m?.version === 'function') v[p] = (m.version as () => string)();
  }
  const bull = loaded.get('bullmq')?.[0];
  if (typeof bull?.serverVersions === 'function') {
    try {
      Object.assign(v, await withDeadline((bull.serverVersions as () => Promise<Record<string, string>>)(), 10_000, 'Redis version'));
    } catch (err) {
      v['redis-server'] = `unknown (${(err as Error).message.split('\n')[0]})`;
    }
  }
  if (systems.some((s) => s !== 'runwarden-sqlite' && s !== 'bullmq')) {
    v.postgresql = await withDeadline(postgresVersion(), 10_000, 'PostgreSQL version').catch((err: Error) => `unknown (${err.message})`);
  }
  return v;
}

// `--from <json>` re-renders a saved run (table, and docs with --write-docs) without measuring.
const report: Report & { gaveUp?: boolean } = values.from ? (JSON.parse(readFileSync(values.from, 'utf8')) as Report) : await runAll();

console.log(`\n${textTable(report)}`);
if (values.json && !values.from) writeFileSync(values.json, `${JSON.stringify(report, null, 2)}\n`);
if (values['write-docs']) {
  writeFileSync(new URL('../docs/benchmarks.svg', import.meta.url), svgChart(report));
  writeFileSync(new URL('../docs/benchmarks.md', import.meta.url), markdown(report));
  log('wrote docs/benchmarks.md and docs/benchmarks.svg');
}
if (!values.from) log(`finished in ${Math.round(report.durationS)} s`);
if (report.errors.length > 0 && !values.from) process.exitCode = 1;
// Everything above closes what it opened; if a peer library still holds a handle, do not hang.
setTimeout(() => {
  log('handles still open 10 s after the end; exiting');
  process.exit(process.exitCode ?? 0);
}, 10_000).unref();
if (report.gaveUp && !values.from) process.exit(1);
