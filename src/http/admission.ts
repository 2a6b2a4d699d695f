/**
 * Bounded admission for run submissions: at most `maxActive` are validated and written at once; the
 * rest wait their turn in arrival order, costing a promise each. The store writes one run at a time
 * anyway (one SQLite writer; PostgreSQL transactions contend on the same rows), so more at once
 * only adds work to each turn of the event loop: during a burst of 200 concurrent submissions, 200
 * validations in one turn delayed every other request, `/health` on a new connection included.
 * Past `maxQueued` waiting, a submission is refused at once with 503 OVERLOADED (retryable), so a
 * flood cannot grow memory without bound.
 */
import { httpError } from './errors.ts';

export class Admission {
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  readonly maxActive: number;
  readonly maxQueued: number;

  constructor(maxActive: number, maxQueued: number) {
    this.maxActive = maxActive;
    this.maxQueued = maxQueued;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#active >= this.maxActive) {
      if (this.#waiting.length >= this.maxQueued) {
        throw httpError('OVERLOADED', `${this.#waiting.length} submissions are already waiting; retry shortly`);
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#active++;
    }
    try {
      return await fn();
    } finally {
      const next = this.#waiting.shift();
      // The slot passes straight to the next waiter; otherwise it is freed.
      if (next) next();
      else this.#active--;
    }
  }
}
