/**
 * When to restart a worker process that died: at once-ish the first time (`initialMs`), then twice
 * as long for every crash in a row, up to `maxMs`, so that a crash loop (a tool module that throws
 * at import, a step that kills every worker it lands on) costs a few restarts a minute instead of
 * spinning the machine. A worker that stayed up for `stableMs` before dying starts the sequence over.
 */
export class RestartBackoff {
  readonly #initialMs: number;
  readonly #maxMs: number;
  readonly #stableMs: number;
  #nextMs: number;
  /** Crashes in a row (reset by a stable run). */
  streak = 0;

  constructor(o: { initialMs: number; maxMs: number; stableMs?: number }) {
    this.#initialMs = o.initialMs;
    this.#maxMs = Math.max(o.initialMs, o.maxMs);
    this.#stableMs = o.stableMs ?? 60_000;
    this.#nextMs = o.initialMs;
  }

  /** The delay before the next start of a worker that ran for `upMs` and died. */
  next(upMs: number): number {
    if (upMs >= this.#stableMs) {
      this.#nextMs = this.#initialMs;
      this.streak = 0;
    }
    const delay = this.#nextMs;
    this.streak++;
    this.#nextMs = Math.min(this.#maxMs, this.#nextMs * 2);
    return delay;
  }
}
