/**
 * The schedules table (migration 6, docs/schedules.md), written once for both dialects like
 * reads.ts: `$1, $2 ...` placeholders, which the SQLite store rewrites. Each store builds one with
 * its own statement runner; called inside `store.transaction(fn)`, a statement is part of that
 * transaction (both stores route it there), which is how a tick's compare-and-set commits with the
 * run it creates.
 */
type Row = Record<string, unknown>;
type Rows = (sql: string, params: unknown[]) => Promise<Row[]>;

export interface NewSchedule {
  id: string;
  cron: string;
  timezone: string;
  /** The request as given (plan, labels, maxSteps). */
  request: unknown;
  /** The validated run every tick inserts (plain JSON). */
  run: unknown;
  labels: Record<string, string>;
  createdAt: number;
  /** Epoch ms; null: the expression matches no later time. */
  nextTickAt: number | null;
}

export interface ScheduleRow extends NewSchedule {
  lastTickAt: number | null;
  lastRunId: string | null;
  runsCreated: number;
}

/** One fired tick: the schedule moves on from `expectNext` (as read) to `next`. */
export interface ScheduleAdvance {
  id: string;
  expectNext: number;
  tick: number;
  next: number | null;
  runId: string;
}

export interface ScheduleStore {
  insert(s: NewSchedule): Promise<void>;
  get(id: string): Promise<ScheduleRow | null>;
  /** Oldest first. */
  list(): Promise<ScheduleRow[]>;
  /** Whether it existed. The runs it created stay. */
  delete(id: string): Promise<boolean>;
  /** Schedules whose next tick is at or before `now`, soonest first, at most `limit`. */
  due(now: number, limit: number): Promise<ScheduleRow[]>;
  /** The earliest next tick of any schedule, or null. */
  nextTickAt(): Promise<number | null>;
  /**
   * The compare-and-set that fires a tick: applies only while the schedule's next tick is still
   * `expectNext` (no other process fired it first, and it was not deleted). Call it inside the
   * transaction that inserts the tick's run. PostgreSQL: a second transaction doing the same waits
   * for the first one's row lock, then finds the row moved on and applies nothing.
   */
  advance(a: ScheduleAdvance): Promise<boolean>;
}

const json = <T>(v: unknown, fallback: T): T => (typeof v === 'string' ? (JSON.parse(v) as T) : fallback);
const msOrNull = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function toSchedule(r: Row): ScheduleRow {
  return {
    id: r.id as string,
    cron: r.cron as string,
    timezone: r.timezone as string,
    request: json(r.request, null),
    run: json(r.run, null),
    labels: json(r.labels, {}),
    createdAt: Number(r.created_at),
    nextTickAt: msOrNull(r.next_tick_at),
    lastTickAt: msOrNull(r.last_tick_at),
    lastRunId: (r.last_run_id as string | null) ?? null,
    runsCreated: Number(r.runs_created ?? 0),
  };
}

export class ScheduleTable implements ScheduleStore {
  readonly #rows: Rows;

  constructor(rows: Rows) {
    this.#rows = rows;
  }

  async insert(s: NewSchedule): Promise<void> {
    await this.#rows(
      `INSERT INTO schedules (id, cron, timezone, request, run, labels, created_at, next_tick_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [s.id, s.cron, s.timezone, JSON.stringify(s.request), JSON.stringify(s.run), JSON.stringify(s.labels), s.createdAt, s.nextTickAt],
    );
  }

  async get(id: string): Promise<ScheduleRow | null> {
    const [r] = await this.#rows('SELECT * FROM schedules WHERE id = $1', [id]);
    return r ? toSchedule(r) : null;
  }

  async list(): Promise<ScheduleRow[]> {
    return (await this.#rows('SELECT * FROM schedules ORDER BY created_at, id', [])).map(toSchedule);
  }

  async delete(id: string): Promise<boolean> {
    return (await this.#rows('DELETE FROM schedules WHERE id = $1 RETURNING id', [id])).length === 1;
  }

  async due(now: number, limit: number): Promise<ScheduleRow[]> {
    return (await this.#rows('SELECT * FROM schedules WHERE next_tick_at IS NOT NULL AND next_tick_at <= $1 ORDER BY next_tick_at LIMIT $2', [now, limit])).map(toSchedule);
  }

  async nextTickAt(): Promise<number | null> {
    const [r] = await this.#rows('SELECT min(next_tick_at) AS t FROM schedules', []);
    return msOrNull(r?.t);
  }

  async advance(a: ScheduleAdvance): Promise<boolean> {
    const rows = await this.#rows(
      `UPDATE schedules SET next_tick_at = $3, last_tick_at = $4, last_run_id = $5, runs_created = runs_created + 1
       WHERE id = $1 AND next_tick_at = $2 RETURNING id`,
      [a.id, a.expectNext, a.next, a.tick, a.runId],
    );
    return rows.length === 1;
  }
}
