/**
 * A provider's gate in one process: every call to the provider passes it. With limits, it takes a
 * slot from the store (src/flow/limit-store.ts) and releases it when the call ends; without, it
 * only honours a pause another worker recorded after a 429/529. The calls of one process queue
 * in order and only the first asks the store, so a crowd of waiting steps costs one query per
 * wake-up per process, not one per step.
 */
import { randomUUID } from 'node:crypto';
import { RunwardenError } from '../domain/errors.ts';
import type { ProviderLimitStore } from './limit-store.ts';
import type { LimitName, ProviderLimits, SlotAnswer } from './slots.ts';

/** What a call waiting at the gate is waiting for (hang reports, step.waiting). */
export interface GateWait {
  provider: string;
  limit: LimitName;
  used: number;
  cap: number;
  /** Epoch ms when a slot is expected. */
  retryAt: number;
}

export interface GateCall {
  signal: AbortSignal;
  /** Tokens to charge before the call (an estimate). */
  tokens: number;
  /** The concurrency slot lapses then if the call is never released. */
  leaseUntil: number;
  /** Each time the call starts, or goes on, waiting; and once with null when it may go. */
  onWait?: (wait: GateWait | null) => void;
}

export interface Slot {
  /**
   * The request is going out now. Its slot is moved to this time, so that the time between the
   * grant and the send (a commit, a new connection) does not let the next window's calls reach
   * the provider within this one's. Never throws.
   */
  sent(): void;
  /** The call ended; `tokens` (its usage) corrects the estimate. Never throws. */
  release(tokens?: number): void;
}

export interface GateOptions {
  store: ProviderLimitStore;
  provider: string;
  limits?: ProviderLimits;
  log?: (line: string) => void;
  now?: () => number;
}

const NO_SLOT: Slot = { sent: () => undefined, release: () => undefined };
// However far off the next slot, ask again this often: a pause may be lifted, a slot released.
const MAX_SLEEP_MS = 1000;

export class ProviderGate {
  readonly #o: GateOptions;
  readonly #now: () => number;
  #queue: Promise<unknown> = Promise.resolve();
  #waiting = 0;

  constructor(o: GateOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get limits(): ProviderLimits | undefined {
    return this.#o.limits;
  }

  /** Calls of this process waiting at the gate now. */
  get waiting(): number {
    return this.#waiting;
  }

  /** Waits its turn and a slot; rejects (aborted) when the call's signal aborts first. */
  acquire(call: GateCall): Promise<Slot> {
    this.#waiting++;
    const mine = this.#queue.then(() => this.#take(call));
    this.#queue = mine.then(
      () => undefined,
      () => undefined,
    );
    return mine.finally(() => this.#waiting--);
  }

  /** No call to this provider, from any worker, until `until` (epoch ms). Never throws. */
  pause(until: number): void {
    this.#o.store.pause(this.#o.provider, until).catch((err: unknown) => this.#o.log?.(`provider ${this.#o.provider}: could not record its pause: ${(err as Error).message}`));
  }

  async #take(call: GateCall): Promise<Slot> {
    let waited = false;
    for (;;) {
      if (call.signal.aborted) throw aborted(this.#o.provider);
      const now = this.#now();
      const answer = await this.#ask(call, now);
      if (answer.granted) {
        if (waited) call.onWait?.(null);
        return answer.slot;
      }
      waited = true;
      call.onWait?.({ provider: this.#o.provider, limit: answer.limit, used: answer.used, cap: answer.cap, retryAt: answer.retryAt });
      await sleep(Math.max(1, Math.min(answer.retryAt - now, MAX_SLEEP_MS)), call.signal);
    }
  }

  async #ask(call: GateCall, now: number): Promise<{ granted: true; slot: Slot } | Extract<SlotAnswer, { granted: false }>> {
    const { store, provider, limits } = this.#o;
    if (!limits) {
      const until = await store.pausedUntil(provider);
      return until > now ? { granted: false, limit: 'paused', retryAt: until, used: 0, cap: 0 } : { granted: true, slot: NO_SLOT };
    }
    const id = randomUUID();
    const answer = await store.take({ name: provider, limits, id, tokens: call.tokens, now, leaseUntil: call.leaseUntil });
    if (!answer.granted) return answer;
    let released = false;
    return {
      granted: true,
      slot: {
        sent: () => {
          store.sent(id, this.#now()).catch((err: unknown) => this.#o.log?.(`provider ${provider}: could not record a call's send time: ${(err as Error).message}`));
        },
        release: (tokens) => {
          if (released) return;
          released = true;
          store.release(id, tokens ?? null).catch((err: unknown) => this.#o.log?.(`provider ${provider}: could not release a slot (it lapses at the call's deadline): ${(err as Error).message}`));
        },
      },
    };
  }
}

function aborted(provider: string): RunwardenError {
  return new RunwardenError('llm.limit_wait', `aborted while waiting for a slot of provider ${provider} (its limits or a pause held the call)`, {
    data: { provider, aborted: true, phase: 'limit' },
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
