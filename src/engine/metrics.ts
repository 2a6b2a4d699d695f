/** Prometheus text exposition (format 0.0.4) of the engine's numbers. */
import type { WorkerRecord } from '../domain/records.ts';
import type { SupervisorStatus } from './facade.ts';
import type { LimitState, ProviderLimits } from '../flow/slots.ts';
import { quantize } from '../domain/quota.ts';
import type { SaturatedLimit } from './saturation.ts';

export interface MetricsInput {
  steps: Record<string, number>;
  runs: Record<string, number>;
  workers: WorkerRecord[];
  stuck: number;
  reaped: number;
  loop: { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number; samples: number; sumS: number };
  uptimeS: number;
  supervisor?: SupervisorStatus;
  /** Each provider's limits and how full they are (docs/flow-control.md#provider-limits). */
  providers?: ProviderLimitView[];
  /** The limits holding work back now (saturation.ts). */
  saturated?: SaturatedLimit[];
}

export interface ProviderLimitView {
  state: LimitState;
  limits: ProviderLimits;
}

const perSecond = (perMinute: number): number => quantize(perMinute).cap;
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
  // A summary (quantiles with their _sum and _count), as Prometheus defines one: a gauge with a
  // quantile label is what `promtool check metrics` rejects.
  out.push('# HELP runwarden_event_loop_delay_seconds API process event-loop delay since it started (10 ms resolution).', '# TYPE runwarden_event_loop_delay_seconds summary');
  for (const [q, ms] of [['0.5', m.loop.delayP50Ms], ['0.99', m.loop.delayP99Ms], ['1', m.loop.delayMaxMs]] as const) {
    out.push(`runwarden_event_loop_delay_seconds{quantile="${q}"} ${Number.isFinite(ms) ? ms / 1000 : 0}`);
  }
  out.push(`runwarden_event_loop_delay_seconds_sum ${m.loop.sumS}`, `runwarden_event_loop_delay_seconds_count ${m.loop.samples}`);
  const sup = m.supervisor;
  if (sup) {
    const states = new Map<string, number>();
    for (const w of sup.workers) states.set(w.state, (states.get(w.state) ?? 0) + 1);
    metric('runwarden_worker_processes', 'gauge', 'Supervised worker processes by state.', [...states].map(([state, n]) => [{ state }, n]));
    metric('runwarden_worker_processes_desired', 'gauge', 'Worker processes the supervisor keeps running.', [[{}, sup.desired]]);
    metric(
      'runwarden_worker_process_heartbeat_age_seconds',
      'gauge',
      'Seconds since each supervised worker process last heartbeated from its event loop.',
      sup.workers.filter((w) => w.heartbeatAgeMs !== null).map((w) => [{ slot: String(w.slot), pid: String(w.pid) }, (w.heartbeatAgeMs ?? 0) / 1000]),
    );
    metric(
      'runwarden_worker_process_loop_delay_seconds',
      'gauge',
      'p99 event-loop delay of each supervised worker process over its last heartbeat period.',
      sup.workers.filter((w) => w.loopDelayP99Ms !== null).map((w) => [{ slot: String(w.slot), pid: String(w.pid) }, (w.loopDelayP99Ms ?? 0) / 1000]),
    );
    metric(
      'runwarden_worker_process_blocked_seconds',
      'gauge',
      'How long each stalled worker process has had its event loop blocked (0 when it is not).',
      sup.workers.map((w) => [{ slot: String(w.slot) }, (w.blockedMs ?? 0) / 1000]),
    );
    metric('runwarden_worker_process_restarts_total', 'counter', 'Worker process restarts, by slot.', sup.workers.map((w) => [{ slot: String(w.slot) }, w.restarts]));
    metric('runwarden_worker_process_crashes_total', 'counter', 'Worker processes that exited without being asked to.', [[{}, sup.totals.crashes]]);
    metric('runwarden_worker_process_stalls_total', 'counter', 'Blocked event loops seen in worker processes.', [[{}, sup.totals.stalls]]);
    metric('runwarden_worker_process_stall_kills_total', 'counter', 'Worker processes killed for a blocked event loop.', [[{}, sup.totals.stallKills]]);
  }
  const providers = m.providers ?? [];
  metric('runwarden_provider_paused', 'gauge', 'Whether calls to the provider are paused for every worker after a 429/529 with retry-after (1) or not (0).', providers.map((p) => [{ provider: p.state.name }, p.state.pausedUntil > Date.now() ? 1 : 0]));
  const used = (p: ProviderLimitView): Array<[string, number | undefined, number]> => [
    ['concurrency', p.limits.concurrency, p.state.inFlight],
    ['requestsPerMinute', p.limits.requestsPerMinute, p.state.requestsInWindow],
    ['tokensPerMinute', p.limits.tokensPerMinute, p.state.tokensInWindow],
  ];
  metric('runwarden_provider_limit', 'gauge', 'A provider limit per window: calls in flight, or requests and tokens a second (per-minute limits are held per second).', providers.flatMap((p) => used(p).flatMap(([limit, cap]) => (cap === undefined ? [] : [[{ provider: p.state.name, limit }, limit === 'concurrency' ? cap : perSecond(cap)] as [Record<string, string>, number]]))));
  metric('runwarden_provider_limit_used', 'gauge', 'How much of each provider limit is taken now, across every worker.', providers.flatMap((p) => used(p).flatMap(([limit, cap, n]) => (cap === undefined ? [] : [[{ provider: p.state.name, limit }, n] as [Record<string, string>, number]]))));
  const saturated = m.saturated ?? [];
  metric(
    'runwarden_limit_waiting_steps',
    'gauge',
    'Steps held back now by each saturated limit: a provider limit (its gate) or a concurrency key at its limit (docs/flow-control.md#never-silent).',
    saturated.map((l) => [{ kind: l.kind, name: l.name, limit: l.limit }, l.waiting]),
  );
  const keys = saturated.filter((l) => l.kind === 'concurrency');
  metric('runwarden_concurrency_key_running', 'gauge', 'Running steps of each concurrency key at its limit with steps queued behind it.', keys.map((l) => [{ key: l.name }, l.used]));
  metric('runwarden_concurrency_key_limit', 'gauge', 'The limit of each concurrency key at its limit with steps queued behind it.', keys.map((l) => [{ key: l.name }, l.cap]));
  metric('runwarden_uptime_seconds', 'gauge', 'Seconds since the engine started.', [[{}, m.uptimeS]]);
  return `${out.join('\n')}\n`;
}
