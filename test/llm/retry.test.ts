import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { pendingCalls } from '../../src/llm/pending.ts';
import { parseRetryAfter } from '../../src/llm/retry.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import type { CallOptions, LlmProvider, ProviderConfig } from '../../src/llm/types.ts';
import { chunk, healthyStream, rejectsWith, sse, startServer, waitFor, type Handler, type TestServer } from './helpers.ts';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

async function serve(handler: Handler): Promise<TestServer> {
  const s = await startServer(handler);
  open.push(s);
  return s;
}

function provider(baseUrl: string, over: Partial<ProviderConfig> = {}): LlmProvider {
  const reg = new ProviderRegistry({ env: {}, providers: { t: { type: 'openai', baseUrl, maxRetries: 2, ...over } } });
  open.push(reg);
  return reg.get('t');
}

const hello = { messages: [{ role: 'user' as const, content: 'hi' }] };

function opts(ms = 5000, extra: Partial<CallOptions> = {}): CallOptions {
  return { signal: new AbortController().signal, deadline: Date.now() + ms, ...extra };
}

/** 429 with `headers` for the first `count` requests, then a healthy stream. */
function limitedThenOk(count: number, headers: Record<string, string>): Handler {
  return (_req, res, _body, n) => {
    if (n <= count) {
      res.writeHead(429, { 'content-type': 'application/json', ...headers });
      res.end('{"error":{"message":"slow down"}}');
      return;
    }
    healthyStream(res);
  };
}

describe('parseRetryAfter', () => {
  const now = Date.parse('2025-01-01T00:00:00Z');
  it('reads every form', () => {
    assert.equal(parseRetryAfter({ 'retry-after': '3' }, now), 3000);
    assert.equal(parseRetryAfter({ 'retry-after': '1.5' }, now), 1500);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '250' }, now), 250);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' }, now), 250, 'ms wins');
    assert.equal(parseRetryAfter({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }, now), 5000);
    assert.equal(parseRetryAfter({ 'retry-after': 'Tue, 31 Dec 2024 23:00:00 GMT' }, now), 0, 'a past date means now');
  });
  it('ignores garbage, negatives and absence', () => {
    assert.equal(parseRetryAfter({ 'retry-after': 'soon-ish' }, now), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': '-5' }, now), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': '' }, now), undefined);
    assert.equal(parseRetryAfter({ 'retry-after-ms': 'abc' }, now), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': '12 34' }, now), undefined);
    assert.equal(parseRetryAfter({}, now), undefined);
  });
});

describe('retries', () => {
  it('honours retry-after (seconds) and emits one llm.request per attempt, llm.usage once', async () => {
    const s = await serve(limitedThenOk(1, { 'retry-after': '0.3' }));
    const p = provider(`${s.url}/v1`);
    const events: Array<[string, Record<string, unknown>]> = [];
    const t0 = Date.now();
    const r = await p.chat(hello, opts(5000, { onEvent: (t, d) => events.push([t, d]) }));
    const ms = Date.now() - t0;
    assert.ok(ms >= 295, `waited only ${ms} ms`);
    assert.equal(r.retries, 1);
    assert.deepEqual(
      events.map(([t, d]) => `${t}:${String(d.attempt ?? d.retries)}`),
      ['llm.request:1', 'llm.request:2', 'llm.usage:1'],
    );
    const usage = events[2]![1];
    assert.equal(usage.provider, 't');
    assert.equal(usage.inputTokens, 11);
    assert.equal(usage.outputTokens, 7);
    assert.equal(typeof usage.ttfbMs, 'number');
    assert.equal(typeof usage.totalMs, 'number');
  });

  it('honours retry-after-ms', async () => {
    const s = await serve(limitedThenOk(2, { 'retry-after-ms': '150' }));
    const p = provider(`${s.url}/v1`);
    const t0 = Date.now();
    const r = await p.chat(hello, opts());
    assert.ok(Date.now() - t0 >= 295);
    assert.equal(r.retries, 2);
  });

  it('honours an HTTP date', async () => {
    const at = new Date(Math.ceil((Date.now() + 200) / 1000) * 1000);
    const s = await serve(limitedThenOk(1, { 'retry-after': at.toUTCString() }));
    const p = provider(`${s.url}/v1`);
    await p.chat(hello, opts());
    assert.ok(Date.now() >= at.getTime() - 5, 'retried no earlier than the date');
  });

  for (const [label, headers] of [
    ['garbage', { 'retry-after': 'whenever' }],
    ['none', {}],
  ] as const) {
    it(`falls back to capped, jittered backoff when retry-after is ${label}`, async () => {
      const s = await serve(limitedThenOk(1, headers));
      const p = provider(`${s.url}/v1`);
      const t0 = Date.now();
      const r = await p.chat(hello, opts());
      assert.equal(r.retries, 1);
      assert.ok(Date.now() - t0 < 700, 'first backoff is at most 500 ms');
    });
  }

  it('never sleeps past the budget: retry-after 3600 with 2.5 s left gives up at once', async () => {
    const s = await serve(limitedThenOk(99, { 'retry-after': '3600' }));
    const p = provider(`${s.url}/v1`);
    const { err, ms } = await rejectsWith(p.chat(hello, opts(2500)), 'llm.rate_limited');
    assert.ok(ms < 200, `took ${ms} ms`);
    assert.match(err.message, /3600 s/);
    assert.match(err.message, /remain/);
    assert.equal(err.data!.retryAfterMs, 3_600_000);
    assert.equal(s.requests.length, 1);
  });

  it('5xx: retried with backoff, then a clear failure', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"overloaded"}}');
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.overloaded');
    assert.match(err.message, /gave up after 2 retries/);
    assert.equal(err.data!.retries, 2);
    assert.equal(s.requests.length, 3);
  });

  it('5xx then success', async () => {
    const s = await serve((_req, res, _b, n) => {
      if (n <= 2) {
        res.writeHead(529, { 'content-type': 'text/html' });
        res.end('<h1>overloaded</h1>');
        return;
      }
      healthyStream(res);
    });
    const r = await provider(`${s.url}/v1`).chat(hello, opts());
    assert.equal(r.retries, 2);
    assert.equal(r.text, 'Hello, world');
  });

  it('the backoff sleep is abortable and leaves no timer', async () => {
    const s = await serve(limitedThenOk(99, { 'retry-after-ms': '5000' }));
    const p = provider(`${s.url}/v1`);
    const ac = new AbortController();
    const call = p.chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => pendingCalls(ac.signal)[0]?.phase === 'backoff', 2000, 'the backoff sleep to start');
    const timersBefore = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const t0 = Date.now();
    ac.abort();
    const { err } = await rejectsWith(call, 'llm.rate_limited');
    assert.ok(Date.now() - t0 < 50);
    assert.equal(err.data!.phase, 'backoff');
    assert.equal(err.data!.aborted, true);
    assert.equal(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length, timersBefore - 1);
  });

  it('does not retry once content has streamed', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('some'), () => setTimeout(() => res.socket?.resetAndDestroy(), 10));
    });
    const p = provider(`${s.url}/v1`);
    await rejectsWith(p.chat(hello, opts()), 'llm.truncated');
    assert.equal(s.requests.length, 1);
  });

  it('does not retry client errors', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error":{"message":"bad"}}');
    });
    await rejectsWith(provider(`${s.url}/v1`).chat(hello, opts()), 'llm.bad_request');
    assert.equal(s.requests.length, 1);
  });
});
