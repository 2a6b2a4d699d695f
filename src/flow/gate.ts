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
import { RESERVE_AHEAD_MS, type LimitName, type ProviderLimits, type SlotAnswer } from './slots.ts';

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
  /** The calls of this process at the gate: asking the store, or queued behind the one that is. */
  readonly #calls = new Set<GateCall>();
  /** The calls that were told they wait (onWait), and must be told when they may go. */
  readonly #told = new WeakSet<GateCall>();
  /** What held the last call back, while calls still wait: those queued behind it wait for the same. */
  #refusal: GateWait | undefined;

  constructor(o: GateOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  get limits(): ProviderLimits | undefined {
    return this.#o.limits;
  }

  /** Calls of this process waiting at the gate now. */
  get waiting(): number {
    return this.#calls.size;
  }

  /**
   * Waits its turn and a slot; rejects (aborted) when the call's signal aborts first, even while
   * it is still queued behind other calls. A call that joins the queue while the one ahead is held
   * back by a limit is told at once that it waits, and for what.
   */
  acquire(call: GateCall): Promise<Slot> {
    this.#calls.add(call);
    if (this.#refusal && this.#calls.size > 1) this.#tell(call, this.#refusal);
    const since = this.#now();
    const granted = this.#queue.then(() => this.#take(call, since));
    // The next call asks as soon as this one has its grant, while this one waits for its slot's time.
    this.#queue = granted.then(
      () => undefined,
      () => undefined,
    );
    let leave: (() => void) | undefined;
    const left = new Promise<never>((_, reject) => {
      leave = () => reject(aborted(this.#o.provider, this.#refusal, this.#now() - since));
      call.signal.addEventListener('abort', leave, { once: true });
    });
    const turn = granted.then((g) => this.#at(g, call));
    // A slot granted to a call that left the queue meanwhile is given back at once.
    turn.then((slot) => call.signal.aborted && slot.release(), () => undefined);
    return Promise.race([turn, left]).finally(() => {
      if (leave) call.signal.removeEventListener('abort', leave);
      this.#calls.delete(call);
      if (this.#calls.size === 0) this.#refusal = undefined;
    });
  }

  #tell(call: GateCall, wait: GateWait | null): void {
    if (wait) this.#told.add(call);
    else if (!this.#told.has(call)) return;
    else this.#told.delete(call);
    call.onWait?.(wait);
  }

  /** No call to this provider, from any worker, until `until` (epoch ms). Never throws. */
  pause(until: number): void {
    this.#o.store.pause(this.#o.provider, until).catch((err: unknown) => this.#o.log?.(`provider ${this.#o.provider}: could not record its pause: ${(err as Error).message}`));
  }

  async #take(call: GateCall, since: number): Promise<Grant> {
    for (;;) {
      if (call.signal.aborted) throw aborted(this.#o.provider, this.#refusal, this.#now() - since);
      const now = this.#now();
      // Waiting does not use up the call's time: its concurrency slot lapses as much later.
      const answer = await this.#ask({ ...call, leaseUntil: call.leaseUntil + (now - since) }, now);
      if (answer.granted) {
        this.#tell(call, null);
        return answer;
      }
      const wait: GateWait = { provider: this.#o.provider, limit: answer.limit, used: answer.used, cap: answer.cap, retryAt: answer.retryAt };
      this.#refusal = wait;
      // Every call of this process at the gate waits for the same limit: each is told how it stands.
      for (const c of this.#calls) this.#tell(c, wait);
      // A per-minute slot is granted up to RESERVE_AHEAD_MS before its time: ask again that much before it.
      const askAt = answer.limit === 'requestsPerMinute' || answer.limit === 'tokensPerMinute' ? answer.retryAt - RESERVE_AHEAD_MS : answer.retryAt;
      await sleep(Math.max(1, Math.min(askAt - this.#now(), MAX_SLEEP_MS)), call.signal);
    }
  }

  /** Waits until a slot granted ahead of its time is due (or the call's signal aborts). */
  async #at(g: Grant, call: GateCall): Promise<Slot> {
    const ahead = g.at - this.#now();
    if (ahead > 0) await sleep(ahead, call.signal);
    return g.slot;
  }

  async #ask(call: GateCall, now: number): Promise<Grant | Extract<SlotAnswer, { granted: false }>> {
    const { store, provider, limits } = this.#o;
    if (!limits) {
      const until = await store.pausedUntil(provider);
      return until > now ? { granted: false, limit: 'paused', retryAt: until, used: 0, cap: 0 } : { granted: true, at: now, slot: NO_SLOT };
    }
    const id = randomUUID();
    const answer = await store.take({ name: provider, limits, id, tokens: call.tokens, now, leaseUntil: call.leaseUntil });
    if (!answer.granted) return answer;
    let released = false;
    return {
      granted: true,
      at: answer.at ?? now,
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

/** A grant: the slot and when it may be sent (now, or up to RESERVE_AHEAD_MS later). */
interface Grant {
  granted: true;
  at: number;
  slot: Slot;
}

/** The call's signal fired while it waited at the gate: what held it, for the step's error and hang report. */
function aborted(provider: string, last: GateWait | undefined, waitedMs: number): RunwardenError {
  const what = last ? describeWait(last) : `provider ${provider}'s limits`;
  const summary = `waited ${waitedMs} ms at provider ${provider}'s gate for ${what}; the call was never sent`;
  return new RunwardenError('llm.limit_wait', `aborted while waiting for a slot of provider ${provider}: ${what}`, {
    data: {
      provider,
      aborted: true,
      phase: 'limit',
      elapsedMs: waitedMs,
      classification: { code: 'llm.limit_wait', summary },
      ...(last ? { waitingFor: { limit: last.limit, used: last.used, cap: last.cap, retryAt: new Date(last.retryAt).toISOString() } } : {}),
    },
  });
}

/** "requestsPerMinute (20 of 20 in the window; next slot expected at ...)", for people. */
export function describeWait(w: Pick<GateWait, 'limit' | 'used' | 'cap' | 'retryAt'>): string {
  const at = new Date(w.retryAt).toISOString();
  if (w.limit === 'paused') return `the end of its pause after a 429/529 (until ${at})`;
  const full = w.limit === 'concurrency' ? `${w.used} of ${w.cap} calls in flight` : w.limit === 'tokensPerMinute' ? `${w.used} of ${w.cap} tokens in the window` : `${w.used} of ${w.cap} requests in the window`;
  return `its ${w.limit} limit (${full}; next slot expected at ${at})`;
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
