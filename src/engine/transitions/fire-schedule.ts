/**
 * fireSchedule: one tick of a schedule becomes one run. The schedule's compare-and-set (its next
 * tick moves on from the value the scheduler read) and the run's insert commit together, so a tick
 * either has its run or is still due; the run's idempotency key is the (schedule, tick) pair, a
 * second guard in the store's unique index.
 */
import type { ValidatedRun } from '../../domain/plan.ts';
import { SCHEDULE_LABEL, SCHEDULE_TICK_LABEL, tickKey } from '../../domain/schedule.ts';
import type { ScheduleRow } from '../../store/schedules.ts';
import type { Store, Tx } from '../../store/store.ts';
import { insertRun } from './create-run.ts';
import type { TxEffects } from './effects.ts';

export interface TickToFire {
  schedule: ScheduleRow;
  /** The next tick as the scheduler read it (the compare-and-set's expected value). */
  expectNext: number;
  tick: number;
  /** The tick after this one; null: none. */
  next: number | null;
}

/** Returns whether this transaction fired the tick (false: another process did, or the schedule is gone). */
export async function fireTick(store: Store, tx: Tx, fx: TxEffects, runId: string, t: TickToFire): Promise<boolean> {
  const s = t.schedule;
  if (!(await store.schedules.advance({ id: s.id, expectNext: t.expectNext, tick: t.tick, next: t.next, runId }))) return false;
  const base = s.run as ValidatedRun;
  const run: ValidatedRun = {
    ...base,
    labels: { ...base.labels, [SCHEDULE_LABEL]: s.id, [SCHEDULE_TICK_LABEL]: new Date(t.tick).toISOString() },
    idempotencyKey: tickKey(s.id, t.tick),
  };
  await insertRun(tx, fx, runId, run, (s.request as { plan?: unknown } | null)?.plan ?? null);
  return true;
}
