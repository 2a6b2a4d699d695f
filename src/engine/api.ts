/**
 * The engine as the API and CLI see it (EngineFacade): requests checked and paged, runs read from
 * the store, health and metrics, plus the background reaper (reaper.ts). Every write is a
 * transition in transitions.ts.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>;
import { notFound, RunwardenError } from '../domain/errors.ts';
import { DEFAULT_MAX_STEPS, validateRunRequest, type PlanLimits } from '../domain/plan.ts';
import { MAX_INLINE_STEPS, type RunRecord, type RunWithSteps, type StepDetail, type StepRecord, type TextDelta } from '../domain/records.ts';
import { RUN_STATES } from '../domain/states.ts';
import { textProblem } from '../domain/text.ts';
import type { RunRow, StepRow, Store } from '../store/store.ts';
import type { ToolInfo, ToolRegistry } from '../tools/registry.ts';
import { startReaper } from './reaper.ts';
import { stuckStep } from './stuck.ts';
import { withWaiting } from './waiting.ts';
import { saturatedLimits } from './saturation.ts';
import { pruneRuns, startRetention, type PruneRequest, type PruneResult } from './retention.ts';
import { Transitions, type LostReportBuilder, type QueueReportBuilder, type WaitReportBuilder } from './transitions.ts';
import type { EngineFacade, HealthDetailed, ListRunsQuery, RunPage, SignalResult, StuckStep, SupervisorStatus } from './facade.ts';
import { signalNameProblem } from '../domain/signals.ts';
import { validateBatch } from '../domain/batch.ts';
import { renderMetrics, type ProviderLimitView } from './metrics.ts';
import type { ProviderLimits } from '../flow/slots.ts';
import { Schedules } from './schedules.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';
import { mergeSnapshots, renderSnapshots, snapshotProcess, type MetricSnapshot } from '../telemetry/metrics.ts';

export interface EngineOptions {
  store: Store;
  tools: ToolRegistry;
  limits: PlanLimits;
  /** @default 500 */
  reaperIntervalMs?: number;
  providers?: () => Array<{ name: string; type: string; baseUrl?: string; limits?: ProviderLimits }>;
  log?: (line: string) => void;
  /** The report of an attempt reaped after its lease expired (see TransitionsOptions.lostReport). */
  lostReport?: LostReportBuilder;
  /** The report of a wait whose signal did not come (see TransitionsOptions.waitReport). */
  waitReport?: WaitReportBuilder;
  /** The report of a queued step past its queueTimeoutMs (see TransitionsOptions.queueReport). */
  queueReport?: QueueReportBuilder;
  /** Prune runs that finished longer ago than this, every hour (retention.ts). @default never */
  retentionMs?: number;
}

export function publicRun(r: RunRow): RunRecord {
  const { stepsFailed: _f, cancelRequested: _c, maxSteps, ...rest } = r;
  return { ...rest, maxSteps: maxSteps ?? DEFAULT_MAX_STEPS };
}

export function publicStep(s: StepRow): StepRecord {
  const { dependents: _d, pendingDeps: _p, leaseToken: _t, cancelRequested: _c, ...rest } = s;
  return rest;
}

function encodeCursor(r: RunRow): string {
  return Buffer.from(JSON.stringify([Date.parse(r.createdAt), r.id])).toString('base64url');
}

function decodeCursor(c: string): { createdAt: number; id: string } {
  try {
    const decoded: unknown = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    const [createdAt, id] = Array.isArray(decoded) && decoded.length === 2 ? (decoded as [unknown, unknown]) : [undefined, undefined];
    // Both values reach SQL: a time that is not a safe integer breaks PostgreSQL's bigint cast, a
    // NUL its text parameter. An id is a UUID, so 100 characters is generous.
    if (Number.isSafeInteger(createdAt) && (createdAt as number) >= 0 && typeof id === 'string' && id.length <= 100 && textProblem(id) === null) {
      return { createdAt: createdAt as number, id };
    }
  } catch {
    // fall through to the error below: a cursor that is not ours is bad input, not a crash
  }
  throw new RunwardenError('INVALID_CURSOR', 'cursor is not one this server issued');
}

export class EngineApi implements EngineFacade {
  readonly core: Transitions;
  readonly store: Store;
  readonly tools: ToolRegistry;
  readonly #limits: PlanLimits;
  readonly #reaperMs: number;
  readonly #providers: () => Array<{ name: string; type: string; baseUrl?: string; limits?: ProviderLimits }>;
  readonly #log: (line: string) => void;
  #stopReaper: (() => void) | undefined;
  readonly #retentionMs: number | undefined;
  #stopRetention: (() => Promise<void>) | undefined;
  readonly schedules: Schedules;
  #scheduler: Scheduler | undefined;
  #supervisor: (() => SupervisorStatus) | undefined;
  /** Snapshots of the supervised worker processes' own metrics (steps, LLM calls), with those of exited ones. */
  #workerMetrics: (() => MetricSnapshot[][]) | undefined;
  readonly #loop: IntervalHistogram;
  readonly startedAt = Date.now();
  reaped = 0;

  constructor(o: EngineOptions) {
    this.store = o.store;
    this.tools = o.tools;
    this.core = new Transitions(o.store, { ...(o.lostReport ? { lostReport: o.lostReport } : {}), ...(o.waitReport ? { waitReport: o.waitReport } : {}), ...(o.queueReport ? { queueReport: o.queueReport } : {}) });
    this.#limits = o.limits;
    this.#reaperMs = o.reaperIntervalMs ?? 500;
    this.#providers = o.providers ?? (() => []);
    this.#log = o.log ?? (() => undefined);
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
    this.#retentionMs = o.retentionMs;
    this.schedules = new Schedules({ store: o.store, tools: o.tools, limits: o.limits });
  }

  /** The worker processes this process supervises: shown by `/health/detailed` and `/metrics`. */
  attachSupervisor(status: () => SupervisorStatus, metrics?: () => MetricSnapshot[][]): void {
    this.#supervisor = status;
    this.#workerMetrics = metrics;
  }

  start(): void {
    this.#loop.enable();
    this.#stopReaper ??= startReaper(this.core, { intervalMs: this.#reaperMs, log: this.#log, onReaped: (n) => (this.reaped += n) });
    if (this.#retentionMs !== undefined) this.#stopRetention ??= startRetention(this.store, { retentionMs: this.#retentionMs, log: this.#log });
    this.#scheduler ??= startScheduler(this.core, { log: this.#log });
  }

  async stop(): Promise<void> {
    this.#stopReaper?.();
    this.#stopReaper = undefined;
    await this.#stopRetention?.();
    this.#stopRetention = undefined;
    await this.#scheduler?.stop();
    this.#scheduler = undefined;
    this.#loop.disable();
  }

  async createRun(body: Record<string, unknown>): Promise<{ run: RunWithSteps; created: boolean }> {
    const validated = await validateRunRequest(body, this.tools, this.#limits);
    const { runId, created } = await this.core.createRun(validated, (body as { plan: unknown }).plan);
    return { run: await this.getRun(runId), created };
  }

  async createRuns(body: unknown): Promise<{ runs: Array<{ id: string; created: boolean }> }> {
    const items = await validateBatch(body, this.tools, this.#limits);
    const out = await this.core.createRuns(items);
    return { runs: out.map((r) => ({ id: r.runId, created: r.created })) };
  }

  async getRun(id: string): Promise<RunWithSteps> {
    const run = await this.store.getRun(id);
    if (!run) throw notFound('run', id);
    if (run.stepsTotal > MAX_INLINE_STEPS) {
      const steps = await this.#shown(await this.store.getRunSteps(id, { afterIdx: -1, limit: MAX_INLINE_STEPS }));
      return { ...publicRun(run), steps: steps.map(publicStep), stepsTruncated: true };
    }
    const steps = await this.#shown(await this.store.getRunSteps(id));
    return { ...publicRun(run), steps: steps.map(publicStep) };
  }

  /** Steps as the API shows them: with what holds each back now (waiting.ts). */
  #shown(steps: StepRow[]): Promise<StepRow[]> {
    return withWaiting(this.store, steps, Date.now());
  }

  async listSteps(runId: string, afterIdx: number, limit: number): Promise<{ steps: StepRecord[]; nextAfter: number | null }> {
    const run = await this.store.getRun(runId);
    if (!run) throw notFound('run', runId);
    const steps = await this.#shown(await this.store.getRunSteps(runId, { afterIdx, limit }));
    const last = steps.at(-1);
    return { steps: steps.map(publicStep), nextAfter: last && steps.length === limit && last.idx < run.stepsTotal - 1 ? last.idx : null };
  }

  async listRuns(q: ListRunsQuery): Promise<RunPage> {
    if (q.status && !RUN_STATES.includes(q.status)) {
      throw new RunwardenError('INVALID_QUERY', `status must be one of ${RUN_STATES.join(', ')}`);
    }
    const limit = Math.min(Math.max(1, q.limit ?? 50), 500);
    const rows = await this.store.listRuns({
      limit: limit + 1,
      ...(q.status ? { status: q.status } : {}),
      ...(q.label ? { label: q.label } : {}),
      ...(q.createdAfter !== undefined ? { createdAfter: q.createdAfter } : {}),
      ...(q.createdBefore !== undefined ? { createdBefore: q.createdBefore } : {}),
      ...(q.goal ? { goal: q.goal } : {}),
      ...(q.tool ? { tool: q.tool } : {}),
      ...(q.cursor ? { before: decodeCursor(q.cursor) } : {}),
    });
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return { runs: page.map(publicRun), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
  }

  /** `POST /runs/prune`: without `olderThanMs`, the `retention` setting's. */
  async pruneRuns(req: Omit<PruneRequest, 'olderThanMs'> & { olderThanMs?: number }): Promise<PruneResult> {
    const olderThanMs = req.olderThanMs ?? this.#retentionMs;
    if (olderThanMs === undefined) {
      throw new RunwardenError('INVALID_BODY', 'say how old the runs to prune must be ({"olderThan": "30d"}); this server has no retention setting to default to', { status: 400 });
    }
    return pruneRuns(this.store, { ...req, olderThanMs });
  }

  async cancelRun(id: string): Promise<RunWithSteps> {
    const run = await this.core.cancel(id);
    if (!run) throw notFound('run', id);
    return this.getRun(id);
  }

  async signal(runId: string, name: string, payload: unknown): Promise<SignalResult> {
    const problem = signalNameProblem(name);
    if (problem !== null) throw new RunwardenError('INVALID_SIGNAL', `signal name ${problem}`);
    const out = await this.core.signal(runId, name, payload);
    if (out.kind === 'not_found') throw notFound('run', runId);
    if (out.kind === 'finished') {
      const state = out.cancelling ? 'is being cancelled' : `has finished (${out.status})`;
      throw new RunwardenError('RUN_FINISHED', `run ${runId} ${state}: no step of it can receive signal "${name}"`, { data: { status: out.status } });
    }
    if (out.kind === 'duplicate') {
      throw new RunwardenError('SIGNAL_ALREADY_SENT', `signal "${name}" was sent to run ${runId} already, at ${new Date(out.sentAt).toISOString()}; a signal is sent once per run`, {
        data: { sentAt: new Date(out.sentAt).toISOString() },
      });
    }
    return { runId, name, sentAt: new Date(out.sentAt).toISOString(), released: out.released };
  }

  async rerunRun(runId: string, from?: string[]): Promise<RunWithSteps> {
    const out = await this.core.rerun(runId, from);
    if (!out) throw notFound('run', runId);
    return this.getRun(out.runId);
  }

  async listEvents(runId: string, afterSeq: number, limit = 1000) {
    if (!(await this.store.getRun(runId))) throw notFound('run', runId);
    return this.store.listEvents(runId, Math.max(0, afterSeq), Math.min(Math.max(1, limit), 10_000));
  }

  onRunEvents(runId: string, listener: () => void): () => void {
    return this.store.subscribe((n) => {
      if (n.kind === 'events' && n.runIds.includes(runId)) listener();
    });
  }

  onRunDeltas(runId: string, listener: (delta: TextDelta) => void): () => void {
    return this.store.subscribe((n) => {
      if (n.kind === 'delta' && n.delta.runId === runId) listener(n.delta);
    });
  }

  async getStep(runId: string, name: string): Promise<StepDetail> {
    const row = await this.store.getStep(runId, name);
    if (!row) throw notFound('step', `${runId}/${name}`);
    const [step] = await this.#shown([row]);
    const attempts = await this.store.listAttempts(runId, name);
    return {
      ...publicStep(step as StepRow),
      attemptsDetail: attempts,
      hangReports: attempts.flatMap((a) => (a.hangReport ? [{ attempt: a.attempt, ...a.hangReport }] : [])),
    };
  }

  listAttempts(runId: string, name: string) {
    return this.store.listAttempts(runId, name);
  }

  async listArtifacts(runId: string) {
    if (!(await this.store.getRun(runId))) throw notFound('run', runId);
    return this.store.listArtifacts(runId);
  }

  async getArtifact(id: string) {
    const a = await this.store.getArtifact(id);
    if (!a) throw notFound('artifact', id);
    return a;
  }

  loopDelay(): { delayP50Ms: number; delayP99Ms: number; delayMaxMs: number } {
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    const h = this.#loop;
    return { delayP50Ms: ms(h.percentile(50)), delayP99Ms: ms(h.percentile(99)), delayMaxMs: ms(h.max) };
  }

  async healthDetailed(): Promise<HealthDetailed> {
    let database: HealthDetailed['database'];
    try {
      database = { ok: true, dialect: this.store.dialect, latencyMs: Math.round((await this.store.ping()) * 100) / 100 };
    } catch (err) {
      database = { ok: false, dialect: this.store.dialect, error: (err as Error).message };
    }
    // Reading is not enough: a full disk answers reads and refuses every write.
    if (database.ok) {
      try {
        await this.store.probeWrite();
        database.writable = true;
      } catch (err) {
        database = { ...database, ok: false, writable: false, error: (err as Error).message };
      }
    }
    const freeBytes = (this.store as { freeBytes?: unknown }).freeBytes;
    if (typeof freeBytes === 'number') database.freeBytes = freeBytes;
    const readable = database.ok || database.writable === false;
    const m = readable ? await this.store.migrationStatus() : { current: 0, latest: 0, pending: [] };
    const workers = readable ? await this.store.listWorkers() : [];
    const counts = readable ? await this.store.stepCounts() : null;
    const stale = workers.filter((w) => Date.now() - Date.parse(w.lastHeartbeatAt) > 10_000);
    const nextReady = readable ? await this.store.nextReadyAt() : null;
    const supervisor = this.#supervisor?.();
    const limits = readable ? await saturatedLimits(this.store, this.#providers(), Date.now()) : [];
    // A worker process stalled, being replaced or missing; one starting up is not a problem yet.
    const unhealthy = supervisor?.workers.filter((w) => w.state !== 'running' && w.state !== 'starting').length ?? 0;
    return {
      status: database.ok && m.pending.length === 0 && stale.length === 0 && unhealthy === 0 ? 'ok' : 'degraded',
      database,
      migrations: { current: m.current, latest: m.latest, pending: m.pending.length },
      workers,
      queue: { queued: counts?.queued ?? 0, running: counts?.running ?? 0, pending: counts?.pending ?? 0 },
      eventLoop: this.loopDelay(),
      providers: this.#providers(),
      oldestQueuedMs: nextReady !== null && nextReady < Date.now() ? Date.now() - nextReady : 0,
      ...(supervisor ? { supervisor } : {}),
      limits,
    };
  }

  listTools(): ToolInfo[] {
    return this.tools.info();
  }

  async stuckSteps(): Promise<StuckStep[]> {
    const now = Date.now();
    return (await this.store.stuckSteps(now)).map((s) => stuckStep(s, now));
  }

  async metrics(): Promise<string> {
    return renderMetrics({
      steps: await this.store.stepCounts(),
      runs: await this.store.runCounts(),
      workers: await this.store.listWorkers(),
      stuck: (await this.store.stuckSteps(Date.now())).length,
      reaped: this.reaped,
      loop: { ...this.loopDelay(), ...this.#loopTotals() },
      uptimeS: (Date.now() - this.startedAt) / 1000,
      ...(this.#supervisor ? { supervisor: this.#supervisor() } : {}),
      providers: await this.providerLimits(),
      saturated: await saturatedLimits(this.store, this.#providers(), Date.now()),
    }) + renderSnapshots(mergeSnapshots([snapshotProcess(), ...(this.#workerMetrics?.() ?? [])]));
  }

  /** Each named provider's limits and how full they are now, across every worker on the store. */
  async providerLimits(): Promise<ProviderLimitView[]> {
    const now = Date.now();
    return Promise.all(this.#providers().map(async (p) => ({ limits: p.limits ?? {}, state: await this.store.providerLimits.state(p.name, p.limits ?? {}, now) })));
  }

  /** Count and sum of the loop-delay samples since start, for the summary's _count and _sum. */
  #loopTotals(): { samples: number; sumS: number } {
    const h = this.#loop;
    const samples = h.count;
    return { samples, sumS: Number.isFinite(h.mean) ? (h.mean * samples) / 1e9 : 0 };
  }
}
