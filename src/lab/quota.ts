/**
 * The quotas of the lab's `quota` mode: per key, the requests and tokens served in the current
 * window (see src/domain/quota.ts for how a per-minute figure becomes one) and the requests in
 * flight. A request over any of them is refused; a refused request uses none of the quota.
 */
import { quantize } from '../domain/quota.ts';

export interface QuotaLimits {
  rpm?: number;
  tpm?: number;
  concurrency?: number;
}

/** Why a request was refused and when trying again can succeed (ms from now; 0: when a request in flight ends). */
export interface QuotaRefusal {
  limit: 'rpm' | 'tpm' | 'concurrency';
  retryAfterMs: number;
}

interface Served {
  at: number;
  tokens: number;
}

// Keys past this are reset rather than grown without bound, as the counters of state.ts are.
const MAX_KEYS = 10_000;

class KeyQuota {
  served: Served[] = [];
  inFlight = 0;

  /** Drops what has left the widest window any limit of this key uses. */
  trim(now: number, widestMs: number): void {
    let drop = 0;
    while (drop < this.served.length && (this.served[drop] as Served).at <= now - widestMs) drop++;
    if (drop > 0) this.served.splice(0, drop);
  }

  /** What was served within the last `windowMs`, oldest first. */
  inWindow(now: number, windowMs: number): Served[] {
    return this.served.filter((s) => s.at > now - windowMs);
  }
}

export class Quotas {
  readonly #keys = new Map<string, KeyQuota>();

  /** Takes one request of `tokens` for `key` if every limit has room; else says which is full. */
  take(key: string, limits: QuotaLimits, tokens: number, now: number): QuotaRefusal | { release: () => void } {
    let q = this.#keys.get(key);
    if (!q) {
      if (this.#keys.size >= MAX_KEYS) this.#keys.clear();
      q = new KeyQuota();
      this.#keys.set(key, q);
    }
    const rpm = limits.rpm === undefined ? undefined : quantize(limits.rpm);
    const tpm = limits.tpm === undefined ? undefined : quantize(limits.tpm);
    q.trim(now, Math.max(rpm?.windowMs ?? 0, tpm?.windowMs ?? 0));
    if (limits.concurrency !== undefined && q.inFlight >= limits.concurrency) return { limit: 'concurrency', retryAfterMs: 0 };
    if (rpm) {
      const recent = q.inWindow(now, rpm.windowMs);
      if (recent.length >= rpm.cap) {
        const freeing = recent[recent.length - rpm.cap] as Served;
        return { limit: 'rpm', retryAfterMs: freeing.at + rpm.windowMs - now };
      }
    }
    if (tpm) {
      // tpm per window: tpm / 60 tokens a second (tpm * windowMs / 60,000 for slow limits).
      const budget = Math.floor((limits.tpm as number) * tpm.windowMs / 60_000);
      const recent = q.inWindow(now, tpm.windowMs);
      let used = recent.reduce((n, s) => n + s.tokens, 0);
      if (used + tokens > budget) {
        // The wait until enough of the window's tokens have left it (a request bigger than the whole budget never fits: one window).
        let wait = tpm.windowMs;
        for (const s of recent) {
          used -= s.tokens;
          if (used + tokens <= budget) {
            wait = s.at + tpm.windowMs - now;
            break;
          }
        }
        return { limit: 'tpm', retryAfterMs: wait };
      }
    }
    q.served.push({ at: now, tokens });
    q.inFlight++;
    const entry = q;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        entry.inFlight--;
      },
    };
  }
}
