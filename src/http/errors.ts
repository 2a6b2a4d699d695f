/**
 * The one place where anything thrown inside the HTTP layer becomes the wire format
 * `{ "error": { "code", "message", "details" } }`. Fastify's own errors (FST_ERR_*) are mapped to
 * stable codes here so that clients never see a framework name; anything unknown becomes a 500
 * `INTERNAL` whose message says nothing about the internals (the real error goes to the log).
 */
import { API_ERROR_STATUS, type ApiErrorCode } from '../domain/api-errors.ts';
import { RunwardenError } from '../domain/errors.ts';
import type { ErrorDetail } from '../domain/errors.ts';
import { redactText } from '../forensics/redact.ts';

export interface ErrorBody {
  error: { code: string; message: string; details: ErrorDetail[] };
}

export interface MappedError {
  status: number;
  body: ErrorBody;
  /** True when the error is ours to fix (5xx): the caller logs it. */
  internal: boolean;
}

/** The API's codes and their statuses (one table, in the domain: the client types its errors with it). */
export const HTTP_ERROR_CODES = API_ERROR_STATUS;
export type HttpErrorCode = ApiErrorCode;

export function httpError(code: HttpErrorCode, message: string, details?: ErrorDetail[]): RunwardenError {
  return new RunwardenError(code, message, { details });
}

export function errorBody(code: string, message: string, details: ErrorDetail[] = []): ErrorBody {
  return { error: { code, message, details } };
}

/** Fastify error code -> our code, for the errors a client can cause. */
const FASTIFY_CODES: Record<string, { code: HttpErrorCode; message: string }> = {
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'BODY_TOO_LARGE', message: 'request body is larger than the limit' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'UNSUPPORTED_MEDIA_TYPE', message: 'request bodies must be sent as application/json' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'EMPTY_BODY', message: 'request body is empty' },
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'INVALID_JSON', message: 'request body is not valid JSON' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'INVALID_CONTENT_LENGTH', message: 'request body length does not match its content-length header' },
  FST_ERR_BAD_URL: { code: 'BAD_URL', message: 'the request URL is not valid' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'URI_TOO_LONG', message: 'a path parameter is too long' },
  FST_ERR_NOT_FOUND: { code: 'NOT_FOUND', message: 'route not found' },
  FST_ERR_VALIDATION: { code: 'BAD_REQUEST', message: 'request failed validation' },
};

const GENERIC_INTERNAL = 'internal error; the server log has the details';

export function mapError(err: unknown, opts: { bodyLimitBytes?: number } = {}): MappedError {
  if (err instanceof RunwardenError) {
    const status = Number.isInteger(err.status) && err.status >= 400 && err.status <= 599 ? err.status : 500;
    if (status >= 500) {
      // A RunwardenError raised on purpose with a 5xx (e.g. UNAVAILABLE) carries a message written for
      // users; anything else that reached 500 did so by accident, so say nothing about it.
      const deliberate = status !== 500;
      return {
        status,
        body: deliberate ? errorBody(err.code, err.message, err.details ?? []) : errorBody('INTERNAL', GENERIC_INTERNAL),
        internal: true,
      };
    }
    return { status, body: errorBody(err.code, err.message, err.details ?? []), internal: false };
  }
  const e = err as { code?: unknown; statusCode?: unknown; name?: unknown } | null;
  const fstCode = e && typeof e.code === 'string' ? e.code : undefined;
  if (fstCode !== undefined) {
    const known = FASTIFY_CODES[fstCode];
    if (known) {
      const message = known.code === 'BODY_TOO_LARGE' && opts.bodyLimitBytes !== undefined ? `${known.message} of ${opts.bodyLimitBytes} bytes` : known.message;
      return { status: HTTP_ERROR_CODES[known.code], body: errorBody(known.code, message), internal: false };
    }
  }
  // Errors raised while reading the request stream (client aborted, bad chunk encoding) carry a 4xx
  // statusCode from Fastify; they are the client's doing, never a 500.
  const statusCode = e && typeof e.statusCode === 'number' ? e.statusCode : undefined;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    return { status: statusCode, body: errorBody('BAD_REQUEST', 'the request could not be read'), internal: false };
  }
  return { status: 500, body: errorBody('INTERNAL', GENERIC_INTERNAL), internal: true };
}

/** One line for the server log; never includes request headers or bodies. */
export function describeForLog(err: unknown): string {
  // Stacks and messages of errors that are not ours can carry anything a tool or library put there.
  return redactText(describeRaw(err));
}

function describeRaw(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    const head = `${err.name}${typeof code === 'string' ? ` ${code}` : ''}: ${err.message}`;
    const stack = err.stack ? err.stack.split('\n').slice(1, 8).map((l) => l.trim()).join(' | ') : '';
    return stack ? `${head} @ ${stack}` : head;
  }
  try {
    return `non-Error thrown: ${String(JSON.stringify(err)).slice(0, 300)}`;
  } catch {
    return 'non-Error thrown';
  }
}
