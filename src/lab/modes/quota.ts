/**
 * quota: a provider with a real quota. `rpm`, `tpm` and `concurrency` (any subset) hold per key
 * (default: the request path), quantized to windows of a second as providers do (src/domain/quota.ts);
 * a request over one is refused with 429, `retry-after` (whole seconds, rounded up) and
 * `retry-after-ms`, and `x-ratelimit-*` headers naming the limit. Within quota it answers healthily.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { errorBody } from '../wire.ts';
import { sendHealthy } from './healthy.ts';
import type { Mode } from './types.ts';

export const quota: Mode = (ex, lab) => {
  const rpm = ex.params.optionalInt('rpm', 1, 100_000_000);
  const tpm = ex.params.optionalInt('tpm', 1, 1_000_000_000);
  const concurrency = ex.params.optionalInt('concurrency', 1, 100_000);
  const chunkMs = ex.params.int('chunk_ms', 0, 0, 60_000);
  const path = new URL(ex.req.url ?? '/', 'http://lab.invalid').pathname;
  const key = `quota:${ex.params.str('key', path)}`;
  return async () => {
    const taken = lab.quotas.take(key, { rpm, tpm, concurrency }, ex.reply.tokens ?? 0, Date.now());
    if ('release' in taken) {
      ex.res.once('close', taken.release);
      await sendHealthy(ex, chunkMs);
      return;
    }
    // A full concurrency limit frees when a request ends: a second is what providers say then.
    const waitMs = Math.max(1, taken.retryAfterMs || 1000);
    const headers: OutgoingHttpHeaders = {
      'retry-after': String(Math.ceil(waitMs / 1000)),
      'retry-after-ms': String(waitMs),
      'x-runwarden-lab-limit': taken.limit,
    };
    const what = taken.limit === 'rpm' ? `requests per minute (${rpm})` : taken.limit === 'tpm' ? `tokens per minute (${tpm})` : `concurrent requests (${concurrency})`;
    ex.sendJson(429, errorBody(ex.format, 429, `Rate limit reached for ${what} (runwarden lab quota mode).`), headers);
  };
};
