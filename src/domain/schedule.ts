/**
 * Schedules (docs/schedules.md): a cron expression read in an IANA time zone, and the rule that
 * says which ticks a pass of the scheduler fires. Cron parsing, time zones and daylight saving are
 * croner's (zero dependencies; 5 or 6 fields; see docs/schedules.md for why croner over cron-parser).
 *
 * Everything here is pure: times are epoch ms, and the clock is passed in.
 */
import { Cron } from 'croner';
import { RunwardenError } from './errors.ts';

/**
 * How late the oldest unfired tick may be for a pass to still fire every tick since (a scheduler
 * that was slow, or a process replaced, loses none). Past this, nothing ran the scheduler for a
 * while (every process down), and only the most recent missed tick is fired.
 */
export const SCHEDULE_LATE_MS = 10_000;

/** The most ticks of one schedule a pass fires (a per-second schedule 10 s late: 11). */
export const MAX_TICKS_PER_PASS = 100;

/** The time zone a schedule without one uses. */
export const DEFAULT_TIMEZONE = 'UTC';

/** Label keys the scheduler sets on the runs it creates. */
export const SCHEDULE_LABEL = 'schedule';
export const SCHEDULE_TICK_LABEL = 'scheduleTick';

/** The idempotency key of the run of one tick: one run per (schedule, tick), in every store. */
export const tickKey = (scheduleId: string, tick: number): string => `schedule:${scheduleId}:${new Date(tick).toISOString()}`;

/** An IANA zone name as the runtime spells it (`europe/oslo` -> `Europe/Oslo`), or TIMEZONE_UNKNOWN. */
export function canonicalTimezone(tz: string): string {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: tz }).resolvedOptions().timeZone;
  } catch {
    throw new RunwardenError('TIMEZONE_UNKNOWN', `unknown time zone ${JSON.stringify(tz)}: use an IANA name such as "UTC", "Europe/Oslo" or "America/New_York"`, {
      details: [{ code: 'TIMEZONE_UNKNOWN', path: 'timezone', message: `not an IANA time zone: ${JSON.stringify(tz)}` }],
    });
  }
}

/** A parsed schedule: where its ticks fall. */
export class CronSchedule {
  readonly cron: string;
  readonly timezone: string;
  readonly #c: Cron;

  constructor(cron: string, timezone: string) {
    this.cron = cron;
    this.timezone = timezone;
    this.#c = new Cron(cron, { mode: '5-or-6-parts', timezone, paused: true });
  }

  /** The first tick strictly after `after`, or null when there is none (`0 0 30 2 *`). */
  next(after: number): number | null {
    return this.#c.nextRun(new Date(after))?.getTime() ?? null;
  }

  /** The latest tick at or before `at`, or null. */
  latest(at: number): number | null {
    // previousRuns is strictly before its reference, to the second: 1 ms later includes `at`.
    return this.#c.previousRuns(1, new Date(at + 1))[0]?.getTime() ?? null;
  }
}

/**
 * Checks a cron expression and a time zone (CRON_INVALID, TIMEZONE_UNKNOWN, both 400) and
 * returns the schedule with its zone canonical. A valid expression that never fires
 * (`0 0 30 2 *`) is refused too.
 */
export function parseSchedule(cron: string, timezone: string, now: number): CronSchedule {
  const tz = canonicalTimezone(timezone);
  const expr = cron.trim().replace(/\s+/g, ' ');
  let s: CronSchedule;
  try {
    s = new CronSchedule(expr, tz);
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replace(/^CronPattern: /, '');
    throw new RunwardenError('CRON_INVALID', `cron ${JSON.stringify(cron)} is not valid: ${why}`, {
      details: [{ code: 'CRON_INVALID', path: 'cron', message: `5 fields (minute hour day month weekday) or 6 (seconds first): ${why}` }],
    });
  }
  if (s.next(now) === null) {
    throw new RunwardenError('CRON_INVALID', `cron ${JSON.stringify(cron)} never fires`, { details: [{ code: 'CRON_NEVER', path: 'cron', message: 'no time matches this expression' }] });
  }
  return s;
}

/** What one pass does with one schedule whose next tick is due. */
export interface TickPlan {
  /** The ticks to fire, oldest first (each its own transaction). */
  fire: number[];
  /** Whether ticks before the one fired were missed (the oldest more than SCHEDULE_LATE_MS old) and skipped. */
  skipped: boolean;
}

/**
 * The catch-up rule. `due` is the schedule's next tick as stored: the oldest tick not fired yet.
 * When it is at most `lateMs` old, every tick from it up to `now` is fired, oldest first. When it
 * is older, the scheduler did not run for a while (every process down): only the most recent
 * missed tick is fired, once; an outage gives one run, not a burst.
 */
export function planTicks(s: CronSchedule, due: number, now: number, lateMs = SCHEDULE_LATE_MS): TickPlan {
  if (due > now) return { fire: [], skipped: false };
  if (now - due <= lateMs) {
    const fire: number[] = [];
    // `next(t - 1)` is the first tick at or after t (ticks fall on whole seconds).
    for (let t = s.next(due - 1); t !== null && t <= now && fire.length < MAX_TICKS_PER_PASS; t = s.next(t)) fire.push(t);
    return { fire, skipped: false };
  }
  const latest = s.latest(now);
  if (latest === null || latest < due) return { fire: [], skipped: false };
  return { fire: [latest], skipped: latest > due };
}

/** A schedule as the API shows it (`GET /schedules`). Times are ISO 8601. */
export interface ScheduleRecord {
  id: string;
  /** As stored: whitespace collapsed. */
  cron: string;
  /** IANA name, canonical spelling. */
  timezone: string;
  /** The plan each tick's run gets. */
  plan: unknown;
  /** Labels each tick's run gets (with `schedule` and `scheduleTick` added). */
  labels: Record<string, string>;
  /** The runs' maxSteps as the request gave it; null: the default. */
  maxSteps: number | null;
  /** The runs' priority and concurrency (docs/flow-control.md), when the request gave them. */
  priority?: number;
  concurrency?: { key: string; limit: number };
  createdAt: string;
  /** The next tick to fire; null when the expression matches no later time. */
  nextTickAt: string | null;
  /** The last tick fired, and the run it created. */
  lastTickAt: string | null;
  lastRunId: string | null;
  /** Runs created by this schedule so far. */
  runsCreated: number;
}
