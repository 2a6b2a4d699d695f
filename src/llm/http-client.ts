/**
 * What the OpenAI-compatible and Anthropic providers share: one keep-alive agent per provider, the
 * retry loop around `runHttpAttempt`, JSON and error-status body consumers, usage events.
 */
import type http from 'node:http';
import { RunwardenError } from '../domain/errors.ts';
import { MIN_CONFIGURED_SECRET_LENGTH } from '../domain/secrets.ts';
import { redactUrl } from '../domain/redact-url.ts';
import { excerpt } from './errors.ts';
import { parseRetryAfter, withRetries } from './retry.ts';
import { ERROR_BODY_MAX_BYTES, resolveTimeouts } from './timeouts.ts';
import { ConsumerError, createAgent, runHttpAttempt, type BodyConsumer, type ResponseHead } from './http-attempt.ts';
import type { CallOptions, LlmTimeouts, ProviderType } from './types.ts';
import type { ProviderGate, Slot } from '../flow/gate.ts';
import { registerPending } from './pending.ts';
import { waitedField } from './result.ts';
import type { CapacityHold } from '../flow/capacity.ts';

/** Output tokens charged up front when a request does not cap them (corrected from the usage after). */
export const DEFAULT_OUTPUT_ESTIMATE = 256;

export interface HttpClientInit {
  name: string;
  type: ProviderType;
  /** Parsed base URL (may carry credentials or a query; never printed as is). */
  base: URL;
  timeouts?: Partial<LlmTimeouts>;
  maxRetries: number;
  maxResponseBytes: number;
  /** Sent with every request; may hold secrets, never logged. */
  headers: Record<string, string>;
  dnsServers?: readonly string[];
  /** Provider limits and pauses shared by every worker (src/flow/gate.ts). @default none: calls go at once */
  gate?: ProviderGate;
}

export interface SendArgs<T> {
  /** Path relative to the base URL, e.g. "chat/completions". */
  path: string;
  body: unknown;
  opts: CallOptions;
  model: string;
  stream: boolean;
  accept: string;
  choose: (head: ResponseHead) => BodyConsumer<T>;
}

export interface SendResult<T> {
  value: T;
  retries: number;
  /** HTTP attempts the provider answered or worked on (a refused 429 included): each may be billed. */
  calls: number;
  ttfbMs: number;
  totalMs: number;
  /** How long the call waited for capacity at its provider's gate, in totalMs (0 without a gate). */
  waitedMs: number;
}

const PUBLIC_HEADERS = new Set(['anthropic-version', 'anthropic-beta', 'content-type', 'accept', 'user-agent', 'openai-beta']);

export class HttpClient {
  readonly init: HttpClientInit;
  /** Redacted base URL for display. */
  readonly baseUrl: string;
  private agent: http.Agent | undefined;
  private closed = false;
  /** Header values long enough to be credentials: scrubbed from every error this client throws. */
  private readonly secrets: string[];

  constructor(init: HttpClientInit) {
    this.init = init;
    this.baseUrl = redactUrl(init.base).replace(/\/$/, '');
    this.secrets = Object.entries(init.headers)
      .filter(([name]) => !PUBLIC_HEADERS.has(name.toLowerCase()))
      .flatMap(([, v]) => [v, v.replace(/^Bearer\s+/i, '')])
      .filter((v) => v.length >= MIN_CONFIGURED_SECRET_LENGTH);
    for (const v of [init.base.username, init.base.password, ...init.base.searchParams.values()]) if (v.length >= MIN_CONFIGURED_SECRET_LENGTH) this.secrets.push(v);
    // Validate timeouts once, at construction, so a bad config fails at startup.
    resolveTimeouts(init.timeouts);
  }

  url(path: string): URL {
    const base = new URL(this.init.base.href);
    base.pathname = `${base.pathname.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
    return base;
  }

  async send<T>(a: SendArgs<T>): Promise<SendResult<T>> {
    try {
      return await this.sendUnscrubbed(a);
    } catch (err) {
      throw err instanceof RunwardenError && this.secrets.length > 0 ? scrub(err, this.secrets) : err;
    }
  }

  private async sendUnscrubbed<T>(a: SendArgs<T>): Promise<SendResult<T>> {
    if (this.closed) {
      throw new RunwardenError('PROVIDERS_CLOSED', `provider ${this.init.name} is closed`, { data: { provider: this.init.name } });
    }
    const timeouts = resolveTimeouts(this.init.timeouts, a.opts.timeouts);
    const startedAt = Date.now();
    // Time spent waiting for capacity at the provider's gate moves the step's deadline (the attempt's
    // clock stands still meanwhile, src/worker/attempt-clock.ts), and this call's budget with it.
    const clock = { waitedMs: 0 };
    const budget = { base: Math.min(a.opts.deadline, startedAt + timeouts.totalMs) };
    const retryOptions = {
      signal: a.opts.signal,
      get budgetDeadline() {
        return budget.base + clock.waitedMs;
      },
      maxRetries: this.init.maxRetries,
      beforeAttempt: (attempt: number) => a.opts.onEvent?.('llm.request', { provider: this.init.name, model: a.model, stream: a.stream, attempt }),
    };
    const url = this.url(a.path);
    const body = Buffer.from(JSON.stringify(a.body));
    this.agent ??= createAgent(url);
    const agent = this.agent;
    let ttfbMs = 0;
    let calls = 0;
    const attempts = withRetries(
      retryOptions,
      async (attempt) => {
        const slot = await this.slot(a, body.byteLength, retryOptions.budgetDeadline, url, attempt, clock);
        slot.sent();
        let r;
        try {
          r = await runHttpAttempt(
            {
              url,
              method: 'POST',
              headers: { 'content-type': 'application/json', accept: a.accept, 'user-agent': 'runwarden', ...this.init.headers },
              body,
              agent,
              dnsServers: this.init.dnsServers,
              signal: a.opts.signal,
              stepDeadline: a.opts.deadline + clock.waitedMs,
              budgetDeadline: retryOptions.budgetDeadline,
              timeouts,
              maxBytes: this.init.maxResponseBytes,
              provider: this.init.name,
              model: a.model,
              attempt,
            },
            a.choose,
          );
        } catch (err) {
          slot.release();
          if (reachedProvider(err)) calls++;
          this.pauseOn(err);
          throw err;
        }
        slot.release(usedTokens(r.value));
        calls++;
        ttfbMs = r.ttfbMs;
        return r.value;
      },
    );
    let settled: { value: T; retries: number };
    try {
      settled = await attempts;
    } catch (err) {
      // A failed call may still have been paid for (a stream cut after content, a retried 429):
      // its llm.usage says how many requests reached the provider, so run totals count them.
      if (calls > 0) {
        const retries = err instanceof RunwardenError && typeof err.data?.retries === 'number' ? err.data.retries : calls - 1;
        a.opts.onEvent?.('llm.usage', {
          provider: this.init.name,
          model: a.model,
          failed: true,
          code: err instanceof RunwardenError ? err.code : 'unknown',
          calls,
          inputTokens: 0,
          outputTokens: 0,
          totalMs: Date.now() - startedAt,
          retries,
          ...waitedField(clock.waitedMs),
        });
      }
      throw err;
    }
    return { value: settled.value, retries: settled.retries, calls, ttfbMs, totalMs: Date.now() - startedAt, waitedMs: clock.waitedMs };
  }

  /**
   * Waits for the provider's gate, if it has one: a slot under its limits, or the end of a pause.
   * While it waits the call shows as in phase `limit` (hang reports) and the step gets one
   * `step.waiting` event per wait, naming the limit.
   */
  private async slot<T>(a: SendArgs<T>, bodyBytes: number, budgetDeadline: number, url: URL, attempt: number, clock: { waitedMs: number }): Promise<Slot> {
    const gate = this.init.gate;
    if (!gate) return { sent: () => undefined, release: () => undefined };
    const req = isRecord(a.body) ? a.body : {};
    const maxOut = num(req.max_tokens) || num(req.max_completion_tokens) || DEFAULT_OUTPUT_ESTIMATE;
    const tokens = Math.ceil(bodyBytes / 4) + (a.path === 'embeddings' ? 0 : maxOut);
    let unregister: (() => void) | undefined;
    let announced = false;
    // The step this call runs in, if any: its deadline stands still while the call waits here.
    const capacity = a.opts.capacity;
    let hold: CapacityHold | undefined;
    try {
      return await gate.acquire({
        signal: a.opts.signal,
        tokens,
        leaseUntil: budgetDeadline,
        onWait: (wait) => {
          if (wait === null) return;
          if (capacity) {
            const w = { provider: this.init.name, limit: wait.limit, used: wait.used, cap: wait.cap, retryAt: wait.retryAt };
            if (hold) hold.update(w);
            else hold = capacity.hold(w);
          }
          if (unregister) return;
          const since = Date.now();
          unregister = registerPending({
            signal: a.opts.signal,
            snapshot: (now) => ({
              provider: this.init.name, model: a.model, method: 'POST', url: redactUrl(url), phase: 'limit', attempt, startedAt: since, msInPhase: now - since,
              bytesIn: 0, bytesOut: 0, msSinceLastByte: -1, waitingFor: { limit: wait.limit, used: wait.used, cap: wait.cap, retryAt: new Date(wait.retryAt).toISOString() },
            }),
          });
          if (!announced) {
            announced = true;
            a.opts.onEvent?.('step.waiting', { provider: this.init.name, limit: wait.limit, used: wait.used, cap: wait.cap, retryAt: new Date(wait.retryAt).toISOString() });
          }
        },
      });
    } finally {
      unregister?.();
      if (hold) clock.waitedMs += hold.end();
    }
  }

  /** A 429 or 529 that says when to come back pauses the provider for every worker until then. */
  private pauseOn(err: unknown): void {
    if (!this.init.gate || !(err instanceof RunwardenError)) return;
    const wait = err.data?.retryAfterMs;
    const status = err.data?.status;
    if (typeof wait === 'number' && wait > 0 && (status === 429 || status === 529)) this.init.gate.pause(Date.now() + wait);
  }

  close(): void {
    this.closed = true;
    this.agent?.destroy();
    this.agent = undefined;
  }
}

/**
 * Whether a failed attempt reached the provider: it answered (any status, a 429 included), was
 * sending a body, or held the request without answering (it may be generating). Connect failures
 * and a request lost on a closing keep-alive socket never reached it.
 */
function reachedProvider(err: unknown): boolean {
  if (!(err instanceof RunwardenError)) return false;
  const d = err.data ?? {};
  if (typeof d.status === 'number') return true;
  if (d.phase === 'body' || d.phase === 'stream') return true;
  return err.code === 'llm.no_headers';
}

/** A copy of `err` with every occurrence of a secret replaced, in its message and data. */
function scrub(err: RunwardenError, secrets: string[]): RunwardenError {
  const clean = (text: string): string => secrets.reduce((t, secret) => t.split(secret).join('<redacted>'), text);
  const deep = (v: unknown): unknown => {
    if (typeof v === 'string') return clean(v);
    if (Array.isArray(v)) return v.map(deep);
    if (isRecord(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, deep(x)]));
    return v;
  };
  const message = clean(err.message);
  const data = err.data === undefined ? undefined : (deep(err.data) as Record<string, unknown>);
  if (message === err.message && JSON.stringify(data) === JSON.stringify(err.data)) return err;
  return new RunwardenError(err.code, message, { status: err.status, retryable: err.retryable, details: err.details, data });
}

export function isSuccess(head: ResponseHead): boolean {
  return head.status >= 200 && head.status < 300;
}

export function contentType(head: ResponseHead): string {
  return String(head.headers['content-type'] ?? '').toLowerCase();
}

/** Buffers a (bounded) body and parses it as JSON; `llm.malformed` when it is not. */
export function jsonConsumer<T>(map: (json: unknown) => T): BodyConsumer<T> {
  const chunks: Buffer[] = [];
  return {
    streaming: false,
    onData(chunk) {
      chunks.push(chunk);
    },
    onEnd() {
      const text = Buffer.concat(chunks).toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch (err) {
        throw new ConsumerError(
          'llm.malformed',
          `response body is not valid JSON (${text.length} chars: ${excerpt(text, 120)}; ${err instanceof Error ? err.message : 'parse error'})`,
        );
      }
      return map(json);
    },
  };
}

/**
 * Reads up to ERROR_BODY_MAX_BYTES of an error response and throws the typed error for its status:
 * 429 rate_limited, 5xx and 529 overloaded (both retried), 401/403 auth, 400/404/413/422 bad_request.
 */
export function errorStatusConsumer(head: ResponseHead): BodyConsumer<never> {
  const chunks: Buffer[] = [];
  let size = 0;
  const raise = (): never => {
    const text = Buffer.concat(chunks).toString('utf8');
    throw statusError(head, text);
  };
  return {
    streaming: false,
    onData(chunk) {
      if (size >= ERROR_BODY_MAX_BYTES) return;
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= ERROR_BODY_MAX_BYTES) raise();
    },
    onEnd: raise,
  };
}

export function statusError(head: ResponseHead, bodyText: string): ConsumerError {
  const status = head.status;
  const providerMessage = providerErrorMessage(bodyText);
  const extra: Record<string, unknown> = { status };
  if (providerMessage) extra.providerMessage = providerMessage;
  const suffix = providerMessage ? `: ${providerMessage}` : '';
  if (status === 429) {
    const retryAfterMs = parseRetryAfter(head.headers);
    if (retryAfterMs !== undefined) extra.retryAfterMs = retryAfterMs;
    const raw = head.headers['retry-after'] ?? head.headers['retry-after-ms'];
    if (raw !== undefined && retryAfterMs === undefined) extra.retryAfterIgnored = excerpt(String(raw), 60);
    return new ConsumerError('llm.rate_limited', `rate limited (429)${suffix}`, { retryable: true, extra });
  }
  if (status >= 500) {
    const retryAfterMs = parseRetryAfter(head.headers);
    if (retryAfterMs !== undefined) extra.retryAfterMs = retryAfterMs;
    return new ConsumerError('llm.overloaded', `server error ${status}${suffix}`, { retryable: true, extra });
  }
  if (status === 401 || status === 403) {
    return new ConsumerError('llm.auth', `authentication failed (${status}); check the provider's API key variable${suffix}`, { extra });
  }
  if (status === 400 || status === 404 || status === 413 || status === 422) {
    return new ConsumerError('llm.bad_request', `request rejected (${status})${suffix}`, { extra });
  }
  return new ConsumerError('llm.http_error', `unexpected HTTP status ${status}${suffix}`, { extra });
}

function providerErrorMessage(text: string): string | undefined {
  const trimmed = text.trim();
  if (trimmed === '') return undefined;
  try {
    const json = JSON.parse(trimmed) as unknown;
    if (isRecord(json)) {
      const e = json.error;
      if (isRecord(e) && typeof e.message === 'string') return excerpt(e.message);
      if (typeof e === 'string') return excerpt(e);
      if (typeof json.message === 'string') return excerpt(json.message);
    }
  } catch (err) {
    // Not JSON (an HTML error page from a proxy, say): fall through to a text excerpt.
    void err;
  }
  return excerpt(trimmed.replace(/<[^>]*>/g, ' '), 200);
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The tokens a call's answer says it used (chat: input + output; embeddings: input), if it says. */
function usedTokens(value: unknown): number | undefined {
  if (!isRecord(value) || typeof value.inputTokens !== 'number') return undefined;
  return value.inputTokens + num(value.outputTokens);
}

export function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}
