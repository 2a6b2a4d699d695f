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
  /** `at`: the time the store recorded the grant at. */
  | { granted: true; at?: number }
  | {
      granted: false;
      limit: LimitName;
      /** When asking again can succeed (epoch ms). */
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
  if (limits.requestsPerMinute !== undefined) {
    const window = windowOf(limits.requestsPerMinute);
    const { cap } = quantize(limits.requestsPerMinute);
    const recent = slots.filter((s) => s.at > now - window).map((s) => s.at).sort((a, b) => a - b);
    if (recent.length >= cap) {
      return { granted: false, limit: 'requestsPerMinute', retryAt: (recent[recent.length - cap] as number) + window, used: recent.length, cap };
    }
    const spacing = window / cap;
    const last = recent.at(-1);
    if (last !== undefined && now < last + spacing) {
      return { granted: false, limit: 'requestsPerMinute', retryAt: Math.ceil(last + spacing), used: recent.length, cap };
    }
  }
  if (limits.tokensPerMinute !== undefined) {
    const window = windowOf(limits.tokensPerMinute);
    const budget = Math.floor((limits.tokensPerMinute * quantize(limits.tokensPerMinute).windowMs) / 60_000);
    const recent = slots.filter((s) => s.at > now - window).sort((a, b) => a.at - b.at);
    let used = recent.reduce((n, s) => n + s.tokens, 0);
    // A call bigger than the whole budget goes alone, once the window is empty: never forever held.
    if (used > 0 && used + tokens > budget) {
      const total = used;
      let retryAt = now + window;
      for (const s of recent) {
        used -= s.tokens;
        if (used + tokens <= budget || used === 0) {
          retryAt = s.at + window;
          break;
        }
      }
      return { granted: false, limit: 'tokensPerMinute', retryAt, used: total, cap: budget };
    }
  }
  return { granted: true };
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
    requestsInWindow: slots.filter((s) => s.at > now - rpmWindow).length,
    tokensInWindow: slots.filter((s) => s.at > now - tpmWindow).reduce((n, s) => n + s.tokens, 0),
  };
}
