/** Prometheus text exposition (format 0.0.4) of the engine's numbers. */
import type { WorkerRecord } from '../domain/records.ts';

export interface MetricsInput {
  steps: Record<string, number>;
  runs: Record<string, number>;
  workers: WorkerRecord[];
  stuck: number;
  reaped: number;
  loop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number };
  uptimeS: number;
}

const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export function renderMetrics(m: MetricsInput): string {
  const out: string[] = [];
  const metric = (name: string, type: 'gauge' | 'counter', help: string, samples: Array<[Record<string, string>, number]>): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const l = Object.entries(labels).map(([k, v]) => `${k}="${esc(v)}"`).join(',');
      out.push(`${name}${l ? `{${l}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  metric('runwarden_steps', 'gauge', 'Steps by state.', Object.entries(m.steps).map(([s, n]) => [{ state: s }, n]));
  metric('runwarden_runs', 'gauge', 'Runs by state.', Object.entries(m.runs).map(([s, n]) => [{ state: s }, n]));
  metric('runwarden_steps_stuck', 'gauge', 'Running steps past their deadline or on an expired lease.', [[{}, m.stuck]]);
  metric('runwarden_leases_reaped_total', 'counter', 'Expired leases turned into lost attempts by this process.', [[{}, m.reaped]]);
  metric('runwarden_workers', 'gauge', 'Registered workers.', [[{}, m.workers.length]]);
  metric(
    'runwarden_worker_heartbeat_age_seconds',
    'gauge',
    'Seconds since each worker last heartbeated.',
    m.workers.map((w) => [{ worker: w.id, pid: String(w.pid) }, (Date.now() - Date.parse(w.lastHeartbeatAt)) / 1000]),
  );
  metric(
    'runwarden_worker_inflight_steps',
    'gauge',
    'Steps each worker is running.',
    m.workers.map((w) => [{ worker: w.id }, Number(w.info.inflight ?? 0)]),
  );
  metric('runwarden_event_loop_delay_seconds', 'gauge', 'API process event-loop delay.', [
    [{ quantile: '0.5' }, m.loop.delayP50Ms / 1000],
    [{ quantile: '0.99' }, m.loop.delayP99Ms / 1000],
    [{ quantile: '1' }, m.loop.delayMaxMs / 1000],
  ]);
  metric('runwarden_uptime_seconds', 'gauge', 'Seconds since the engine started.', [[{}, m.uptimeS]]);
  return `${out.join('\n')}\n`;
}
