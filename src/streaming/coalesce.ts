/**
 * Coalesces the text a step generates into `llm.delta` frames. A model streams a token every few
 * milliseconds (the lab: one chunk per 1-20 ms); one frame per token would be one store
 * notification, one IPC message and one SSE write per token for every follower. Frames are cut at
 * most every `intervalMs` (75 ms: between the 50 and 100 ms a reader perceives as smooth) and when
 * the buffered text passes `maxChars`, so a frame always fits a PostgreSQL NOTIFY payload.
 *
 * Publishing never waits: `publish` is synchronous and fire-and-forget (the store notifies its
 * subscribers, which drop frames for readers that do not keep up), so a slow follower cannot slow
 * the step.
 */
import type { TextDelta } from '../domain/records.ts';

export const DELTA_INTERVAL_MS = 75;
/** Well under PostgreSQL's 8000-byte NOTIFY payload once JSON-escaped (at most 6 bytes a char for control characters, 3 for CJK). */
export const DELTA_MAX_CHARS = 1000;

export interface StepRef {
  runId: string;
  stepName: string;
  attempt: number;
}

export class DeltaCoalescer {
  readonly #step: StepRef;
  readonly #publish: (d: TextDelta) => void;
  readonly #clean: (text: string) => string;
  readonly #intervalMs: number;
  #buffer = '';
  #offset = 0;
  #call: number | undefined;
  #reset = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Frames a subscriber threw on (lost; the final text is in the step's output all the same). */
  failed = 0;

  constructor(step: StepRef, publish: (d: TextDelta) => void, opts: { clean?: (text: string) => string; intervalMs?: number } = {}) {
    // Only these three: the caller may hand a whole claim (with its lease token), which must not travel.
    this.#step = { runId: step.runId, stepName: step.stepName, attempt: step.attempt };
    this.#publish = publish;
    this.#clean = opts.clean ?? ((t) => t);
    this.#intervalMs = opts.intervalMs ?? DELTA_INTERVAL_MS;
  }

  /**
   * Adds text. `call` names the provider exchange it belongs to: when it changes (a retry after a
   * truncated stream), what was published is void and the next frame says `reset`.
   */
  push(text: string, call = 0): void {
    if (this.#closed || text === '') return;
    if (this.#call !== undefined && call !== this.#call) {
      this.#buffer = '';
      this.#offset = 0;
      this.#reset = true;
    }
    this.#call = call;
    this.#buffer += text;
    if (this.#buffer.length >= DELTA_MAX_CHARS) this.flush();
    else this.#timer ??= setTimeout(() => this.flush(), this.#intervalMs);
  }

  flush(): void {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    while (this.#buffer.length > 0) {
      const text = this.#buffer.slice(0, DELTA_MAX_CHARS);
      this.#buffer = this.#buffer.slice(text.length);
      const frame: TextDelta = { ...this.#step, ts: Date.now(), text: this.#clean(text), offset: this.#offset, ...(this.#reset ? { reset: true as const } : {}) };
      this.#offset += text.length;
      this.#reset = false;
      try {
        this.#publish(frame);
      } catch {
        // A subscriber's failure must never become the step's: the frame is lost, the text is not.
        this.failed++;
      }
    }
  }

  /** Publishes what is buffered; later pushes are ignored (the attempt is over). */
  close(): void {
    this.flush();
    this.#closed = true;
  }
}
