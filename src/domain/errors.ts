/**
 * One error type for the whole system. Every error that crosses a boundary (HTTP, CLI, a step's
 * recorded error, an event) is a RunwardenError with a stable string `code`; unknown throws are
 * coerced once, at the boundary, by `toRunwardenError`. Codes, their statuses and whether they are
 * retryable: error-codes.ts.
 */
import { ERROR_CODES, isErrorCode, type ErrorCode } from './error-codes.ts';

export interface ErrorDetail {
  code: string;
  message: string;
  path?: string;
}

export interface ErrorOptions {
  /** HTTP status when the error reaches the API. @default the code's in ERROR_CODES, else 500 */
  status?: number;
  /** Whether retrying the same operation may succeed. @default the code's in ERROR_CODES, else false */
  retryable?: boolean;
  details?: ErrorDetail[];
  cause?: unknown;
  /** Extra structured facts (never secrets): a hang classification, a provider name, ... */
  data?: Record<string, unknown>;
}

/**
 * Redaction hook, installed once by src/forensics/redact.ts (redaction lives in one place; the domain
 * does not depend on it). Applied to every message at construction and to `data` at serialization,
 * so a secret a tool put into an error never reaches an event, the API or the database.
 */
export interface ErrorRedactor {
  text(s: string): string;
  data(d: Record<string, unknown>): Record<string, unknown>;
}
let redactor: ErrorRedactor | undefined;

export function setErrorRedactor(r: ErrorRedactor | undefined): void {
  redactor = r;
}

export class RunwardenError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retryable: boolean;
  readonly details: ErrorDetail[] | undefined;
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode | (string & {}), message: string, opts: ErrorOptions = {}) {
    super(redactor ? redactor.text(message) : message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RunwardenError';
    this.code = code;
    const known = isErrorCode(code) ? ERROR_CODES[code] : undefined;
    this.status = opts.status ?? known?.status ?? 500;
    this.retryable = opts.retryable ?? known?.retryable ?? false;
    this.details = opts.details;
    this.data = opts.data;
  }

  toJSON(): SerializedError {
    const r = redactor;
    const out: SerializedError = { code: this.code, message: r ? r.text(this.message) : this.message, retryable: this.retryable };
    if (this.details) out.details = r ? this.details.map((d) => ({ ...d, message: r.text(d.message) })) : this.details;
    if (this.data) out.data = r ? r.data(this.data) : this.data;
    return out;
  }
}

/** The shape errors take in the database, in events and in API responses. */
export interface SerializedError {
  code: string;
  message: string;
  retryable?: boolean;
  details?: ErrorDetail[];
  data?: Record<string, unknown>;
}

export const notFound = (what: string, id: string): RunwardenError => new RunwardenError('NOT_FOUND', `${what} ${JSON.stringify(id)} not found`);

/**
 * Coerce anything thrown into a RunwardenError. Tool code throws whatever it likes; an AbortError
 * raised because the step's signal fired is not the tool's failure, so callers check the signal
 * themselves before trusting this classification.
 */
export function toRunwardenError(err: unknown, fallbackCode = 'TOOL_ERROR'): RunwardenError {
  if (err instanceof RunwardenError) return err;
  if (err instanceof Error) {
    const anyErr = err as Error & { code?: unknown; retryable?: unknown };
    const code = typeof anyErr.code === 'string' && /^[A-Za-z][\w.]*$/.test(anyErr.code) ? anyErr.code : fallbackCode;
    return new RunwardenError(code, err.message || err.name, {
      retryable: typeof anyErr.retryable === 'boolean' ? anyErr.retryable : true,
      cause: err,
    });
  }
  const text = typeof err === 'string' ? err : safeStringify(err);
  return new RunwardenError(fallbackCode, `non-Error thrown: ${text}`, { retryable: true });
}

function safeStringify(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.slice(0, 500);
  } catch {
    return String(v);
  }
}
