/**
 * Provider limits, decided once for both stores (docs/flow-control.md#provider-limits): whether a
 * call may go now, given the calls granted lately, or when to ask again. A store takes the
 * provider's row lock, reads the recent slots, asks `decide`, and records the grant, all in one
 * transaction, so every worker on the store sees the same counts.
 *
 * Per-minute limits are held per second, as providers enforce them (src/domain/quota.ts), over a
 * window `MARGIN_MS` longer than theirs: a call is counted from when it is sent (its grant, moved
 * to the send by the gate), the provider counts it when it arrives, and arrivals of one second's
 * calls may bunch up by the network's and the event loops' jitter.
 *
 * Calls are also spread evenly over the window (one every `(window + margin) / cap` ms) rather
 * than sent in a burst at its start: a burst's calls leave one after another from each worker's
 * event loop, its last ones late, and the next window's first ones, sent on a quiet loop, would
 * arrive close behind them. Spread, every call leaves at about the same delay.
 */
import { quantize } from '../domain/quota.ts';

export const MARGIN_MS = 100;
/** A full concurrency limit is asked about again this often (a slot frees when a call ends). */
export const CONCURRENCY_POLL_MS = 100;
/**
 * A call held by a per-minute limit is granted its slot up to this long before the slot's time,
 * and waits for it at the gate: the store's round trips (and the gate's own wake-up) overlap the
 * wait instead of adding to every spacing between two calls.
 */
export const RESERVE_AHEAD_MS = 150;

export interface ProviderLimits {
  concurrency?: number;
  requestsPerMinute?: number;
  tokensPerMinute?: number;
}

export type LimitName = 'paused' | 'concurrency' | 'requestsPerMinute' | 'tokensPerMinute';

export interface SlotRow {
  at: number;
  tokens: number;
  /** A call in flight holds its concurrency slot until then; null once it ended. */
  until: number | null;
}

export interface SlotRequest {
  /** The provider's name. */
  name: string;
  limits: ProviderLimits;
  /** A fresh id for the grant (released by it). */
  id: string;
  /** Tokens to charge now: the estimate. */
  tokens: number;
  /** The caller's time; the store decides at this or its own later time, read once it holds the provider's row. */
  now: number;
  /** When the concurrency slot lapses if the call is never released (its worker died). */
  leaseUntil: number;
}

export type SlotAnswer =
  /** `at`: the time the store recorded the grant at, the call's send time: now, or up to RESERVE_AHEAD_MS later. */
  | { granted: true; at?: number }
  | {
      granted: false;
      limit: LimitName;
      /** When a slot is expected (epoch ms); for a per-minute limit, asking RESERVE_AHEAD_MS before can succeed. */
      retryAt: number;
      /** How full the limit is: in flight, requests or tokens in the window (0 for a pause). */
      used: number;
      cap: number;
    };

/** The slots a decision must see: those in the widest window, and those still in flight. */
export function windowStart(limits: ProviderLimits, now: number): number {
  return now - widestWindow(limits);
}

function windowOf(perMinute: number): number {
  return quantize(perMinute).windowMs + MARGIN_MS;
}

function widestWindow(limits: ProviderLimits): number {
  return Math.max(limits.requestsPerMinute ? windowOf(limits.requestsPerMinute) : 0, limits.tokensPerMinute ? windowOf(limits.tokensPerMinute) : 0);
}

export function decide(limits: ProviderLimits, pausedUntil: number, slots: readonly SlotRow[], tokens: number, now: number): SlotAnswer {
  if (pausedUntil > now) return { granted: false, limit: 'paused', retryAt: pausedUntil, used: 0, cap: 0 };
  if (limits.concurrency !== undefined) {
    const inFlight = slots.filter((s) => s.until !== null && s.until > now);
    if (inFlight.length >= limits.concurrency) {
      const lapse = Math.min(...inFlight.map((s) => s.until as number));
      return { granted: false, limit: 'concurrency', retryAt: Math.min(lapse, now + CONCURRENCY_POLL_MS), used: inFlight.length, cap: limits.concurrency };
    }
  }
  const next = earliest(limits, slots, tokens, now);
  if (next.at <= now + RESERVE_AHEAD_MS) return { granted: true, at: next.at };
  return { granted: false, limit: next.limit, retryAt: next.at, used: next.used, cap: next.cap };
}

/**
 * The earliest time at or after `now` a call of `tokens` may be sent under the per-minute limits,
 * and the limit that set it. It is never before a slot already granted: the new slot is the
 * latest, so a window that holds it and is within its caps when it ends at the slot's time is
 * within them for as long as it holds it (later windows only lose slots).
 */
function earliest(limits: ProviderLimits, slots: readonly SlotRow[], tokens: number, now: number): { at: number; limit: LimitName; used: number; cap: number } {
  const rpm = limits.requestsPerMinute;
  const tpm = limits.tokensPerMinute;
  if (rpm === undefined && tpm === undefined) return { at: now, limit: 'requestsPerMinute', used: 0, cap: 0 };
  const sorted = [...slots].sort((a, b) => a.at - b.at);
  let at = Math.max(now, sorted.at(-1)?.at ?? now);
  let by: { limit: LimitName; used: number; cap: number } = { limit: 'requestsPerMinute', used: 0, cap: 0 };
  // Each rule only moves `at` later, and a later `at` never breaks a rule already met. The spacing
  // moves it once (the last slot is fixed), the caps past at least one slot each time: this ends.
  for (let round = 0; round <= sorted.length + 2; round++) {
    const before = at;
    if (rpm !== undefined) {
      const window = windowOf(rpm);
      const { cap } = quantize(rpm);
      const recent = sorted.filter((s) => s.at > at - window);
      if (recent.length >= cap) at = Math.max(at, (recent[recent.length - cap] as SlotRow).at + window);
      const last = sorted.at(-1);
      if (last !== undefined) at = Math.max(at, Math.ceil(last.at + window / cap));
      if (at !== before) by = { limit: 'requestsPerMinute', used: sentWithin(sorted, now, window).length, cap };
    }
    if (tpm !== undefined) {
      const window = windowOf(tpm);
      const budget = Math.floor((tpm * quantize(tpm).windowMs) / 60_000);
      const recent = sorted.filter((s) => s.at > at - window);
      let used = recent.reduce((n, s) => n + s.tokens, 0);
      // A call bigger than the whole budget goes alone, once the window is empty: never forever held.
      if (used > 0 && used + tokens > budget) {
        const from = at;
        for (const s of recent) {
          used -= s.tokens;
          if (used + tokens <= budget || used === 0) {
            at = Math.max(at, s.at + window);
            break;
          }
        }
        if (at !== from) by = { limit: 'tokensPerMinute', used: sentWithin(sorted, now, window).reduce((n, s) => n + s.tokens, 0), cap: budget };
      }
    }
    if (at === before) break;
  }
  return { at, ...by };
}

/** The slots of the window that ends now: a slot granted ahead of its time counts from its time. */
function sentWithin(slots: readonly SlotRow[], now: number, window: number): SlotRow[] {
  return slots.filter((s) => s.at > now - window && s.at <= now);
}

/** How full each limit of a provider is now (for /metrics, doctor and waiting steps). */
export interface LimitState {
  name: string;
  pausedUntil: number;
  inFlight: number;
  requestsInWindow: number;
  tokensInWindow: number;
}

export function stateOf(name: string, limits: ProviderLimits, pausedUntil: number, slots: readonly SlotRow[], now: number): LimitState {
  const rpmWindow = limits.requestsPerMinute ? windowOf(limits.requestsPerMinute) : 1000 + MARGIN_MS;
  const tpmWindow = limits.tokensPerMinute ? windowOf(limits.tokensPerMinute) : 1000 + MARGIN_MS;
  return {
    name,
    pausedUntil,
    inFlight: slots.filter((s) => s.until !== null && s.until > now).length,
    requestsInWindow: sentWithin(slots, now, rpmWindow).length,
    tokensInWindow: sentWithin(slots, now, tpmWindow).reduce((n, s) => n + s.tokens, 0),
  };
}
