/**
 * A mutex whose waits are visible: a step waiting for it shows up in its hang report as `lock.wait`,
 * naming the mutex and the step that holds it. Tools that serialize access to something (a file, a
 * rate-limited account, a SQLite write) use it instead of a hand-rolled promise chain, which a report
 * could only call a promise that never settled.
 *
 *   const orders = new Mutex('orders.csv');
 *   await orders.withLock(() => append(row), ctx.signal);
 */
import { currentForensics } from './channels.ts';
import { fmtMs } from './classify.ts';
import { LockOp } from './ops.ts';

interface Waiter {
  grant(): void;
}

export class Mutex {
  readonly name: string;
  #holder: { who: string; since: number } | undefined;
  readonly #queue: Waiter[] = [];

  constructor(name: string) {
    this.name = name;
  }

  /** Who holds the mutex now, as a report shows it. */
  get holder(): string | undefined {
    const h = this.#holder;
    return h ? `${h.who} (for ${fmtMs(Date.now() - h.since)})` : undefined;
  }

  // The waiter's identity is taken when it asks: the grant runs in the releasing holder's context.
  #take(who: string): () => void {
    this.#holder = { who, since: Date.now() };
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holder = undefined;
      this.#queue.shift()?.grant();
    };
  }

  /** Resolves with the release function once the mutex is ours; rejects if `signal` aborts first. */
  lock(signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const fx = currentForensics();
    const who = fx ? `run ${fx.id.runId} step ${fx.id.stepName} attempt ${fx.id.attempt}` : 'code outside any step';
    if (!this.#holder && this.#queue.length === 0) return Promise.resolve(this.#take(who));
    const op = fx ? new LockOp(fx, this.name, () => this.holder, Date.now()) : undefined;
    if (op) fx?.add(op);
    return new Promise<() => void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal?.removeEventListener('abort', onAbort);
          op?.end();
          resolve(this.#take(who));
        },
      };
      const onAbort = (): void => {
        const i = this.#queue.indexOf(waiter);
        if (i >= 0) this.#queue.splice(i, 1);
        op?.end();
        reject(signal?.reason as Error);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  async withLock<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    const release = await this.lock(signal);
    try {
      return await fn();
    } finally {
      release();
    }
  }
}
