/**
 * The CLI's HTTP client: the TypeScript client's request core (src/client/http.ts: a deadline on
 * every request, so the CLI never hangs on a dead or stalled server) with its failures turned into
 * CliErrors with the exit code the CLI contract names: 3 when the API cannot be reached, 2 for a
 * 4xx (the error code, message and every detail are printed), 1 for a 5xx.
 */
import { RunwardenApiError } from '../client/errors.ts';
import { HttpCore, normalizeBaseUrl, withQuery } from '../client/http.ts';
import { CliError, EXIT } from './io.ts';

export { networkReason } from '../client/errors.ts';

export const DEFAULT_API_URL = 'http://127.0.0.1:7400';
/** Deadline of one API request, response body included. */
export const REQUEST_TIMEOUT_MS = 15_000;

export function apiUrl(flag: string | undefined, env: Record<string, string | undefined>): string {
  const raw = flag ?? (env.RUNWARDEN_URL !== undefined && env.RUNWARDEN_URL.trim() !== '' ? env.RUNWARDEN_URL : DEFAULT_API_URL);
  try {
    return normalizeBaseUrl(raw);
  } catch (err) {
    throw new CliError(EXIT.USAGE, (err as Error).message.replace('pass the token as `token`', 'set RUNWARDEN_TOKEN instead'));
  }
}

export class ApiClient {
  readonly baseUrl: string;
  readonly http: HttpCore;

  constructor(baseUrl: string, token: string | undefined, timeoutMs = REQUEST_TIMEOUT_MS) {
    this.http = new HttpCore({ baseUrl, token, timeoutMs });
    this.baseUrl = this.http.baseUrl;
  }

  static fromEnv(urlFlag: string | undefined, env: Record<string, string | undefined>): ApiClient {
    return new ApiClient(apiUrl(urlFlag, env), env.RUNWARDEN_TOKEN);
  }

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.http.headers(extra);
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
    try {
      return await this.http.request<T>(method, path, body);
    } catch (err) {
      throw toCliError(err);
    }
  }
}

/**
 * The client's errors as the CLI reports them: no answer (UNREACHABLE, TIMEOUT, STREAM_LOST) exits 3
 * with a hint, a 4xx exits 2 with every detail, anything else 1.
 */
export function toCliError(err: unknown): unknown {
  if (!(err instanceof RunwardenApiError)) return err;
  if (err.status === 0 && err.code !== 'BAD_RESPONSE') {
    return new CliError(EXIT.UNREACHABLE, err.message, { lines: ['is `runwarden start` running there? (set the address with --url or RUNWARDEN_URL)'] });
  }
  const lines = err.details.map((d) => `  - ${d.path ? `${d.path}: ` : ''}${d.message}${d.code ? ` (${d.code})` : ''}`);
  if (err.code === 'UNAUTHORIZED') lines.push('set RUNWARDEN_TOKEN to the token the server was started with');
  const exitCode = err.status >= 400 && err.status < 500 ? EXIT.USAGE : EXIT.FAILED;
  return new CliError(exitCode, err.code === 'BAD_RESPONSE' ? err.message : `${err.code}: ${err.message}`, { lines });
}
