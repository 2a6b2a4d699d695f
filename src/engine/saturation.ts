/**
 * The limits that hold work back now (docs/flow-control.md#never-silent), for `runwarden doctor`,
 * `GET /health/detailed` and /metrics: each provider limit that is full or has steps waiting at its
 * gate, and each concurrency key at its limit with ready steps queued behind it. Read from the store,
 * so it is the same whichever process asks.
 */
import { quantize } from '../domain/quota.ts';
import type { LimitName, ProviderLimits } from '../flow/slots.ts';
import type { Store } from '../store/store.ts';

export interface SaturatedLimit {
  kind: 'provider' | 'concurrency';
  /** The provider's name, or the concurrency key. */
  name: string;
  /** Which of the provider's limits (`paused` after a 429/529); `key` for a concurrency key. */
  limit: LimitName | 'key';
  /** How full: calls in flight, requests or tokens in the window, running steps of the key. */
  used: number;
  cap: number;
  /** Steps held back by it now. */
  waiting: number;
  /** When a slot is expected (a provider), or by when one frees at the latest (a key: the earliest deadline of its running steps). */
  nextSlotAt: string | null;
}

export interface NamedProvider {
  name: string;
  limits?: ProviderLimits;
}

type SaturationStore = Pick<Store, 'saturatedKeys' | 'capacityWaiters' | 'providerLimits'>;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export async function saturatedLimits(store: SaturationStore, providers: readonly NamedProvider[], now: number): Promise<SaturatedLimit[]> {
  const out: SaturatedLimit[] = [];
  const byLimit = new Map<string, SaturatedLimit>();
  const entry = (name: string, limit: LimitName, used: number, cap: number, nextSlotAt: string | null): SaturatedLimit => {
    const k = `${name}\u0000${limit}`;
    let e = byLimit.get(k);
    if (!e) {
      e = { kind: 'provider', name, limit, used, cap, waiting: 0, nextSlotAt };
      byLimit.set(k, e);
      out.push(e);
    }
    return e;
  };
  for (const p of providers) {
    const limits = p.limits ?? {};
    const s = await store.providerLimits.state(p.name, limits, now);
    if (s.pausedUntil > now) entry(p.name, 'paused', 0, 0, iso(s.pausedUntil));
    if (limits.concurrency !== undefined && s.inFlight >= limits.concurrency) entry(p.name, 'concurrency', s.inFlight, limits.concurrency, null);
    if (limits.requestsPerMinute !== undefined) {
      const cap = quantize(limits.requestsPerMinute).cap;
      if (s.requestsInWindow >= cap) entry(p.name, 'requestsPerMinute', s.requestsInWindow, cap, null);
    }
    if (limits.tokensPerMinute !== undefined) {
      const q = quantize(limits.tokensPerMinute);
      const budget = Math.floor((limits.tokensPerMinute * q.windowMs) / 60_000);
      if (s.tokensInWindow >= budget) entry(p.name, 'tokensPerMinute', s.tokensInWindow, budget, null);
    }
  }
  // What the workers say their steps wait for: the limit as each last saw it.
  for (const step of await store.capacityWaiters()) {
    const w = step.waitingFor;
    if (w?.kind !== 'provider' || w.attempt !== step.attempts) continue;
    const e = entry(w.provider, w.limit, w.used, w.cap, w.nextSlotAt);
    e.waiting++;
    if (e.nextSlotAt === null || w.nextSlotAt < e.nextSlotAt) e.nextSlotAt = w.nextSlotAt;
  }
  for (const k of await store.saturatedKeys(now)) {
    out.push({ kind: 'concurrency', name: k.key, limit: 'key', used: k.running, cap: k.limit, waiting: k.waiting, nextSlotAt: iso(k.nextSlotBy) });
  }
  return out;
}

/** One line for a person: `provider quota: requestsPerMinute 20 of 20, 12 steps waiting, next slot expected at ...`. */
export function describeSaturated(l: SaturatedLimit): string {
  const waiting = `${l.waiting} step${l.waiting === 1 ? '' : 's'} waiting`;
  if (l.kind === 'concurrency') {
    return `concurrency key ${l.name}: ${l.used} of ${l.cap} running, ${waiting}${l.nextSlotAt ? `, a slot frees by ${l.nextSlotAt} at the latest` : ''}`;
  }
  if (l.limit === 'paused') return `provider ${l.name}: paused after a 429/529 until ${l.nextSlotAt ?? '?'}, ${waiting}`;
  return `provider ${l.name}: ${l.limit} ${l.used} of ${l.cap}, ${waiting}${l.nextSlotAt ? `, next slot expected at ${l.nextSlotAt}` : ''}`;
}
