/**
 * Error codes of the LLM layer and the `data` every network error carries, so that a hang report
 * can say where a call was stuck without re-deriving it.
 */
import { RunwardenError } from '../domain/errors.ts';

export const LlmErrorCode = {
  connectTimeout: 'net.connect_timeout',
  connectFailed: 'net.connect_failed',
  keepaliveRace: 'net.keepalive_race',
  resetBeforeResponse: 'net.reset_before_response',
  noHeaders: 'llm.no_headers',
  bodyStall: 'llm.body_stall',
  streamIdle: 'llm.stream_idle',
  trickle: 'llm.trickle',
  truncated: 'llm.truncated',
  rateLimited: 'llm.rate_limited',
  overloaded: 'llm.overloaded',
  malformed: 'llm.malformed',
  auth: 'llm.auth',
  badRequest: 'llm.bad_request',
  httpError: 'llm.http_error',
  tooLarge: 'llm.too_large',
  unknownProvider: 'PROVIDER_UNKNOWN',
  unsupported: 'PROVIDER_UNSUPPORTED',
  closed: 'PROVIDERS_CLOSED',
} as const;
export type LlmErrorCode = (typeof LlmErrorCode)[keyof typeof LlmErrorCode];

/** Where an attempt was when it failed. `backoff` is the sleep between attempts. */
/** `limit`: waiting at the provider's gate for a slot under its limits, or for its pause to end. */
export type CallPhase = 'limit' | 'dns' | 'connect' | 'tls' | 'headers' | 'body' | 'stream' | 'backoff';

/** Which limit fired, when one did. */
export type FiredLimit = 'connect' | 'headers' | 'first_content' | 'idle' | 'total' | 'step_deadline' | 'abort' | 'max_bytes';

export interface LlmErrorData {
  classification: { code: string; summary: string };
  phase: CallPhase;
  provider: string;
  model: string;
  /** Redacted: no credentials, no query string, no fragment. */
  url: string;
  method?: string;
  elapsedMs: number;
  bytesIn: number;
  bytesOut: number;
  /** -1 when no byte was ever received. */
  msSinceLastByte: number;
  /** The step's signal fired (cancellation or the engine's deadline), as opposed to our own timer. */
  aborted: boolean;
  limit?: FiredLimit;
  status?: number;
  attempt?: number;
  retries?: number;
  retryAfterMs?: number;
  /** Error code of the socket (ECONNREFUSED, ECONNRESET, ...) when there was one. */
  errno?: string;
  /** A short excerpt of the provider's error message (never request headers). */
  providerMessage?: string;
  [key: string]: unknown;
}

export function llmError(code: string, message: string, data: LlmErrorData, opts: { retryable: boolean; status?: number; cause?: unknown }): RunwardenError {
  return new RunwardenError(code, message, {
    retryable: opts.retryable,
    status: opts.status ?? 502,
    data: { ...data, classification: { code, summary: data.classification.summary } },
    cause: opts.cause,
  });
}

/** A copy of `err` with extra data merged in (RunwardenError fields are read-only). */
export function withData(err: RunwardenError, extra: Record<string, unknown>, message?: string): RunwardenError {
  return new RunwardenError(err.code, message ?? err.message, {
    retryable: err.retryable,
    status: err.status,
    details: err.details,
    data: { ...err.data, ...extra },
    cause: err.cause,
  });
}

/** Keep provider error messages short and free of anything that looks like a key. */
export function excerpt(text: string, max = 300): string {
  const cleaned = text
    .replace(/\b(sk|pk|rk|key|sess)-[A-Za-z0-9_-]{8,}/g, '$1-<redacted>')
    .replace(/\bBearer\s+\S+/gi, 'Bearer <redacted>')
    .replace(/\s+/g, ' ')
    .trim();
  return cleaned.length > max ? `${cleaned.slice(0, max)}...` : cleaned;
}
