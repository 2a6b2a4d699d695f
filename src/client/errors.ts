/**
 * The one error the TypeScript client throws (besides the caller's own abort reason): the API's
 * error body when there was an answer, or a client code when there was none.
 */
import type { ApiErrorCode } from '../domain/api-errors.ts';
import type { ErrorDetail } from '../domain/errors.ts';

/**
 * Codes for failures without an API answer: `UNREACHABLE` (connection refused, DNS, reset ...),
 * `TIMEOUT` (the call's deadline passed), `BAD_RESPONSE` (an answer that is not the API's JSON),
 * `STREAM_LOST` (an event stream that could not be resumed within its give-up time).
 */
export const CLIENT_ERROR_CODES = ['UNREACHABLE', 'TIMEOUT', 'BAD_RESPONSE', 'STREAM_LOST'] as const;
export type ClientErrorCode = (typeof CLIENT_ERROR_CODES)[number];

export class RunwardenApiError extends Error {
  /** The API's code (see docs/api.md), or a ClientErrorCode. A newer server may send codes not listed. */
  readonly code: ApiErrorCode | ClientErrorCode | (string & {});
  /** The HTTP status; 0 when no answer arrived. */
  readonly status: number;
  /** One entry per problem (a PLAN_INVALID lists each). */
  readonly details: ErrorDetail[];

  constructor(code: RunwardenApiError['code'], message: string, opts: { status?: number; details?: ErrorDetail[]; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RunwardenApiError';
    this.code = code;
    this.status = opts.status ?? 0;
    this.details = opts.details ?? [];
  }
}

export function isApiError(err: unknown, code?: RunwardenApiError['code']): err is RunwardenApiError {
  return err instanceof RunwardenApiError && (code === undefined || err.code === code);
}

/** Why a fetch failed, in words: connection refused, host not found, reset ... */
export function networkReason(err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${Math.round(timeoutMs / 1000)}s`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const code = typeof cause?.code === 'string' ? cause.code : undefined;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${code})`;
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return `the connection was closed by the server (${code})`;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `connection timed out (${code})`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `network unreachable (${code})`;
    default: {
      const msg = typeof cause?.message === 'string' ? cause.message : err instanceof Error ? err.message : String(err);
      return code !== undefined ? `${msg} (${code})` : msg;
    }
  }
}

/** A non-2xx answer as an error: the API's code, message and details, or BAD_RESPONSE when the body is not the API's. */
export function errorFromResponse(status: number, text: string, what: string): RunwardenApiError {
  let body: { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    body = undefined;
  }
  const e = body?.error;
  if (!e || typeof e.code !== 'string') return new RunwardenApiError('BAD_RESPONSE', `${what} answered HTTP ${status} without an error body (is it a runwarden API?)`, { status });
  const details = Array.isArray(e.details)
    ? (e.details as unknown[]).flatMap((d): ErrorDetail[] => {
        if (d === null || typeof d !== 'object') return [];
        const r = d as Record<string, unknown>;
        return [{ code: typeof r.code === 'string' ? r.code : '', message: typeof r.message === 'string' ? r.message : '', ...(typeof r.path === 'string' ? { path: r.path } : {}) }];
      })
    : [];
  return new RunwardenApiError(e.code, typeof e.message === 'string' ? e.message : `HTTP ${status}`, { status, details });
}
