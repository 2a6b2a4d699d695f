/**
 * Bounded logging and backoff for a write that keeps failing (disk full, database down): the first
 * failure is logged, then at most one line per `everyMs` with how many failed since, and one line
 * when it works again. Measured before: a worker on a full disk logged ~500 lines a second (2.9 MB
 * in 75 s), retrying every 250 ms per claim loop.
 */
export class FailureLog {
  #failures = 0;
  #since = 0;
  #lastLogAt = 0;
  #suppressed = 0;
  readonly #what: string;
  readonly #log: (line: string) => void;
  readonly #everyMs: number;

  constructor(what: string, log: (line: string) => void, everyMs = 30_000) {
    this.#what = what;
    this.#log = log;
    this.#everyMs = everyMs;
  }

  /** Records a failure; returns how long to wait before the next try (250 ms doubling to 5 s). */
  failed(err: unknown): number {
    const now = Date.now();
    if (this.#failures === 0) this.#since = now;
    this.#failures++;
    const message = err instanceof Error ? err.message : String(err);
    if (this.#failures === 1 || now - this.#lastLogAt >= this.#everyMs) {
      const more = this.#suppressed > 0 ? ` (${this.#suppressed} more failures since the last line)` : '';
      this.#log(`${this.#what} failed, will retry: ${message}${more}`);
      this.#lastLogAt = now;
      this.#suppressed = 0;
    } else this.#suppressed++;
    return Math.min(5000, 250 * 2 ** Math.min(this.#failures - 1, 5));
  }

  /** Records a success; logs the recovery if there were failures. */
  ok(): void {
    if (this.#failures === 0) return;
    this.#log(`${this.#what} works again after ${this.#failures} failures in ${Math.round((Date.now() - this.#since) / 1000)} s`);
    this.#failures = 0;
    this.#suppressed = 0;
  }
}
