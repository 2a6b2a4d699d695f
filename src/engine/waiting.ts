/**
 * What holds a step back, for the API's step views (docs/flow-control.md#waiting-for-capacity):
 * - a running step whose attempt waits at a provider's gate: what its worker last wrote (every
 *   heartbeat while it waits; an older attempt's note is not shown);
 * - a queued, ready step whose concurrency key has as many steps running as its limit: counted now.
 * Any other step waits for nothing that a limit explains (`waitingFor: null`).
 */
import type { WaitingFor } from '../domain/records.ts';
import type { StepRow, Store } from '../store/store.ts';

export async function withWaiting(store: Pick<Store, 'runningByKey'>, steps: readonly StepRow[], now: number): Promise<StepRow[]> {
  const held = steps.filter((s) => s.status === 'queued' && s.concurrency !== null && s.readyAt !== null && Date.parse(s.readyAt) <= now);
  const keys = [...new Set(held.map((s) => s.concurrency?.key as string))];
  const running = new Map((await store.runningByKey(keys)).map((k) => [k.key, k]));
  return steps.map((s) => {
    const waitingFor = waitingOf(s, running, now);
    return waitingFor === s.waitingFor ? s : { ...s, waitingFor };
  });
}

function waitingOf(s: StepRow, running: ReadonlyMap<string, { running: number; nextSlotBy: number | null }>, now: number): WaitingFor | null {
  if (s.status === 'running') return s.waitingFor?.kind === 'provider' && s.waitingFor.attempt === s.attempts ? s.waitingFor : null;
  if (s.status !== 'queued' || !s.concurrency || s.readyAt === null || Date.parse(s.readyAt) > now) return null;
  const k = running.get(s.concurrency.key);
  if (!k || k.running < s.concurrency.limit) return null;
  return {
    kind: 'concurrency',
    key: s.concurrency.key,
    used: k.running,
    cap: s.concurrency.limit,
    nextSlotBy: k.nextSlotBy === null ? null : new Date(k.nextSlotBy).toISOString(),
    since: s.readyAt,
  };
}
