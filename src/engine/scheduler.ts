/**
 * The scheduler (docs/schedules.md): every API process (`runwarden start`, startRuntime) and every
 * worker host (`runwarden worker`) runs one, so ticks fire while any of them lives. They do not
 * elect a leader: each wakes at the earliest next tick (at least every `pollMs`, to see schedules
 * other processes created), reads the due schedules and fires their ticks through
 * `Transitions.fireSchedule`, whose compare-and-set lets exactly one process fire each tick. The
 * others find the schedule moved on and fire nothing. Which ticks a pass fires: `planTicks`
 * (domain/schedule.ts): every late tick, or the most recent one after an outage.
 */
import { CronSchedule, planTicks } from '../domain/schedule.ts';
import type { ScheduleRow } from '../store/schedules.ts';
import type { Transitions } from './transitions.ts';

/** How often a scheduler with nothing due reads the schedules again. */
export const SCHEDULER_POLL_MS = 1000;
/** Due schedules read per query; a full page is followed by another pass at once. */
const DUE_PAGE = 100;

export interface SchedulerOptions {
  log: (line: string) => void;
  /** @default SCHEDULER_POLL_MS */
  pollMs?: number;
  /** The clock deciding which ticks are due (tests pin it). @default Date.now */
  now?: () => number;
  /** No loop: passes only when `pass()` is called (tests). @default false */
  manual?: boolean;
  /** Called with the id of every run this scheduler created. */
  onFired?: (runId: string, schedule: ScheduleRow, tick: number) => void;
}

export interface Scheduler {
  /** One pass now (tests; the loop calls it itself): the runs this process created. */
  pass(): Promise<string[]>;
  stop(): Promise<void>;
}

/** Starts the loop. A failed pass (database down) is logged once until a pass succeeds again. */
export function startScheduler(core: Transitions, o: SchedulerOptions): Scheduler {
  const now = o.now ?? Date.now;
  const pollMs = o.pollMs ?? SCHEDULER_POLL_MS;
  const store = core.store;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;
  let failing = false;
  /** Schedules whose cron this process could not read, logged once each. */
  const unreadable = new Set<string>();

  async function fireDue(row: ScheduleRow, at: number, created: string[]): Promise<void> {
    if (row.nextTickAt === null) return;
    let s: CronSchedule;
    try {
      s = new CronSchedule(row.cron, row.timezone);
    } catch (err) {
      // Checked when the schedule was created; a runtime that lost the zone (another ICU) cannot.
      if (!unreadable.has(row.id)) o.log(`scheduler: schedule ${row.id} cannot be read here (${(err as Error).message}); leaving it to other processes`);
      unreadable.add(row.id);
      return;
    }
    const plan = planTicks(s, row.nextTickAt, at);
    let expectNext = row.nextTickAt;
    for (const [i, tick] of plan.fire.entries()) {
      const next = s.next(tick);
      const runId = await core.fireSchedule({ schedule: row, expectNext, tick, next });
      // Another process fired this tick first: it goes on from there; this one stops here.
      if (runId === null) return;
      if (i === 0 && plan.skipped) {
        o.log(`scheduler: schedule ${row.id} missed its ticks from ${new Date(expectNext).toISOString()} while no scheduler ran; fired only the most recent, ${new Date(tick).toISOString()} (run ${runId})`);
      }
      created.push(runId);
      o.onFired?.(runId, row, tick);
      if (next === null) return;
      expectNext = next;
    }
  }

  async function pass(): Promise<string[]> {
    const created: string[] = [];
    const at = now();
    const due = await store.schedules.due(at, DUE_PAGE);
    for (const row of due) await fireDue(row, at, created);
    return created;
  }

  async function loop(): Promise<void> {
    let delay = pollMs;
    try {
      const fired = await pass();
      if (failing) o.log('scheduler: passes succeed again');
      failing = false;
      const next = await store.schedules.nextTickAt();
      if (next !== null) {
        const wait = next - now();
        // Still due after a pass: more than a page (at once), or a tick another process is firing
        // or this one cannot read (soon, not in a spin).
        delay = wait > 0 ? Math.min(pollMs, wait) : fired.length > 0 ? 0 : Math.min(pollMs, 250);
      }
    } catch (err) {
      if (!failing) o.log(`scheduler: a pass failed, retrying every ${pollMs} ms: ${(err as Error).message}`);
      failing = true;
    }
    if (!stopped) {
      timer = setTimeout(tick, delay);
      timer.unref();
    }
  }

  function tick(): void {
    timer = undefined;
    running = loop().finally(() => (running = undefined));
  }

  if (!o.manual) tick();
  return {
    async pass() {
      // Not alongside the loop's own pass: wait for it, then run one.
      await running;
      return pass();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
