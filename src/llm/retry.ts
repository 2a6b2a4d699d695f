/**
 * Which failures are retried, how long to wait, and the budget nothing may exceed.
 *
 * Safe to retry: the request never reached the model (connect failures, a keep-alive socket the
 * server closed as we reused it) or the server refused it outright (429, 5xx, 529). Never retried:
 * anything after the response started (a truncated or stalled stream would be generated, and paid
 * for, twice) and client errors (400, 401, ...).
 */
import http from 'node:http';
import { RunwardenError } from '../domain/errors.ts';
import { withData } from './errors.ts';
import { registerPending } from './pending.ts';
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS } from './timeouts.ts';

export type RetryDecision = 'none' | 'immediate' | 'backoff';

export function retryDecision(err: RunwardenError): RetryDecision {
  if (err.data?.aborted === true) return 'none';
  switch (err.code) {
    case 'net.keepalive_race':
      return 'immediate';
    case 'net.connect_failed':
      return err.retryable ? 'backoff' : 'none';
    case 'net.connect_timeout':
      // Our connect limit fired with budget left; a budget or step deadline leaves nothing to retry in.
      return err.data?.limit === 'connect' ? 'backoff' : 'none';
    case 'llm.rate_limited':
    case 'llm.overloaded':
      return 'backoff';
    default:
      return 'none';
  }
}

/**
 * Milliseconds the server asked us to wait: `retry-after-ms` (OpenAI), then `retry-after` as
 * delta-seconds or an HTTP date. Garbage, negative or missing values give undefined (use backoff).
 */
export function parseRetryAfter(headers: http.IncomingHttpHeaders, now = Date.now()): number | undefined {
  const ms = headerValue(headers['retry-after-ms']);
  if (ms !== undefined && /^\s*\d+(\.\d+)?\s*$/.test(ms)) return Math.ceil(Number(ms));
  const ra = headerValue(headers['retry-after']);
  if (ra === undefined) return undefined;
  const trimmed = ra.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.ceil(Number(trimmed) * 1000);
  // An HTTP date must at least name a weekday or month; Date.parse accepts far too much otherwise.
  if (/[a-z]{3}/i.test(trimmed)) {
    const at = Date.parse(trimmed);
    if (!Number.isNaN(at)) return Math.max(0, at - now);
  }
  return undefined;
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Full jitter: uniform in [0, min(cap, base * 2^retry)]. */
export function backoffMs(retry: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retry);
  return Math.floor(random() * ceiling);
}

/** Sleep that ends early, rejecting, when `signal` aborts. Leaves no timer or listener behind. */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(new Error('aborted'));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new Error('aborted'));
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export interface RetryLoopOptions {
  signal: AbortSignal;
  budgetDeadline: number;
  maxRetries: number;
  /** Before each attempt (1-based). */
  beforeAttempt?: (attempt: number) => void;
}

/**
 * Run `attempt` until it succeeds, a failure is not retryable, retries run out, or the budget would
 * be exceeded by the wait. Returns the value and how many retries it took.
 */
export async function withRetries<T>(o: RetryLoopOptions, attempt: (n: number) => Promise<T>): Promise<{ value: T; retries: number }> {
  let retries = 0;
  let immediateUsed = false;
  for (let n = 1; ; n++) {
    o.beforeAttempt?.(n);
    try {
      const value = await attempt(n);
      return { value, retries };
    } catch (err) {
      if (!(err instanceof RunwardenError)) throw err;
      const decision = retryDecision(err);
      if (decision === 'none') throw withData(err, { retries });
      if (decision === 'immediate' && !immediateUsed) {
        immediateUsed = true;
        retries++;
        continue;
      }
      if (retries >= o.maxRetries) {
        throw withData(err, { retries }, `${err.message} (gave up after ${retries} ${retries === 1 ? 'retry' : 'retries'})`);
      }
      const asked = typeof err.data?.retryAfterMs === 'number' ? err.data.retryAfterMs : undefined;
      const wait = asked ?? backoffMs(retries);
      const remaining = o.budgetDeadline - Date.now();
      if (wait >= remaining) {
        const why =
          asked !== undefined
            ? `the server asked to retry after ${fmtMs(asked)} but only ${fmtMs(remaining)} remain in the budget`
            : `the backoff of ${fmtMs(wait)} would outlast the ${fmtMs(remaining)} left in the budget`;
        throw withData(err, { retries, remainingMs: Math.max(0, remaining), gaveUp: 'budget' }, `${err.message}; giving up: ${why}`);
      }
      const sleepStarted = Date.now();
      const d = err.data ?? {};
      const unregister = registerPending({
        signal: o.signal,
        snapshot: (now) => ({
          provider: str(d.provider, ''),
          model: str(d.model, ''),
          method: str(d.method, 'POST'),
          url: str(d.url, ''),
          phase: 'backoff',
          attempt: n,
          startedAt: sleepStarted,
          msInPhase: now - sleepStarted,
          bytesIn: 0,
          bytesOut: 0,
          msSinceLastByte: -1,
        }),
      });
      try {
        await abortableSleep(wait, o.signal);
      } catch (sleepErr) {
        const cls = err.data?.classification as { code: string } | undefined;
        throw withData(
          err,
          {
            retries,
            phase: 'backoff',
            aborted: true,
            classification: { code: cls?.code ?? err.code, summary: `Aborted while waiting ${fmtMs(wait)} to retry after: ${err.message}` },
            backoffMs: wait,
          },
          `${err.message}; aborted during the ${fmtMs(wait)} wait before retrying (${sleepErr instanceof Error ? sleepErr.message : 'aborted'})`,
        );
      } finally {
        unregister();
      }
      retries++;
    }
  }
}

function str(v: unknown, fallback: string): string {
  return typeof v === 'string' ? v : fallback;
}

function fmtMs(ms: number): string {
  return ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.max(0, Math.round(ms))} ms`;
}
