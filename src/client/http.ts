/**
 * One JSON request to the API under a deadline and the caller's signal: the part of the client
 * (and of the CLI, which uses it) that talks to `fetch`. A call ends one of four ways: the parsed
 * body, a RunwardenApiError with the API's code, a RunwardenApiError with a client code
 * (UNREACHABLE, TIMEOUT, BAD_RESPONSE), or the caller's abort reason.
 */
import { redactUrl } from '../config/redact.ts';
import { errorFromResponse, networkReason, RunwardenApiError } from './errors.ts';

/** Deadline of one request, response body included, unless the call or the client says otherwise. */
export const DEFAULT_TIMEOUT_MS = 15_000;

export interface CallOptions {
  /** Aborts the call; it then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Deadline of this call. @default the client's timeoutMs (15000) */
  timeoutMs?: number;
}

export interface HttpInit {
  baseUrl: string;
  token?: string | undefined;
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/** `http(s)://host[:port][/prefix]` without a trailing slash; credentials in the URL are refused (they would be logged). */
export function normalizeBaseUrl(raw: string): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new RunwardenApiError('BAD_REQUEST', `not a valid API URL: ${JSON.stringify(redactUrl(raw))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new RunwardenApiError('BAD_REQUEST', `the API URL must be http:// or https://, got ${redactUrl(raw)}`);
  if (url.username !== '' || url.password !== '') throw new RunwardenApiError('BAD_REQUEST', 'the API URL must not contain credentials; pass the token as `token`');
  return url.href.replace(/\/+$/, '');
}

export function withQuery(path: string, query?: Record<string, string | number | undefined>): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s === '' ? path : `${path}?${s}`;
}

export class HttpCore {
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly fetch: typeof fetch;
  readonly #token: string | undefined;

  constructor(init: HttpInit) {
    this.baseUrl = normalizeBaseUrl(init.baseUrl);
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.fetch = init.fetch ?? globalThis.fetch.bind(globalThis);
    this.#token = init.token !== undefined && init.token.trim() !== '' ? init.token : undefined;
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.#token !== undefined) h.authorization = `Bearer ${this.#token}`;
    return h;
  }

  /** `method path` with a JSON body (if any); resolves with the status and the parsed JSON body of a 2xx. */
  async request<T>(method: string, path: string, body?: unknown, call: CallOptions = {}): Promise<{ status: number; body: T }> {
    const timeoutMs = call.timeoutMs ?? this.timeoutMs;
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, deadline]) : deadline;
    const what = `the runwarden API at ${this.baseUrl}`;
    const init: RequestInit = { method, headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res: Response;
    let text: string;
    try {
      res = await this.fetch(`${this.baseUrl}${path}`, init);
      text = await res.text();
    } catch (err) {
      throw this.failure(err, call.signal, deadline, timeoutMs, `${method} ${path}`);
    }
    if (res.status < 200 || res.status > 299) throw errorFromResponse(res.status, text, what);
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch (err) {
      throw new RunwardenApiError('BAD_RESPONSE', `${what} answered ${method} ${path} with something that is not JSON (is it a runwarden API?)`, { status: res.status, cause: err });
    }
  }

  /** What a failed fetch becomes: the caller's abort reason, TIMEOUT, or UNREACHABLE with the reason in words. */
  failure(err: unknown, callerSignal: AbortSignal | undefined, deadline: AbortSignal, timeoutMs: number, what: string): unknown {
    if (callerSignal?.aborted) return callerSignal.reason;
    if (deadline.aborted) return new RunwardenApiError('TIMEOUT', `no answer from the runwarden API at ${this.baseUrl} to ${what} within ${timeoutMs} ms`, { cause: err });
    return new RunwardenApiError('UNREACHABLE', `cannot reach the runwarden API at ${this.baseUrl}: ${networkReason(err, timeoutMs)}`, { cause: err });
  }
}
