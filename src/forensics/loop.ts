/**
 * Event-loop delay and utilization over time, so a report can say what the loop did *during the
 * step* (not only now). One `monitorEventLoopDelay` histogram, folded every second into a bucket of
 * a ring that keeps the last 15 minutes; a report aggregates the buckets its step overlapped, plus
 * the current partial second.
 */
import { monitorEventLoopDelay, performance, type EventLoopUtilization } from 'node:perf_hooks';
import { internalTimerCallbacks } from './ops.ts';

type Histogram = ReturnType<typeof monitorEventLoopDelay>;

interface Bucket {
  end: number;
  maxMs: number;
  p99Ms: number;
  meanMs: number;
  utilization: number;
}

const BUCKET_MS = 1000;
const KEEP = 900;
/** Sampling resolution of the delay histogram (a 20 ms timer: ~50 wake-ups a second, negligible). */
const RESOLUTION_MS = 20;

export interface LoopWindow {
  /** Worst single delay seen, ms. */
  maxDelayMs: number;
  /** Highest per-second p99, ms. */
  p99DelayMs: number;
  meanDelayMs: number;
  /** Share of time the loop was busy (0..1). */
  utilization: number;
  /** Seconds of history this is based on. */
  seconds: number;
}

const ms = (ns: number): number => (Number.isFinite(ns) ? Math.round(ns / 1e4) / 100 : 0);

class LoopMonitor {
  #h: Histogram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #elu: EventLoopUtilization | undefined;
  #from = 0;
  readonly #ring: Bucket[] = [];

  start(): void {
    if (this.#h) return;
    this.#h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
    this.#h.enable();
    this.#elu = performance.eventLoopUtilization();
    this.#from = Date.now();
    const fold = (): void => this.#fold();
    internalTimerCallbacks.add(fold);
    this.#timer = setInterval(fold, BUCKET_MS).unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#h?.disable();
    this.#h = undefined;
    this.#ring.length = 0;
  }

  get running(): boolean {
    return this.#h !== undefined;
  }

  #current(): Bucket | undefined {
    const h = this.#h;
    if (!h) return undefined;
    const elu = performance.eventLoopUtilization(this.#elu);
    return { end: Date.now(), maxMs: ms(h.max), p99Ms: ms(h.percentile(99)), meanMs: ms(h.mean), utilization: elu.utilization };
  }

  #fold(): void {
    const b = this.#current();
    if (!b) return;
    this.#ring.push(b);
    if (this.#ring.length > KEEP) this.#ring.shift();
    this.#h?.reset();
    this.#elu = performance.eventLoopUtilization();
    this.#from = b.end;
  }

  /** Aggregate over [from, now]; null when the monitor is off. */
  window(from: number): LoopWindow | null {
    if (!this.#h) return null;
    const parts = this.#ring.filter((b) => b.end > from);
    const cur = this.#current();
    if (cur && cur.end > this.#from) parts.push(cur);
    if (parts.length === 0) return null;
    let max = 0;
    let p99 = 0;
    let mean = 0;
    let util = 0;
    for (const b of parts) {
      max = Math.max(max, b.maxMs);
      p99 = Math.max(p99, b.p99Ms);
      mean += b.meanMs;
      util += b.utilization;
    }
    return {
      maxDelayMs: max,
      p99DelayMs: p99,
      meanDelayMs: Math.round((mean / parts.length) * 100) / 100,
      utilization: Math.round((util / parts.length) * 1000) / 1000,
      seconds: Math.max(1, Math.round((Date.now() - from) / 1000)),
    };
  }
}

export const loopMonitor = new LoopMonitor();
