/**
 * Turning a request path into (mode, params, endpoint).
 *
 * Tuning has to survive SDKs: a client is configured with a base URL and appends `/chat/completions`
 * to it, and most SDKs drop a query string from the base URL. So parameters may sit in the mode
 * segment itself, matrix style (`/stream_stall;after=3;latency_ms=50/v1/chat/completions`), as well
 * as in an ordinary query string. The query string wins when both set the same key.
 */

export type Endpoint = 'chat' | 'messages' | 'embeddings' | 'models';

export type Route =
  | { kind: 'index' }
  | { kind: 'requests'; since: number }
  /** GET /stats: requests and 429s per mode. */
  | { kind: 'stats' }
  | { kind: 'api'; mode: string; params: Params; endpoint: Endpoint | null; rest: string }
  | { kind: 'unknown' };

const ENDPOINTS: Record<string, Endpoint> = {
  'v1/chat/completions': 'chat',
  'v1/messages': 'messages',
  'v1/embeddings': 'embeddings',
  'v1/models': 'models',
};

export function parseRoute(rawUrl: string): Route {
  const url = new URL(rawUrl, 'http://lab.invalid');
  const segments = url.pathname.split('/').filter((s) => s !== '');
  if (segments.length === 0 || (segments.length === 1 && segments[0] === 'modes')) return { kind: 'index' };
  if (segments.length === 1 && segments[0] === 'requests') {
    const since = Number(url.searchParams.get('since') ?? '0');
    return { kind: 'requests', since: Number.isInteger(since) && since > 0 ? since : 0 };
  }
  if (segments.length === 1 && segments[0] === 'stats') return { kind: 'stats' };

  let modeSegment = 'healthy';
  let restSegments = segments;
  if (segments[0] !== 'v1') {
    modeSegment = safeDecode(segments[0] ?? '');
    restSegments = segments.slice(1);
  }
  if (restSegments[0] !== 'v1') return { kind: 'unknown' };

  const [mode = '', ...pairs] = modeSegment.split(';');
  const values = new Map<string, string>();
  for (const pair of pairs) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    values.set(eq === -1 ? pair : pair.slice(0, eq), eq === -1 ? '1' : pair.slice(eq + 1));
  }
  for (const [key, value] of url.searchParams) values.set(key, value);

  const rest = restSegments.join('/');
  return { kind: 'api', mode, params: new Params(values), endpoint: ENDPOINTS[rest] ?? null, rest: `/${rest}` };
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch (err) {
    // A malformed escape is the client's problem; keep the raw text so the 404 names what was sent.
    void err;
    return segment;
  }
}

/** A parameter that failed validation; the server answers 400 with this message. */
export class ParamError extends Error {
  override name = 'ParamError';
}

const SIZE_SUFFIX: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export class Params {
  readonly #values: Map<string, string>;

  constructor(values: Map<string, string> = new Map()) {
    this.#values = values;
  }

  has(name: string): boolean {
    return this.#values.has(name);
  }

  str(name: string, fallback: string): string {
    return this.#values.get(name) ?? fallback;
  }

  choice<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const value = this.#values.get(name);
    if (value === undefined) return fallback;
    if ((allowed as readonly string[]).includes(value)) return value as T;
    throw new ParamError(`${name} must be one of ${allowed.join(', ')} (got '${value}')`);
  }

  int(name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
    const value = this.#values.get(name);
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max) {
      throw new ParamError(`${name} must be an integer in [${min}, ${max}] (got '${value}')`);
    }
    return n;
  }

  /** Optional integer: undefined when absent. */
  optionalInt(name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
    return this.has(name) ? this.int(name, 0, min, max) : undefined;
  }

  /** A byte count such as `1048576`, `512k`, `20m` or `5g` (binary multiples). */
  bytes(name: string, fallback: number): number {
    const value = this.#values.get(name);
    if (value === undefined) return fallback;
    const match = /^(\d+)([kmg]?)b?$/i.exec(value.trim());
    const multiplier = SIZE_SUFFIX[(match?.[2] ?? '').toLowerCase()];
    if (!match || multiplier === undefined) throw new ParamError(`${name} must be a byte count like 1048576, 20m or 5g (got '${value}')`);
    return Number(match[1]) * multiplier;
  }
}
