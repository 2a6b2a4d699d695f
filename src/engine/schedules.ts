/**
 * `POST/GET/DELETE /schedules` (docs/schedules.md): a request checked (cron, time zone, and the
 * plan as `POST /runs` checks it), stored with its validated run and its first tick; reads as
 * ScheduleRecords. Firing ticks is the scheduler's (scheduler.ts).
 */
import { z } from 'zod';
import { notFound, RunwardenError, type ErrorDetail } from '../domain/errors.ts';
import { validateRunRequest, type PlanLimits, type ToolCatalog } from '../domain/plan.ts';
import { DEFAULT_TIMEZONE, parseSchedule, SCHEDULE_LABEL, SCHEDULE_TICK_LABEL, type ScheduleRecord } from '../domain/schedule.ts';
import type { ScheduleRow } from '../store/schedules.ts';
import type { Store } from '../store/store.ts';
import { newRunId } from './ids.ts';

/** A run request (plan, labels, maxSteps, priority, concurrency: plan.ts checks those) plus when. */
const bodySchema = z.looseObject({
  cron: z.string().min(1).max(200),
  timezone: z.string().min(1).max(100).optional(),
});

const BODY_HELP = 'the body must be {"cron": "*/5 * * * *", "timezone"?: "Europe/Oslo", "plan": {...}, "labels"?: {...}} (and the other fields of a run request but idempotencyKey)';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function publicSchedule(r: ScheduleRow): ScheduleRecord {
  const req = (r.request ?? {}) as { plan?: unknown; maxSteps?: number; priority?: number; concurrency?: { key: string; limit: number } };
  return {
    id: r.id,
    cron: r.cron,
    timezone: r.timezone,
    plan: req.plan ?? null,
    labels: r.labels,
    maxSteps: req.maxSteps ?? null,
    ...(req.priority !== undefined ? { priority: req.priority } : {}),
    ...(req.concurrency !== undefined ? { concurrency: req.concurrency } : {}),
    createdAt: new Date(r.createdAt).toISOString(),
    nextTickAt: iso(r.nextTickAt),
    lastTickAt: iso(r.lastTickAt),
    lastRunId: r.lastRunId,
    runsCreated: r.runsCreated,
  };
}

export class Schedules {
  readonly #store: Store;
  readonly #tools: ToolCatalog;
  readonly #limits: PlanLimits;
  readonly #now: () => number;

  constructor(o: { store: Store; tools: ToolCatalog; limits: PlanLimits; now?: () => number }) {
    this.#store = o.store;
    this.#tools = o.tools;
    this.#limits = o.limits;
    this.#now = o.now ?? Date.now;
  }

  /** INVALID_BODY, CRON_INVALID, TIMEZONE_UNKNOWN or PLAN_INVALID (all 400), else the new schedule. */
  async create(body: unknown): Promise<ScheduleRecord> {
    const parsed = bodySchema.safeParse(body);
    if (!parsed.success) {
      throw new RunwardenError(
        'INVALID_BODY',
        BODY_HELP,
        { details: parsed.error.issues.map((i) => ({ code: i.code === 'unrecognized_keys' ? 'UNKNOWN_FIELD' : 'INVALID_FIELD', path: i.path.map(String).join('.'), message: i.message })) },
      );
    }
    const { cron, timezone, ...request } = parsed.data;
    if (request.plan === undefined) throw new RunwardenError('INVALID_BODY', BODY_HELP, { details: [{ code: 'MISSING_FIELD', path: 'plan', message: 'a schedule needs the plan of its runs' }] });
    if (request.idempotencyKey !== undefined) {
      throw new RunwardenError('INVALID_BODY', BODY_HELP, { details: [{ code: 'UNKNOWN_FIELD', path: 'idempotencyKey', message: "each tick's run gets its own: schedule:<id>:<tick>" }] });
    }
    const now = this.#now();
    const schedule = parseSchedule(cron, timezone ?? DEFAULT_TIMEZONE, now);
    const run = await validateRunRequest(request, this.#tools, this.#limits);
    const reserved: ErrorDetail[] = [SCHEDULE_LABEL, SCHEDULE_TICK_LABEL]
      .filter((k) => Object.hasOwn(run.labels, k))
      .map((k) => ({ code: 'RESERVED_LABEL', path: `labels.${k}`, message: `the schedule sets "${k}" on the runs it creates` }));
    if (reserved.length > 0) throw new RunwardenError('PLAN_INVALID', 'labels use a key the schedule sets itself', { details: reserved });
    const id = newRunId();
    await this.#store.schedules.insert({
      id,
      cron: schedule.cron,
      timezone: schedule.timezone,
      request,
      run,
      labels: run.labels,
      createdAt: now,
      nextTickAt: schedule.next(now),
    });
    return this.get(id);
  }

  async list(): Promise<ScheduleRecord[]> {
    return (await this.#store.schedules.list()).map(publicSchedule);
  }

  async get(id: string): Promise<ScheduleRecord> {
    const row = await this.#store.schedules.get(id);
    if (!row) throw notFound('schedule', id);
    return publicSchedule(row);
  }

  /** Deletes the schedule (no tick fires after this returns); the runs it created stay. Returns it as it was. */
  async delete(id: string): Promise<ScheduleRecord> {
    const row = await this.#store.schedules.get(id);
    if (!row || !(await this.#store.schedules.delete(id))) throw notFound('schedule', id);
    return publicSchedule(row);
  }
}
