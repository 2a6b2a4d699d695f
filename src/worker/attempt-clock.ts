/**
 * An attempt's deadline, which stands still while the attempt waits for capacity
 * (docs/flow-control.md#waiting-for-capacity): a call held at a provider's gate by its limits or a
 * pause does not use up the step's `timeoutMs`. The wait is bounded instead by the step's
 * `queueTimeoutMs` (all its waits in one attempt added up), after which `onQueueTimeout` fires.
 *
 * One timer at a time: the deadline while nothing waits, the queue timeout while something does.
 * Several calls of one attempt may wait at once: the clock stands still while any of them does.
 */
import type { CapacityClock, CapacityHold, CapacityWait } from '../flow/capacity.ts';

export type { CapacityClock, CapacityHold, CapacityWait };

export interface AttemptClockOptions {
  deadlineAt: number;
  queueTimeoutMs: number | null;
  onDeadline: () => void;
  onQueueTimeout: () => void;
  /** The deadline moved, or what the attempt waits for changed (a heartbeat carries both). */
  onChange?: () => void;
  now?: () => number;
}

export class AttemptClock implements CapacityClock {
  readonly #o: AttemptClockOptions;
  readonly #now: () => number;
  /** The deadline, were the clock to run from now on without waiting. */
  #deadlineAt: number;
  readonly #holds = new Map<number, { wait: CapacityWait; since: number }>();
  #nextHold = 0;
  /** When the clock stopped (the first of the current holds began); null while it runs. */
  #stoppedAt: number | null = null;
  /** Time the clock stood still, this attempt, before the current stop. */
  #stillMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #running = false;

  constructor(o: AttemptClockOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#deadlineAt = o.deadlineAt;
  }

  /** When the attempt times out, as far as is known now (while it waits, a moving target). */
  get deadlineAt(): number {
    return this.#stoppedAt === null ? this.#deadlineAt : this.#deadlineAt + (this.#now() - this.#stoppedAt);
  }

  /** How long the attempt has waited for capacity in all. */
  get waitedMs(): number {
    return this.#stillMs + (this.#stoppedAt === null ? 0 : this.#now() - this.#stoppedAt);
  }

  /** What the attempt waits for now (the longest-waiting of its calls), with since when; null when nothing waits. */
  get waiting(): (CapacityWait & { since: number }) | null {
    let first: { wait: CapacityWait; since: number } | undefined;
    for (const h of this.#holds.values()) if (!first || h.since < first.since) first = h;
    return first ? { ...first.wait, since: first.since } : null;
  }

  start(): void {
    this.#running = true;
    this.#arm();
  }

  stop(): void {
    this.#running = false;
    clearTimeout(this.#timer);
  }

  hold(wait: CapacityWait): CapacityHold {
    const id = this.#nextHold++;
    const now = this.#now();
    this.#holds.set(id, { wait, since: now });
    if (this.#stoppedAt === null) {
      this.#stoppedAt = now;
      this.#arm();
    }
    this.#o.onChange?.();
    let ended = false;
    return {
      update: (w) => {
        const h = this.#holds.get(id);
        if (!h || ended) return;
        h.wait = w;
        this.#o.onChange?.();
      },
      end: () => {
        if (ended) return 0;
        ended = true;
        const h = this.#holds.get(id);
        this.#holds.delete(id);
        const at = this.#now();
        if (this.#holds.size === 0 && this.#stoppedAt !== null) {
          const still = at - this.#stoppedAt;
          this.#deadlineAt += still;
          this.#stillMs += still;
          this.#stoppedAt = null;
          this.#arm();
        }
        this.#o.onChange?.();
        return h ? at - h.since : 0;
      },
    };
  }

  #arm(): void {
    clearTimeout(this.#timer);
    if (!this.#running) return;
    const now = this.#now();
    if (this.#stoppedAt === null) {
      this.#timer = setTimeout(this.#o.onDeadline, Math.max(0, this.#deadlineAt - now));
      return;
    }
    const budget = this.#o.queueTimeoutMs;
    if (budget !== null) this.#timer = setTimeout(this.#o.onQueueTimeout, Math.max(0, budget - this.waitedMs));
  }
}
