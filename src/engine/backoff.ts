import type { RetryPolicy } from '../domain/records.ts';

/**
 * Delay before retry number `n` (1-based): exponential from `backoffMs`, capped at `maxBackoffMs`,
 * with "equal jitter" (half fixed, half random) so retries of many steps failing together spread out
 * but never retry immediately.
 */
export function backoffDelay(policy: RetryPolicy, n: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxBackoffMs, policy.backoffMs * 2 ** Math.max(0, n - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/**
 * Lost attempts (worker crashed, was killed or froze) are the infrastructure's fault, not the
 * step's, so they get their own small budget on top of `retries.max`, like BullMQ's
 * maxStalledCount; `retries.max` adds to it. A step that keeps killing its worker still ends.
 */
export const MAX_LOST_RETRIES = 2;
