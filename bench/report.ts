/**
 * The bench's output: the rows with their ratios, the printed table and the SVG chart (written by
 * hand, no dependency); docs/benchmarks.md is written by report-docs.ts. Pure functions of the
 * results; run.ts decides what to write.
 */
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
  /** The no-op job count of the workflow-engine peers (they run 100-300 a second here). */
  engineJobs: number;
  concurrency: number;
  e2sSamples: number;
  crashCapMs: number;
  hangSamples: number;
  hangCapMs: number;
  deadlineMs: number;
}

/** Peers of two kinds, each compared on its own: bare job queues, and workflow engines (durable steps, runwarden's closest kind). */
export const QUEUE_PEERS = ['bullmq', 'graphile-worker', 'pg-boss'] as const;
export const ENGINE_PEERS = ['dbos', 'mastra'] as const;
export const PEERS = [...QUEUE_PEERS, ...ENGINE_PEERS] as const;
export type PeerKind = 'queues' | 'engines';
const KIND_PEERS: Record<PeerKind, readonly string[]> = { queues: QUEUE_PEERS, engines: ENGINE_PEERS };
const SYSTEM_ORDER = ['runwarden-sqlite', 'runwarden-postgres', ...PEERS];
const WORKLOAD_ORDER = ['noop-throughput', 'enqueue-to-start', 'crash-recovery', 'hang-cut', 'scale-out', 'tracing-overhead', 'fanout-throughput', 'deadline-overshoot', 'forensics-overhead', 'containment-cost', 'containment-stop', 'llm-concurrency'];

/** Rates, the share of a quota used and the room left under it are better high; times, memory and the forensics slowdown ratio are better low. */
export const higherIsBetter = (metric: string): boolean => /(^|_)per_s($|_)/.test(metric) || metric === 'achieved_over_allowed' || metric === 'closest_21_requests_ms';

const orderOf = (list: string[], x: string): number => (list.includes(x) ? list.indexOf(x) : list.length);

export interface Row {
  workload: string;
  metric: string;
  better: 'higher' | 'lower';
  system: string;
  value: string;
  /** value / best queue peer's value, with ≥ or ≤ when a cap hides the true ratio; '' when no queue peer has the metric. */
  vsQueues: string;
  /** The same against the best workflow-engine peer. */
  vsEngines: string;
  note: string;
}

/** Table rows, grouped by workload and metric, with the ratios against the best peer of each kind in the group. */
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
    const bestQ = bestPeer(group, hi, 'queues');
    const bestE = bestPeer(group, hi, 'engines');
    for (const r of group) {
      out.push({
        workload: r.workload,
        metric: r.metric,
        better: hi ? 'higher' : 'lower',
        system: r.system,
        value: formatValue(r),
        vsQueues: bestQ ? formatRatio(r, bestQ, hi) : '',
        vsEngines: bestE ? formatRatio(r, bestE, hi) : '',
        note: r.note ?? '',
      });
    }
  }
  return out;
}

/** The best row of a group among the peers of `kind`; an uncapped value beats a capped one. */
export function bestPeer(group: BenchResult[], hi: boolean, kind: PeerKind): BenchResult | undefined {
  const peers = group.filter((r) => KIND_PEERS[kind].includes(r.system) && Number.isFinite(r.value));
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
export function formatRatio(r: BenchResult, best: BenchResult, hi: boolean): string {
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
  const head = ['workload', 'metric', 'better', 'system', 'value', 'vs best queue', 'vs best engine', 'note'];
  const body = rows(report.results).map((r) => [r.workload, r.metric, r.better, r.system, r.value, r.vsQueues, r.vsEngines, r.note]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string =>
    r
      .map((c, i) => (i >= 4 && i <= 6 ? c.padStart(widths[i] ?? 0) : i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const lines = [
    `machine: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, ${m.platform}/${m.arch}, node ${m.node} (${report.mode})`,
    `versions: ${Object.entries(m.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `vs best queue / engine = value / the best value among the queue peers (${QUEUE_PEERS.join(', ')}) / the workflow-engine peers (${ENGINE_PEERS.join(', ')}) of the same workload and metric ("better" says which direction wins); ≥/≤ where a cap bounds it`,
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
  dbos: '#c92a2a',
  mastra: '#5f3dc4',
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
    const bestQ = bestPeer(g.rows, hi, 'queues');
    const bestE = bestPeer(g.rows, hi, 'engines');
    for (const r of g.rows) {
      const w = Math.max(2, scale(r.value));
      // runwarden's bars carry their ratios to the best peer of each kind.
      const q = r.system.startsWith('runwarden') && bestQ ? formatRatio(r, bestQ, hi) : '';
      const e = r.system.startsWith('runwarden') && bestE ? formatRatio(r, bestE, hi) : '';
      const ratios = [q && `${q} best queue`, e && `${e} best engine`].filter(Boolean).join(', ');
      const color = COLORS[r.system] ?? '#666';
      parts.push(
        `<text x="${labelW - 8}" y="${y + barH - 4}" text-anchor="end">${esc(r.system)}</text>` +
          `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"${r.capped ? ' fill-opacity="0.45" stroke="' + color + '" stroke-dasharray="4 2"' : ''}/>` +
          `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH - 4}">${esc(formatValue(r))}${ratios ? `<tspan fill="#555"> (${esc(ratios)})</tspan>` : ''}</text>`,
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
