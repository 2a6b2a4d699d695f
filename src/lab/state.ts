/** The little state a lab keeps across requests. */
import type { Socket } from 'node:net';

// Distinct keys of the counted modes; past this the map is reset rather than grown without bound
// (10,000 keys is far beyond any test or benchmark and costs well under a megabyte).
const MAX_COUNTER_KEYS = 10_000;

export class LabState {
  readonly defaultLatencyMs: number;
  readonly log: (line: string) => void;
  /** keepalive_race: sockets the lab has decided to close; requests arriving on them are ignored. */
  readonly doomed = new WeakSet<Socket>();
  readonly #counters = new Map<string, number>();
  #ids = 0;

  constructor(defaultLatencyMs: number, log: (line: string) => void) {
    this.defaultLatencyMs = defaultLatencyMs;
    this.log = log;
  }

  nextId(prefix: string): string {
    this.#ids += 1;
    return `${prefix}${this.#ids.toString(36).padStart(6, '0')}`;
  }

  /** Counts one request for `key` and says whether it is among the first `limit`. */
  withinFirst(key: string, limit: number): boolean {
    const seen = this.#counters.get(key) ?? 0;
    if (seen >= limit) return false;
    if (this.#counters.size >= MAX_COUNTER_KEYS && !this.#counters.has(key)) this.#counters.clear();
    this.#counters.set(key, seen + 1);
    return true;
  }
}
