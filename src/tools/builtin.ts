/** Built-in tools that need nothing but the runtime: echo, sleep, http, wait. */
import { z } from 'zod';
import { traceHeaders } from '../telemetry/hooks.ts';
import { RunwardenError } from '../domain/errors.ts';
import { redactUrl } from '../domain/redact-url.ts';
import { MAX_SIGNAL_NAME, MAX_WAIT_MS, signalNameProblem, WAIT_TOOL, type WaitRequest } from '../domain/signals.ts';
import { defineTool, type ToolDefinition } from './types.ts';

export const echoTool = defineTool({
  name: 'echo',
  description: 'Returns its inputs as its outputs.',
  input: z.record(z.string(), z.unknown()),
  run: (_ctx, input: Record<string, unknown>) => input,
});

export const sleepTool = defineTool({
  name: 'sleep',
  description: 'Waits `ms` milliseconds, honouring the step signal.',
  input: z.object({ ms: z.number().int().min(0).max(86_400_000) }).passthrough(),
  run: (ctx, input: { ms: number }) =>
    new Promise<{ sleptMs: number }>((resolve, reject) => {
      const started = Date.now();
      if (ctx.signal.aborted) {
        reject(ctx.signal.reason as Error);
        return;
      }
      const timer = setTimeout(() => {
        ctx.signal.removeEventListener('abort', onAbort);
        resolve({ sleptMs: Date.now() - started });
      }, input.ms);
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(ctx.signal.reason as Error);
      };
      ctx.signal.addEventListener('abort', onAbort, { once: true });
    }),
});

/**
 * Waits for a signal sent to the run (`POST /runs/:id/signals/:name`, `runwarden signal`). The
 * attempt only hands its inputs back: the engine parks the step, with no worker and no lease, until
 * the signal comes (its payload becomes the step's outputs) or `timeoutMs` passes (`timed_out`).
 */
export const waitTool = defineTool({
  name: WAIT_TOOL,
  description: 'Waits, without a worker, for a signal sent to the run; its payload becomes the outputs. Times out after `timeoutMs`.',
  input: z
    .object({
      signal: z
        .string()
        .min(1)
        .max(MAX_SIGNAL_NAME)
        .refine((s) => signalNameProblem(s) === null, { message: 'not a storable signal name' }),
      timeoutMs: z.number().int().min(1).max(MAX_WAIT_MS),
    })
    .strict(),
  run: (_ctx, input: WaitRequest): WaitRequest => ({ signal: input.signal, timeoutMs: input.timeoutMs }),
});

/** Largest response body the http tool keeps (bytes); beyond it the step fails instead of buffering. */
const HTTP_MAX_BODY = 10 * 1024 * 1024;

export const httpTool = defineTool({
  name: 'http',
  description: 'Makes one HTTP request with fetch; the step signal aborts it.',
  input: z
    .object({
      url: z.string().url(),
      method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('GET'),
      headers: z.record(z.string(), z.string()).optional(),
      body: z.unknown().optional(),
      /** Fail the step on a non-2xx status. @default true */
      failOnStatus: z.boolean().default(true),
    })
    .strict(),
  run: async (ctx, input: { url: string; method: string; headers?: Record<string, string>; body?: unknown; failOnStatus: boolean }) => {
    const started = Date.now();
    // The attempt's trace context goes with the request (when tracing is on); the plan's own headers win.
    const headers: Record<string, string> = { ...traceHeaders(ctx), ...input.headers };
    let body: string | undefined;
    if (input.body !== undefined) {
      body = typeof input.body === 'string' ? input.body : JSON.stringify(input.body);
      if (typeof input.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    const safeUrl = redactUrl(input.url);
    let res: Response;
    try {
      res = await fetch(input.url, { method: input.method, headers, ...(body !== undefined ? { body } : {}), signal: ctx.signal });
    } catch (err) {
      // The step's own abort keeps its error: the worker classifies it as the deadline or a cancel.
      if (ctx.signal.aborted) throw err;
      throw requestFailed(`${input.method} ${safeUrl}`, input.url, err);
    }
    let text: string;
    try {
      text = await readCapped(res, HTTP_MAX_BODY, ctx.signal);
    } catch (err) {
      if (ctx.signal.aborted || err instanceof RunwardenError) throw err;
      throw requestFailed(`${input.method} ${safeUrl} (reading the ${res.status} response body)`, input.url, err);
    }
    if (input.failOnStatus && !res.ok) {
      throw new RunwardenError('HTTP_STATUS', `${input.method} ${safeUrl} answered ${res.status}`, {
        retryable: res.status >= 500 || res.status === 429,
        data: { status: res.status },
      });
    }
    let json: unknown = null;
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        json = JSON.parse(text);
      } catch {
        json = null; // not JSON after all: the text is still returned
      }
    }
    return { status: res.status, headers: Object.fromEntries(res.headers), body: json ?? text, durationMs: Date.now() - started };
  },
});

/** Errnos after which the same request cannot succeed by retrying it. */
const PERMANENT = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'ERR_INVALID_ARG_VALUE', 'CERT_HAS_EXPIRED', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/**
 * fetch rejects with a bare `TypeError: fetch failed`; what happened is on its cause (an errno with
 * the address, `connect ECONNREFUSED 127.0.0.1:8080`, or undici's own `UND_ERR_*`). Both go into
 * the step's error, so a run says why its request failed.
 */
export function requestFailed(what: string, url: string, err: unknown): RunwardenError {
  const cause = (err as { cause?: unknown } | null)?.cause;
  const c = (cause ?? err) as { message?: unknown; code?: unknown; syscall?: unknown; address?: unknown; port?: unknown; errors?: unknown };
  const nested = Array.isArray(c.errors) ? (c.errors as Array<{ message?: unknown }>).map((e) => String(e.message)) : [];
  let reason = typeof c.message === 'string' && c.message !== '' ? c.message : nested.join('; ') || String(cause ?? err);
  let port: string | undefined;
  try {
    port = new URL(url).port || undefined;
  } catch {
    port = undefined;
  }
  // fetch refuses some ports before connecting (the Fetch standard's blocked ports: 1, 9, 25, ...).
  if (reason === 'bad port') reason = `fetch does not connect to port ${port ?? '?'} (a blocked port in the Fetch standard)`;
  const code = typeof c.code === 'string' ? c.code : undefined;
  const data: Record<string, unknown> = {};
  for (const k of ['code', 'syscall', 'address', 'port'] as const) if (typeof c[k] === 'string' || typeof c[k] === 'number') data[k] = c[k];
  return new RunwardenError('HTTP_REQUEST_FAILED', `${what} failed: ${reason}`, {
    retryable: reason.startsWith('fetch does not connect') ? false : code === undefined || !PERMANENT.has(code),
    ...(Object.keys(data).length > 0 ? { data: { cause: data } } : {}),
  });
}

async function readCapped(res: Response, max: number, signal: AbortSignal): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    signal.throwIfAborted();
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw new RunwardenError('HTTP_TOO_LARGE', `response body over ${max} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export const builtinTools: ToolDefinition[] = [echoTool, sleepTool, httpTool, waitTool];
