/**
 * The CLI's HTTP client. Every request carries a deadline (AbortSignal.timeout): the CLI must never
 * hang on a dead or stalled server. Failures become CliErrors with the exit code the CLI contract
 * names: 3 when the API cannot be reached, 2 for a 4xx (the error code, message and every detail are
 * printed), 1 for a 5xx.
 */
import { redactUrl } from '../config/redact.ts';
import { CliError, EXIT } from './io.ts';

export const DEFAULT_API_URL = 'http://127.0.0.1:7400';
/** Deadline of one API request, response body included. */
export const REQUEST_TIMEOUT_MS = 15_000;

export interface ApiErrorBody {
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

export function apiUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  const raw = flag ?? (env.RUNWARDEN_URL !== undefined && env.RUNWARDEN_URL.trim() !== '' ? env.RUNWARDEN_URL : DEFAULT_API_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new CliError(EXIT.USAGE, `not a valid API URL: ${JSON.stringify(redactUrl(raw))}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CliError(EXIT.USAGE, `the API URL must be http:// or https://, got ${redactUrl(raw)}`);
  if (url.username !== '' || url.password !== '') throw new CliError(EXIT.USAGE, 'the API URL must not contain credentials; set RUNWARDEN_TOKEN instead');
  return url.href.replace(/\/+$/, '');
}

export class ApiClient {
  readonly baseUrl: string;
  readonly #token: string | undefined;
  readonly #timeoutMs: number;

  constructor(baseUrl: string, token: string | undefined, timeoutMs = REQUEST_TIMEOUT_MS) {
    this.baseUrl = baseUrl;
    this.#token = token !== undefined && token.trim() !== '' ? token : undefined;
    this.#timeoutMs = timeoutMs;
  }

  static fromEnv(urlFlag: string | undefined, env: Record<string, string | undefined>): ApiClient {
    return new ApiClient(apiUrl(urlFlag, env), env.RUNWARDEN_TOKEN);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.#token !== undefined) h.authorization = `Bearer ${this.#token}`;
    return h;
  }

  async get<T>(path: string, query?: Record<string, string | number | undefined>): Promise<T> {
    return this.request<T>('GET', withQuery(path, query));
  }

  async post<T>(path: string, body?: unknown): Promise<{ status: number; body: T }> {
    return this.requestWithStatus<T>('POST', path, body);
  }

  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.requestWithStatus<T>(method, path, body)).body;
  }

  async requestWithStatus<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const url = `${this.baseUrl}${path}`;
    const init: RequestInit = { method, headers: this.headers(body === undefined ? {} : { 'content-type': 'application/json' }), signal: AbortSignal.timeout(this.#timeoutMs) };
    if (body !== undefined) init.body = JSON.stringify(body);
    let res: Response;
    let text: string;
    try {
      res = await fetch(url, init);
      text = await res.text();
    } catch (err) {
      throw unreachable(this.baseUrl, err, this.#timeoutMs);
    }
    if (!res.ok) throw apiError(res.status, text, this.baseUrl);
    try {
      return { status: res.status, body: JSON.parse(text) as T };
    } catch {
      throw new CliError(EXIT.FAILED, `the server at ${this.baseUrl} answered ${method} ${path} with something that is not JSON (is it a runwarden API?)`);
    }
  }
}

export function withQuery(path: string, query?: Record<string, string | number | undefined>): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
  const s = params.toString();
  return s === '' ? path : `${path}?${s}`;
}

/** A fetch failure: connection refused, DNS, TLS, timeout. Says which, with the URL. */
export function unreachable(baseUrl: string, err: unknown, timeoutMs: number): CliError {
  return new CliError(EXIT.UNREACHABLE, `cannot reach the runwarden API at ${baseUrl}: ${networkReason(err, timeoutMs)}`, {
    lines: ['is `runwarden start` running there? (set the address with --url or RUNWARDEN_URL)'],
  });
}

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

/** A non-2xx answer: the error body's code, message and details, or the bare status. */
export function apiError(status: number, text: string, baseUrl: string): CliError {
  let body: ApiErrorBody | undefined;
  try {
    body = JSON.parse(text) as ApiErrorBody;
  } catch {
    body = undefined;
  }
  const e = body?.error;
  const exitCode = status >= 500 ? EXIT.FAILED : EXIT.USAGE;
  if (!e || typeof e.code !== 'string') {
    return new CliError(exitCode, `the API at ${baseUrl} answered HTTP ${status}`);
  }
  const lines: string[] = [];
  if (Array.isArray(e.details)) {
    for (const d of e.details as Array<{ code?: unknown; path?: unknown; message?: unknown }>) {
      const path = typeof d.path === 'string' && d.path !== '' ? `${d.path}: ` : '';
      const msg = typeof d.message === 'string' ? d.message : JSON.stringify(d);
      const code = typeof d.code === 'string' ? ` (${d.code})` : '';
      lines.push(`  - ${path}${msg}${code}`);
    }
  }
  if (e.code === 'UNAUTHORIZED') lines.push('set RUNWARDEN_TOKEN to the token the server was started with');
  return new CliError(exitCode, `${e.code}: ${typeof e.message === 'string' ? e.message : `HTTP ${status}`}`, { lines });
}
