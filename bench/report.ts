/**
 * The bench's output: the printed table, the SVG chart (written by hand, no dependency) and the
 * generated `docs/benchmarks.md`. Pure functions of the results; run.ts decides what to write.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Result } from './sqlite-engine.ts';

/** A result row. `capped`: the measurement stopped at `value` (a cap) before the event happened. */
export interface BenchResult extends Result {
  capped?: boolean;
  note?: string;
}

export interface Machine {
  platform: string;
  arch: string;
  cpus: number;
  cpuModel: string;
  memGiB: number;
  node: string;
  /** Package and server versions: `bullmq`, `ioredis`, `graphile-worker`, `pg-boss`, `redis-server`, `postgresql`. */
  versions: Record<string, string>;
}

export interface Report {
  machine: Machine;
  results: BenchResult[];
  command: string;
  mode: 'quick' | 'full';
  startedAt: string;
  durationS: number;
  /** How each peer was configured, one line each (from the adapters). */
  configs: Record<string, string>;
  /** Stages that threw: `system/workload: message`. */
  errors: string[];
  params: Params;
}

/** What every system got in this run. */
export interface Params {
  jobs: number;
  concurrency: number;
  e2sSamples: number;
  crashCapMs: number;
  hangSamples: number;
  hangCapMs: number;
  deadlineMs: number;
}

export const PEERS = ['bullmq', 'graphile-worker', 'pg-boss'] as const;
const SYSTEM_ORDER = ['runwarden-sqlite', 'runwarden-postgres', ...PEERS];
const WORKLOAD_ORDER = ['noop-throughput', 'enqueue-to-start', 'crash-recovery', 'hang-cut', 'fanout-throughput', 'deadline-overshoot', 'forensics-overhead', 'containment-cost', 'containment-stop', 'llm-concurrency'];

/** Rates are better high; times, memory and the forensics slowdown ratio are better low. */
export const higherIsBetter = (metric: string): boolean => /(^|_)per_s($|_)/.test(metric);

const isPeer = (system: string): boolean => (PEERS as readonly string[]).includes(system);
const orderOf = (list: string[], x: string): number => (list.includes(x) ? list.indexOf(x) : list.length);

export interface Row {
  workload: string;
  metric: string;
  better: 'higher' | 'lower';
  system: string;
  value: string;
  /** value / best peer value, with ≥ or ≤ when a cap hides the true ratio; '' when there is no peer. */
  ratio: string;
  note: string;
}

/** Table rows, grouped by workload and metric, with the ratio against the best peer of the group. */
export function rows(results: BenchResult[]): Row[] {
  const groups = new Map<string, BenchResult[]>();
  for (const r of results) {
    const k = `${r.workload}\u0000${r.metric}`;
    groups.set(k, [...(groups.get(k) ?? []), r]);
  }
  const keys = [...groups.keys()].sort((a, b) => {
    const [wa = '', ma = ''] = a.split('\u0000');
    const [wb = '', mb = ''] = b.split('\u0000');
    return orderOf(WORKLOAD_ORDER, wa) - orderOf(WORKLOAD_ORDER, wb) || wa.localeCompare(wb) || ma.localeCompare(mb);
  });
  const out: Row[] = [];
  for (const k of keys) {
    const group = [...(groups.get(k) ?? [])].sort((a, b) => orderOf(SYSTEM_ORDER, a.system) - orderOf(SYSTEM_ORDER, b.system));
    const first = group[0];
    if (!first) continue;
    const hi = higherIsBetter(first.metric);
    const best = bestPeer(group, hi);
    for (const r of group) {
      out.push({
        workload: r.workload,
        metric: r.metric,
        better: hi ? 'higher' : 'lower',
        system: r.system,
        value: formatValue(r),
        ratio: best ? formatRatio(r, best, hi) : '',
        note: r.note ?? '',
      });
    }
  }
  return out;
}

/** The best peer row of a group; an uncapped value beats a capped one. */
function bestPeer(group: BenchResult[], hi: boolean): BenchResult | undefined {
  const peers = group.filter((r) => isPeer(r.system) && Number.isFinite(r.value));
  const pool = peers.some((r) => !r.capped) ? peers.filter((r) => !r.capped) : peers;
  return pool.reduce<BenchResult | undefined>((b, r) => (!b || (hi ? r.value > b.value : r.value < b.value) ? r : b), undefined);
}

export function formatValue(r: BenchResult): string {
  const v = Math.abs(r.value) >= 100 ? Math.round(r.value).toString() : String(Math.round(r.value * 100) / 100);
  return r.capped ? `≥${v} (cap)` : v;
}

/**
 * value / best peer value. A capped value is a bound (the true time is at least the cap), so a
 * ratio against it is a bound too: ours / capped-peer is "≤", capped-ours / peer is "≥".
 */
function formatRatio(r: BenchResult, best: BenchResult, hi: boolean): string {
  if (best.value === 0 || !Number.isFinite(r.value)) return '';
  if (r.capped && best.capped) return 'both capped';
  const ratio = r.value / best.value;
  // A capped time is a lower bound on the true time; a capped rate would be an upper bound.
  const sign = best.capped ? (hi ? '≥' : '≤') : r.capped ? (hi ? '≤' : '≥') : '';
  return `${sign}${sig2(ratio)}×`;
}

function sig2(x: number): string {
  if (x === 0) return '0';
  if (x >= 100) return Math.round(x).toString();
  if (x >= 10) return x.toFixed(1);
  const digits = Math.max(2, 1 - Math.floor(Math.log10(x)));
  return x.toFixed(Math.min(digits, 6));
}

// ---------------------------------------------------------------------------------------------
// Printed table.

export function textTable(report: Report): string {
  const m = report.machine;
  const head = ['workload', 'metric', 'better', 'system', 'value', 'vs best peer', 'note'];
  const body = rows(report.results).map((r) => [r.workload, r.metric, r.better, r.system, r.value, r.ratio, r.note]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i === 4 || i === 5 ? c.padStart(widths[i] ?? 0) : i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [
    `machine: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, ${m.platform}/${m.arch}, node ${m.node} (${report.mode})`,
    `versions: ${Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    'vs best peer = value / best peer value of the same workload and metric ("better" says which direction wins); ≥/≤ where a cap bounds it',
    '',
    line(head),
    line(widths.map((w) => '-'.repeat(w))),
  ];
  let prev = '';
  for (const r of body) {
    const k = r[0] ?? '';
    if (prev && k !== prev) lines.push('');
    prev = k;
    lines.push(line(r));
  }
  if (report.errors.length > 0) lines.push('', 'errors:', ...report.errors.map((e) => `  ${e}`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// SVG: one group of horizontal bars per workload and metric, each group on its own scale (log when
// the values span more than two decades), the value printed at the end of every bar.

const COLORS: Record<string, string> = {
  'runwarden-sqlite': '#1f6feb',
  'runwarden-postgres': '#0b3d91',
  bullmq: '#d9480f',
  'graphile-worker': '#2b8a3e',
  'pg-boss': '#862e9c',
};
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function svgChart(report: Report): string {
  const W = 900;
  const labelW = 170;
  const barMax = 560;
  const barH = 16;
  const gap = 4;
  const groups = groupResults(report.results);
  const parts: string[] = [];
  let y = 56;
  for (const g of groups) {
    const hi = higherIsBetter(g.metric);
    const vals = g.rows.map((r) => r.value).filter((v) => Number.isFinite(v) && v > 0);
    const max = Math.max(...vals, 1e-9);
    const min = Math.min(...vals, max);
    const log = max / min > 100;
    const scale = (v: number): number => {
      if (!(v > 0)) return 0;
      if (!log) return (v / max) * barMax;
      const lo = Math.log10(min) - 0.3;
      return ((Math.log10(v) - lo) / (Math.log10(max) - lo)) * barMax;
    };
    parts.push(
      `<text x="10" y="${y}" font-weight="bold">${esc(`${g.workload} · ${g.metric}`)}</text>` +
        `<text x="${W - 10}" y="${y}" text-anchor="end" fill="#555">${hi ? 'higher is better' : 'lower is better'}${log ? ' · log scale' : ''}</text>`,
    );
    y += 8;
    for (const r of g.rows) {
      const w = Math.max(2, scale(r.value));
      const color = COLORS[r.system] ?? '#666';
      parts.push(
        `<text x="${labelW - 8}" y="${y + barH - 4}" text-anchor="end">${esc(r.system)}</text>` +
          `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"${r.capped ? ' fill-opacity="0.45" stroke="' + color + '" stroke-dasharray="4 2"' : ''}/>` +
          `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH - 4}">${esc(formatValue(r))}</text>`,
      );
      y += barH + gap;
    }
    y += 22;
  }
  const m = report.machine;
  const title = `runwarden and its peers, one run on one machine (${report.mode}): ${m.cpus} x ${m.cpuModel}, node ${m.node}`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" viewBox="0 0 ${W} ${y + 10}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="10" y="22" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="38" fill="#555">Compare within a group; dashed bars stopped at a cap (the real value is at least that).</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

function groupResults(results: BenchResult[]): Array<{ workload: string; metric: string; rows: BenchResult[] }> {
  const seen = new Map<string, { workload: string; metric: string; rows: BenchResult[] }>();
  for (const r of results) {
    const k = `${r.workload}\u0000${r.metric}`;
    const g = seen.get(k) ?? { workload: r.workload, metric: r.metric, rows: [] };
    g.rows.push(r);
    seen.set(k, g);
  }
  // The chart shows the comparison workloads; the detail rows (enqueue rates, forensics breakdowns,
  // statements per step) stay in the table.
  return [...seen.values()]
    .filter((g) => WORKLOAD_ORDER.includes(g.workload) && g.metric !== 'enqueue_per_s')
    .sort((a, b) => orderOf(WORKLOAD_ORDER, a.workload) - orderOf(WORKLOAD_ORDER, b.workload) || a.metric.localeCompare(b.metric))
    .map((g) => ({ ...g, rows: g.rows.sort((a, b) => orderOf(SYSTEM_ORDER, a.system) - orderOf(SYSTEM_ORDER, b.system)) }));
}

// ---------------------------------------------------------------------------------------------
// docs/benchmarks.md

/** The `/health` under load section, written by `node bench/health-under-load.ts --write-docs` (its own run, not this one). */
function healthSection(): string {
  const file = new URL('../docs/benchmarks-health.md', import.meta.url);
  return existsSync(file) ? `\n${readFileSync(file, 'utf8').trim()}\n` : '';
}

export function markdown(report: Report): string {
  const m = report.machine;
  const caps = report.params;
  const table = [
    '| workload | metric | better | system | value | vs best peer | note |',
    '|---|---|---|---|--:|--:|---|',
    ...rows(report.results).map((r) => `| ${r.workload} | ${r.metric} | ${r.better} | ${r.system} | ${r.value} | ${r.ratio} | ${r.note.replace(/\|/g, '\\|')} |`),
  ].join('\n');
  const configs = Object.entries(report.configs)
    .map(([k, v]) => `- **${k}**: ${v}`)
    .join('\n');
  return `<!-- Generated by \`npm run bench -- --write-docs\` (bench/report.ts). Edit the generator, not this file. -->
# Benchmarks

runwarden measured side by side with BullMQ, graphile-worker and pg-boss: same machine, same run,
one after the other. The machine is small and shared (${m.cpus} cores), so absolute numbers move
from run to run by tens of percent; **read the ratios within a row group, not the absolute values**.
Nothing in \`npm test\` asserts speed.

![grouped bars per workload](benchmarks.svg)

## This run

- Command: \`${report.command}\` (${report.mode} mode), started ${report.startedAt}, took ${Math.round(report.durationS)} s.
- Machine: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB RAM, ${m.platform}/${m.arch}, Node ${m.node}.
- Versions: ${Object.entries(m.versions)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')}.
- Same for every system: ${caps.jobs.toLocaleString('en-US')} no-op jobs, concurrency ${caps.concurrency}; crash-recovery cap ${caps.crashCapMs / 1000} s; hang-cut deadline ${caps.deadlineMs} ms, cap ${caps.hangCapMs / 1000} s past it.

"vs best peer" is the value divided by the best peer's value for the same workload and metric; the
"better" column says whether higher or lower wins. "≥ (cap)" means the event had not happened when
the measurement stopped; a ratio against a capped value is a bound (≤ or ≥).

${table}
${report.errors.length > 0 ? `\nStages that failed in this run:\n\n${report.errors.map((e) => `- ${e}`).join('\n')}\n` : ''}
${healthSection()}
## How each peer is configured

Each peer runs from its npm package (devDependencies), in-process with the bench except for the
crash-recovery workers, against fresh state: a new PostgreSQL database \`rwbench_*\` (dropped
afterwards) or a new Redis key prefix \`rwbench:*\` (its keys deleted afterwards).

${configs}

## What each workload measures

- **noop-throughput** (\`steps_per_s\`): ${caps.jobs.toLocaleString('en-US')} no-op jobs are enqueued first (in
  each system's bulk API where it has one; \`enqueue_per_s\`), then one worker with concurrency ${caps.concurrency}
  drains them. runwarden-sqlite: from \`worker.start()\` to the store counting every step succeeded;
  runwarden-postgres: from its worker process being ready to the last step finished. Peers: from
  the worker starting to fetch (BullMQ \`worker.run()\`, pg-boss \`work()\`, graphile-worker's
  \`pool:create\` event) to the last completion committed (BullMQ \`completed\` events;
  graphile-worker and pg-boss: their job table polled every 10 ms, on one connection, after the last
  handler ran). Before draining, the PostgreSQL peers' job tables get an \`ANALYZE\`, as autovacuum
  would have done on any database up for a minute: on a fresh pg-boss queue the planner otherwise
  completes each batch with a nested loop (about 1 s per 1,000 jobs while 10,000 are active here),
  which would measure the empty statistics, not pg-boss.
- **enqueue-to-start** (\`p50_ms\`, \`p99_ms\`): one job at a time into an idle worker, 2 ms apart;
  from the enqueue call to the handler's first line. The peers' worker is in the bench process
  (pg-boss, which polls, is woken with \`notifyWorker\`); runwarden-postgres's is a separate process,
  so its number includes the cross-process wake-up (LISTEN/NOTIFY) the others do not pay.
- **crash-recovery** (\`ms\`): a worker child process takes the one job and holds it; it is
  SIGKILLed; a fresh worker process at the system's default settings starts at once; time from the
  kill to the job's handler starting again, capped at ${caps.crashCapMs / 1000} s. The systems run this one side by
  side (they spend it waiting on their own timers of 30 s to 4 h, not on the CPU).
  runwarden runs as users run it, at its defaults: \`runwarden start\` on SQLite, and on PostgreSQL one
  \`runwarden worker\` (runs submitted to a \`runwarden start --workers 0\` API); both supervise as many
  worker processes as there are CPUs, with a 3 s lease. The held step reports the pid of the worker
  process running it; that process (not its supervisor) is SIGKILLed, and the time runs to the
  step's next attempt starting: \`ms\` is the p50 of several kills, \`ms_max\` the slowest. The
  supervisor sees its worker die and hands the attempt back at once. \`ms_lease_expiry\`: every
  process that runs workers (\`runwarden start\`, or \`runwarden worker\`, with its worker processes)
  is SIGKILLed at once and a new one started: the step comes back when its lease has expired and the
  reaper (every 0.5 s) sees it, which is the peers' situation (nothing survives to tell).
- **hang-cut** (\`p50_ms\`, \`p99_ms\`): jobs that make an HTTP request to a local server that accepts
  and never answers, with a ${caps.deadlineMs} ms deadline set through the system's own job timeout where it has
  one; how long after the deadline each job is recorded as failed. A peer without a timeout for
  running jobs never cuts it: reported as the cap (${caps.hangCapMs / 1000} s past the deadline) with the jobs still running.
  runwarden: single-step runs of its builtin \`http\` tool with \`timeoutMs\` = the deadline, on the
  same deployments as crash-recovery; the overshoot is the \`step.finished\` event's time minus the
  \`deadlineAt\` of the step's \`step.started\` event. \`sockets_left_open\` (runwarden, and pg-boss: the
  one peer that cuts): of the connections that carried a request, how many the server still has
  open after the cut (runwarden: waiting up to 1 s): 0 means the request itself was aborted, not
  only the wait for it.
- **llm-concurrency** (runwarden-sqlite only): bench/llm-concurrency.ts in a child process of its own
  (\`--expose-gc\`): 2,000 lab LLM steps at once at 2 s latency on one in-process worker, the lab in a
  process of its own (\`runwarden lab\`, as a remote server would be).
  \`loop_delay_p99_ms\`: the event loop's delay p99 while they run; \`heap_kb_per_step\` and
  \`rss_kb_per_step\`: peak heap (after a GC at the baseline) and RSS over the idle baseline, per
  in-flight step; \`overhead_ms_per_call\`: one llm step at a time against the lab at 0 latency,
  minus a bare \`fetch\` of the same request.
- **containment-cost-noop / -llm** (runwarden-sqlite only, bench/containment.ts): single-step runs of
  a user tool from a tools module, run in tool threads (\`toolIsolation: 'thread'\`, the default:
  stoppable at the cut) against inline on the worker's loop, in alternating pairs; \`throughput_loss_pct\`
  is the median loss of the pairs, \`step_p50_ms_*\` each step's own started -> finished. \`-llm\`: the
  tool makes one chat request to the lab in a process of its own.
- **containment-stop-burner / -writer / -stubborn-child** (runwarden-sqlite only): tools that ignore
  their signal (a CPU burner in 10 ms slices, a file writer every 10 ms, a shell child trapping
  SIGTERM that writes every 10 ms), 500 ms deadline, 500 ms grace, in tool threads; "work stopped" is
  the last time the file the tool marks grew, measured from the deadline. Goal:
  \`stop_after_grace_p99_ms\` <= 200.
- runwarden only, when the run has them: **fanout-throughput** (one run with thousands of independent
  steps), **deadline-overshoot** (a \`sleep\` step past its deadline), **forensics-overhead** (\`ratio\`:
  throughput with forensics off / on, median of alternating pairs; \`ratio_llm\` for lab LLM steps),
  **cost-per-step** (PostgreSQL statements and commits per step).

## Reproduce

\`\`\`sh
# Redis on 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth)
npm run bench -- --quick --json bench-results.json    # under 10 minutes
npm run bench -- --json bench-results.json            # full
npm run bench -- --only bullmq,pg-boss --workload noop-throughput
npm run bench -- --write-docs                          # regenerates this page and benchmarks.svg
\`\`\`
`;
}
