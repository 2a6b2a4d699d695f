/**
 * announceKeyWaits: the reaper's pass that says, once per wait, which queued steps their
 * concurrency key holds back (docs/flow-control.md#never-silent). A step ready to run while its key
 * has as many steps running as its limit gets a `step.waiting` event naming the key, how full it
 * is, and by when a slot frees at the latest (the earliest deadline of the key's running steps).
 * The store marks it announced; its claim clears the mark, so a later wait (after a retry) is
 * announced too. A wait shorter than the reaper's interval may end before it is seen.
 */
import type { EventData } from '../../domain/events.ts';
import type { Tx } from '../../store/store.ts';
import type { TxEffects } from './effects.ts';

export async function announceKeyWaits(tx: Tx, fx: TxEffects, limit: number): Promise<number> {
  const held = await tx.announceKeyWaits(fx.now, limit);
  for (const { step, keyRunning, nextSlotBy } of held) {
    const c = step.concurrency;
    if (!c) continue;
    const data: EventData['step.waiting'] = {
      key: c.key,
      limit: 'concurrencyKey',
      used: keyRunning,
      cap: c.limit,
      slotBy: nextSlotBy === null ? null : new Date(nextSlotBy).toISOString(),
      since: step.readyAt ?? new Date(fx.now).toISOString(),
    };
    fx.events.push({ runId: step.runId, stepName: step.name, attempt: step.attempts + 1, type: 'step.waiting', ts: fx.now, data });
  }
  return held.length;
}
