/** The little state a lab keeps across requests. */
import type { Socket } from 'node:net';
import { Quotas } from './quota.ts';

/** What `GET /stats` reports of one mode. */
export interface ModeStats {
  /** Requests that reached the mode (a 400 for a bad parameter included). */
  requests: number;
  /** Of those, answered 429. */
  rateLimited: number;
}

// Distinct keys of the counted modes; past this the map is reset rather than grown without bound
// (10,000 keys is far beyond any test or benchmark and costs well under a megabyte).
const MAX_COUNTER_KEYS = 10_000;

export class LabState {
  readonly defaultLatencyMs: number;
  readonly log: (line: string) => void;
  /** keepalive_race: sockets the lab has decided to close; requests arriving on them are ignored. */
  readonly doomed = new WeakSet<Socket>();
  readonly #counters = new Map<string, number>();
  readonly quotas = new Quotas();
  readonly #stats = new Map<string, ModeStats>();
  #ids = 0;

  constructor(defaultLatencyMs: number, log: (line: string) => void) {
    this.defaultLatencyMs = defaultLatencyMs;
    this.log = log;
  }

  nextId(prefix: string): string {
    this.#ids += 1;
    return `${prefix}${this.#ids.toString(36).padStart(6, '0')}`;
  }

  #statsOf(mode: string): ModeStats {
    let s = this.#stats.get(mode);
    if (!s) {
      s = { requests: 0, rateLimited: 0 };
      this.#stats.set(mode, s);
    }
    return s;
  }

  countRequest(mode: string): void {
    this.#statsOf(mode).requests++;
  }

  countRateLimited(mode: string): void {
    this.#statsOf(mode).rateLimited++;
  }

  /** Requests and 429s per mode since the lab started, and their totals. */
  stats(): { requests: number; rateLimited: number; modes: Record<string, ModeStats> } {
    const modes = Object.fromEntries([...this.#stats].map(([m, s]) => [m, { ...s }]));
    let requests = 0;
    let rateLimited = 0;
    for (const s of this.#stats.values()) {
      requests += s.requests;
      rateLimited += s.rateLimited;
    }
    return { requests, rateLimited, modes };
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
