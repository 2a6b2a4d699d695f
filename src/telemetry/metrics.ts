/**
 * Histograms and counters of what happens in this process (steps, LLM calls, hang reports, HTTP
 * requests), rendered in the Prometheus text format so that `promtool check metrics` passes: real
 * `_bucket{le=...}` / `_sum` / `_count` series, base units (seconds), `_total` on counters.
 *
 * A worker process has its own registry; it sends a snapshot to its supervisor with its heartbeat
 * (every 1 s) and the API process renders its own numbers plus those of its workers (a process that
 * exits keeps counting: its last snapshot is folded into a retired total, so counters never go back).
 */

/** Seconds: from a no-op step (~1 ms) to an LLM call at its 10-minute cap. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];

interface Series {
  labels: Record<string, string>;
  /** Histograms: cumulative-free counts per bucket (the last one is +Inf). Counters: [value]. */
  counts: number[];
  sum: number;
}

export interface MetricSnapshot {
  name: string;
  type: 'histogram' | 'counter';
  help: string;
  buckets?: number[];
  series: Series[];
}

abstract class Metric {
  readonly name: string;
  readonly help: string;
  protected readonly series = new Map<string, Series>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  protected get(labels: Record<string, string>, size: number): Series {
    const key = Object.keys(labels).sort().map((k) => `${k}\u0000${labels[k]}`).join('\u0001');
    let s = this.series.get(key);
    if (!s) this.series.set(key, (s = { labels, counts: new Array<number>(size).fill(0), sum: 0 }));
    return s;
  }

  abstract snapshot(): MetricSnapshot;
}

export class Histogram extends Metric {
  readonly buckets: number[];

  constructor(name: string, help: string, buckets = DURATION_BUCKETS) {
    super(name, help);
    this.buckets = buckets;
  }

  observe(labels: Record<string, string>, value: number): void {
    if (!Number.isFinite(value)) return;
    const s = this.get(labels, this.buckets.length + 1);
    let i = this.buckets.findIndex((b) => value <= b);
    if (i === -1) i = this.buckets.length;
    s.counts[i] = (s.counts[i] ?? 0) + 1;
    s.sum += value;
  }

  snapshot(): MetricSnapshot {
    return { name: this.name, type: 'histogram', help: this.help, buckets: this.buckets, series: [...this.series.values()].map((s) => ({ ...s, counts: [...s.counts] })) };
  }
}

export class Counter extends Metric {
  inc(labels: Record<string, string>, by = 1): void {
    if (!Number.isFinite(by) || by < 0) return;
    const s = this.get(labels, 1);
    s.counts[0] = (s.counts[0] ?? 0) + by;
  }

  snapshot(): MetricSnapshot {
    return { name: this.name, type: 'counter', help: this.help, series: [...this.series.values()].map((s) => ({ ...s, counts: [...s.counts] })) };
  }
}

/** The metrics of this process. */
export const processMetrics = {
  stepDuration: new Histogram('runwarden_step_duration_seconds', 'Duration of step attempts, by tool and how the attempt ended.'),
  queueWait: new Histogram('runwarden_step_queue_wait_seconds', 'Time from a step being ready to its attempt being claimed, by tool.'),
  llmCalls: new Histogram('runwarden_llm_call_duration_seconds', 'LLM provider calls (retries included), by provider, model and outcome code (ok or the error code).'),
  llmTokens: new Counter('runwarden_llm_tokens_total', 'LLM tokens, by provider, model and direction (input or output).'),
  hangReports: new Counter('runwarden_hang_reports_total', 'Hang reports written, by classification code.'),
  httpRequests: new Histogram('runwarden_http_request_duration_seconds', 'HTTP requests answered, by method, route pattern and status class.'),
};

export function snapshotProcess(): MetricSnapshot[] {
  return Object.values(processMetrics).map((m) => m.snapshot());
}

/** Adds snapshots of the same metrics (this process and its workers) series by series. */
export function mergeSnapshots(parts: MetricSnapshot[][]): MetricSnapshot[] {
  const out = new Map<string, MetricSnapshot>();
  for (const part of parts) {
    for (const m of part) {
      let acc = out.get(m.name);
      if (!acc) out.set(m.name, (acc = { ...m, series: [] }));
      for (const s of m.series) {
        const key = JSON.stringify(Object.entries(s.labels).sort());
        const same = acc.series.find((x) => JSON.stringify(Object.entries(x.labels).sort()) === key);
        if (!same) acc.series.push({ labels: s.labels, counts: [...s.counts], sum: s.sum });
        else {
          s.counts.forEach((c, i) => (same.counts[i] = (same.counts[i] ?? 0) + c));
          same.sum += s.sum;
        }
      }
    }
  }
  return [...out.values()];
}

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
const labelText = (labels: Record<string, string>, extra?: [string, string]): string => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`);
  if (extra) parts.push(`${extra[0]}="${esc(extra[1])}"`);
  return parts.length > 0 ? `{${parts.join(',')}}` : '';
};

export function renderSnapshots(metrics: MetricSnapshot[]): string {
  const out: string[] = [];
  for (const m of metrics) {
    out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`);
    for (const s of m.series) {
      if (m.type === 'counter') {
        out.push(`${m.name}${labelText(s.labels)} ${s.counts[0] ?? 0}`);
        continue;
      }
      const buckets = m.buckets ?? [];
      let cumulative = 0;
      buckets.forEach((b, i) => {
        cumulative += s.counts[i] ?? 0;
        out.push(`${m.name}_bucket${labelText(s.labels, ['le', String(b)])} ${cumulative}`);
      });
      cumulative += s.counts[buckets.length] ?? 0;
      out.push(`${m.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${cumulative}`);
      out.push(`${m.name}_sum${labelText(s.labels)} ${Number(s.sum.toFixed(6))}`);
      out.push(`${m.name}_count${labelText(s.labels)} ${cumulative}`);
    }
  }
  return out.length > 0 ? `${out.join('\n')}\n` : '';
}
