/**
 * Every network failure mode against small real servers: classified with the right code, within its
 * deadline plus a small slack, and leaving no socket open on either side.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, afterEach, describe, it } from 'node:test';
import { pendingCalls } from '../../src/llm/pending.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import type { CallOptions, LlmProvider, ProviderConfig } from '../../src/llm/types.ts';
import {
  DONE,
  FINISH,
  USAGE,
  chunk,
  completionJson,
  healthyStream,
  rejectsWith,
  sse,
  startServer,
  startSilentDns,
  tcpHandles,
  waitFor,
  type Handler,
  type TestServer,
} from './helpers.ts';

/*
 * Each limit test proves which limit ended the call (`data.limit`, the phase) with every other limit
 * far away, and that it did not fire early; how soon after its limit a call ends is measured by
 * bench/llm-limits.ts, not asserted here (a loaded machine delays timers).
 */

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});
after(async () => {
  // Every server and provider is closed: nothing may keep the process alive. Handles close
  // asynchronously (libuv), so wait briefly for the count to reach zero.
  await waitFor(() => tcpHandles() === 0, 2000, `no TCP handles (left: ${process.getActiveResourcesInfo().join(', ')})`);
});

async function serve(handler: Handler): Promise<TestServer> {
  const s = await startServer(handler);
  open.push(s);
  return s;
}

function provider(baseUrl: string, over: Partial<ProviderConfig> = {}): LlmProvider {
  const reg = new ProviderRegistry({ env: {}, providers: { t: { type: 'openai', baseUrl, maxRetries: 0, ...over } } });
  open.push(reg);
  return reg.get('t');
}

function opts(ms = 5000, extra: Partial<CallOptions> = {}): CallOptions {
  return { signal: new AbortController().signal, deadline: Date.now() + ms, ...extra };
}

const hello = { messages: [{ role: 'user' as const, content: 'hi' }] };

describe('deadlines by phase', () => {
  it('no headers -> llm.no_headers at headersMs, socket closed', async () => {
    const s = await serve(() => {
      /* never answer */
    });
    const p = provider(`${s.url}/v1?api_key=SECRET`, { timeouts: { headersMs: 300 } });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'llm.no_headers');
    assert.ok(ms >= 295, `fired early: ${ms} ms`);
    const d = err.data!;
    assert.equal(d.phase, 'headers');
    assert.equal(d.limit, 'headers');
    assert.equal(d.aborted, false);
    assert.equal(d.msSinceLastByte, -1);
    assert.ok((d.bytesOut as number) > 0);
    assert.equal(d.url, `${s.url}/v1/chat/completions?api_key=[redacted]`);
    assert.ok(!JSON.stringify(err.data).includes('SECRET'), 'the key in the query is not in the error');
    assert.deepEqual(Object.keys(d.classification as object).sort(), ['code', 'summary']);
    assert.equal((d.classification as { code: string }).code, 'llm.no_headers');
    assert.ok(!JSON.stringify(err.toJSON()).includes('SECRET'));
    assert.ok(!err.message.includes('SECRET'));
    await waitFor(() => s.closed === s.accepted && s.accepted === 1, 1000, 'server to see the socket close');
  });

  it('headers then a stalled non-streaming body -> llm.body_stall', async () => {
    const s = await serve((_req, res) => {
      const body = completionJson('x'.repeat(200));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.write(body.slice(0, 50));
    });
    const p = provider(`${s.url}/v1`, { timeouts: { idleMs: 300 } });
    const { err } = await rejectsWith(p.chat({ ...hello, stream: false }, opts()), 'llm.body_stall');
    assert.equal(err.data!.phase, 'body');
    assert.equal(err.data!.limit, 'idle');
    assert.equal(err.data!.status, 200);
    assert.ok((err.data!.bytesIn as number) > 50);
    await waitFor(() => s.closed === s.accepted, 1000, 'socket close');
  });

  it('stream stalls after content -> llm.stream_idle at idleMs', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('Hel'));
      res.write(chunk('lo'));
    });
    const p = provider(`${s.url}/v1`, { timeouts: { idleMs: 300 } });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'llm.stream_idle');
    assert.ok(ms >= 295, `fired early: ${ms} ms`);
    assert.equal(err.data!.phase, 'stream');
    assert.equal(err.data!.limit, 'idle');
    assert.ok((err.data!.msSinceLastByte as number) >= 290);
    await waitFor(() => s.closed === s.accepted, 1000, 'socket close');
  });

  it('stream stalls before the first content -> llm.stream_idle at firstContentMs', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(`data: ${JSON.stringify({ choices: [{ index: 0, delta: { role: 'assistant' }, finish_reason: null }] })}\n\n`);
    });
    const p = provider(`${s.url}/v1`, { timeouts: { firstContentMs: 300, idleMs: 10_000 } });
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.stream_idle');
    assert.equal(err.data!.limit, 'first_content');
  });

  it('pings forever -> llm.trickle: comments do not reset the content watchdog', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      const t = setInterval(() => res.write(': ping\n\n'), 40);
      res.on('close', () => clearInterval(t));
    });
    const p = provider(`${s.url}/v1`, { timeouts: { firstContentMs: 400, idleMs: 400 } });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'llm.trickle');
    assert.ok(ms >= 395, `fired early: ${ms} ms`);
    assert.equal(err.data!.limit, 'first_content');
    assert.ok((err.data!.msSinceLastByte as number) < 200, 'bytes kept arriving');
    assert.ok((err.data!.bytesIn as number) > 0);
    await waitFor(() => s.closed === s.accepted, 1000, 'socket close');
  });

  it('empty deltas after content -> llm.trickle at idleMs', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('real content'));
      const t = setInterval(() => res.write(chunk('')), 40);
      res.on('close', () => clearInterval(t));
    });
    const p = provider(`${s.url}/v1`, { timeouts: { idleMs: 300 } });
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.trickle');
    assert.equal(err.data!.limit, 'idle');
  });

  it('the total deadline caps a slowly progressing stream', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      const t = setInterval(() => res.write(chunk('tok ')), 50);
      res.on('close', () => clearInterval(t));
    });
    const p = provider(`${s.url}/v1`, { timeouts: { totalMs: 400, idleMs: 5000 } });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'llm.trickle');
    assert.ok(ms >= 395, `fired early: ${ms} ms`);
    assert.equal(err.data!.limit, 'total');
  });

  it("the step's deadline caps every limit", async () => {
    const s = await serve(() => {
      /* never answer */
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts(300)), 'llm.no_headers');
    assert.equal(err.data!.limit, 'step_deadline');
  });

  it('an unanswered DNS query -> net.connect_timeout, query cancelled', async () => {
    const dnsServer = await startSilentDns();
    open.push(dnsServer);
    const p = provider('http://never-answered.test:9/v1', { timeouts: { connectMs: 300 }, dnsServers: [dnsServer.server] });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'net.connect_timeout');
    assert.ok(ms >= 290, `fired early: ${ms} ms`);
    assert.equal(err.data!.phase, 'dns');
    assert.equal(err.data!.limit, 'connect');
    assert.ok(dnsServer.queries() >= 1);
    assert.ok(!process.getActiveResourcesInfo().includes('QueryReqWrap'), 'DNS query still pending');
  });

  it('a refused connection -> net.connect_failed, retried then reported', async () => {
    const port = await freePort();
    const p = provider(`http://127.0.0.1:${port}/v1`, { maxRetries: 2 });
    const requests: unknown[] = [];
    const { err } = await rejectsWith(p.chat(hello, opts(5000, { onEvent: (t, d) => t === 'llm.request' && requests.push(d) })), 'net.connect_failed');
    assert.equal(err.data!.errno, 'ECONNREFUSED');
    assert.equal(err.data!.retries, 2);
    assert.equal(requests.length, 3);
  });
});

describe('truncation and malformed streams never succeed', () => {
  it('reset mid-stream -> llm.truncated', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('partial '));
      res.write(chunk('answer'), () => setTimeout(() => res.socket?.resetAndDestroy(), 20));
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.truncated');
    assert.equal(err.data!.phase, 'stream');
  });

  it('clean close without [DONE] -> llm.truncated, partial text not returned', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('almost '));
      res.write(chunk('done'));
      res.write(FINISH);
      res.end(USAGE);
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.truncated');
    assert.equal(err.data!.partialChars, 11);
    assert.ok(!('text' in err.data!));
  });

  it('final event without its blank line -> llm.truncated', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('x'));
      res.end('data: [DONE]\n');
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.truncated');
    assert.match(err.message, /unterminated event/);
  });

  it('reset in the middle of a non-streaming body -> llm.truncated', async () => {
    const s = await serve((_req, res) => {
      const body = completionJson('y'.repeat(500));
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.write(body.slice(0, 100), () => setTimeout(() => res.socket?.resetAndDestroy(), 20));
    });
    const p = provider(`${s.url}/v1`);
    await rejectsWith(p.chat({ ...hello, stream: false }, opts()), 'llm.truncated');
  });

  it('invalid JSON in a data line -> llm.malformed', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('ok'));
      res.write('data: {"choices": [oops\n\n');
    });
    const p = provider(`${s.url}/v1`);
    await rejectsWith(p.chat(hello, opts()), 'llm.malformed');
    await waitFor(() => s.closed === s.accepted, 1000, 'socket close');
  });

  it('event: error mid-stream -> llm.malformed', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('ok'));
      res.write('event: error\ndata: {"error":{"message":"model crashed"}}\n\n');
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.malformed');
    assert.match(err.message, /model crashed/);
  });

  it('an unparseable non-streaming body -> llm.malformed', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"choices": [');
    });
    const p = provider(`${s.url}/v1`);
    await rejectsWith(p.chat({ ...hello, stream: false }, opts()), 'llm.malformed');
  });

  it('an endless body -> llm.too_large at the byte cap', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      const pump = (): void => {
        while (res.write(chunk('z'.repeat(1000)))) {
          /* fill the buffer */
        }
      };
      res.on('drain', pump);
      pump();
    });
    const p = provider(`${s.url}/v1`, { maxResponseBytes: 100_000 });
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.too_large');
    assert.equal(err.data!.limit, 'max_bytes');
    await waitFor(() => s.closed === s.accepted, 1000, 'socket close');
  });
});

describe('status codes', () => {
  for (const [status, code] of [
    [401, 'llm.auth'],
    [403, 'llm.auth'],
    [400, 'llm.bad_request'],
    [404, 'llm.bad_request'],
    [422, 'llm.bad_request'],
    [500, 'llm.overloaded'],
    [503, 'llm.overloaded'],
    [529, 'llm.overloaded'],
    [429, 'llm.rate_limited'],
  ] as const) {
    it(`${status} -> ${code}`, async () => {
      const s = await serve((_req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: `status ${status} from test with key sk-abcdefghijklmnop` } }));
      });
      const p = provider(`${s.url}/v1`);
      const { err } = await rejectsWith(p.chat(hello, opts()), code);
      assert.equal(err.data!.status, status);
      assert.match(String(err.data!.providerMessage), new RegExp(`status ${status}`));
      assert.ok(!JSON.stringify(err.toJSON()).includes('abcdefghijklmnop'), 'key-like text redacted');
    });
  }

  it('an HTML 502 page is summarised, not dumped', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end('<html><body><h1>502 Bad Gateway</h1></body></html>');
    });
    const p = provider(`${s.url}/v1`);
    const { err } = await rejectsWith(p.chat(hello, opts()), 'llm.overloaded');
    assert.equal(err.data!.providerMessage, '502 Bad Gateway');
  });
});

describe('abort by the step signal reaches the socket', () => {
  it('mid-headers: rejects at once with aborted=true, server sees the close', async () => {
    const s = await serve(() => {
      /* never answer */
    });
    const p = provider(`${s.url}/v1`);
    const ac = new AbortController();
    const call = p.chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => s.requests.length === 1, 2000, 'request to arrive');
    ac.abort();
    // At once: the headers limit (60 s by default) and the 10 s deadline are far away, so an error
    // whose limit is the abort was raised by the abort.
    const { err } = await rejectsWith(call, 'llm.no_headers');
    assert.equal(err.data!.aborted, true);
    assert.equal(err.data!.limit, 'abort');
    await waitFor(() => s.closed === 1, 1000, 'server to see the socket close');
  });

  it('mid-stream: rejects with aborted=true, server sees the close', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('first'));
    });
    const p = provider(`${s.url}/v1`);
    const ac = new AbortController();
    const call = p.chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => pendingCalls(ac.signal)[0]?.contentSeen === true, 2000, 'the first content to arrive');
    ac.abort();
    // Content arrived before the abort: the stream was alive, so not "idle".
    const { err } = await rejectsWith(call, 'llm.trickle');
    assert.equal(err.data!.aborted, true);
    assert.equal(err.data!.phase, 'stream');
    await waitFor(() => s.closed === 1, 1000, 'server to see the socket close');
  });

  it('mid-connect (DNS): rejects at once, cancels the query', async () => {
    const dnsServer = await startSilentDns();
    open.push(dnsServer);
    const p = provider('http://never-answered.test:9/v1', { dnsServers: [dnsServer.server] });
    const ac = new AbortController();
    const call = p.chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => dnsServer.queries() >= 1, 2000, 'the DNS query');
    ac.abort();
    const { err } = await rejectsWith(call, 'net.connect_timeout');
    assert.equal(err.data!.aborted, true);
    assert.equal(err.data!.phase, 'dns');
    assert.ok(!process.getActiveResourcesInfo().includes('QueryReqWrap'));
  });

  it('an already aborted signal never opens a socket', async () => {
    const s = await serve((_req, res) => healthyStream(res));
    const p = provider(`${s.url}/v1`);
    const ac = new AbortController();
    ac.abort();
    const { err } = await rejectsWith(p.chat(hello, { signal: ac.signal, deadline: Date.now() + 5000 }), 'net.connect_timeout');
    assert.equal(err.data!.aborted, true);
    assert.equal(s.accepted, 0);
  });

  it('leaves no timer behind after success or failure', async () => {
    const s = await serve((req, res) => (req.url?.includes('fail') ? res.destroy() : healthyStream(res)));
    const ok = provider(`${s.url}/v1`);
    const bad = provider(`${s.url}/fail/v1`);
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    await ok.chat(hello, opts());
    await assert.rejects(bad.chat(hello, opts()));
    const afterCount = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    assert.equal(afterCount, before);
  });
});

describe('keep-alive', () => {
  it('reuses one socket across calls', async () => {
    const s = await serve((_req, res) => healthyStream(res));
    const p = provider(`${s.url}/v1`);
    for (let i = 0; i < 3; i++) assert.equal((await p.chat(hello, opts())).text, 'Hello, world');
    assert.equal(s.accepted, 1);
  });

  it('a reused socket closed before any response byte is retried once, immediately', async () => {
    const perSocket = new WeakMap<object, number>();
    const s = await serve((req, res) => {
      const n = (perSocket.get(req.socket) ?? 0) + 1;
      perSocket.set(req.socket, n);
      if (n >= 2) {
        req.socket.destroy(); // the server's idle close racing the client's reuse
        return;
      }
      healthyStream(res);
    });
    // maxRetries 0: the retry policy allows none, so the one retry is the keep-alive retry, which
    // goes out at once (it never enters the backoff phase).
    const p = provider(`${s.url}/v1`);
    await p.chat(hello, opts());
    const phases = new Set<string>();
    const ac = new AbortController();
    const watch = setInterval(() => {
      for (const c of pendingCalls(ac.signal)) phases.add(c.phase);
    }, 1);
    const r = await p.chat(hello, { signal: ac.signal, deadline: Date.now() + 5000 }).finally(() => clearInterval(watch));
    assert.equal(r.text, 'Hello, world');
    assert.equal(r.retries, 1);
    assert.ok(!phases.has('backoff'), `no backoff for the keep-alive retry (phases seen: ${[...phases].join(', ')})`);
    assert.equal(s.accepted, 2);
  });

  it('a stream held open after [DONE] succeeds within the drain grace and the socket is dropped', async () => {
    const s = await serve((_req, res) => {
      sse(res);
      res.write(chunk('complete'));
      res.write(FINISH);
      res.write(DONE);
    });
    const p = provider(`${s.url}/v1`);
    // The server never ends the response: the call returns only because the drain grace cut it
    // (before the 5 s step deadline, which would have failed it).
    const r = await p.chat(hello, opts());
    assert.equal(r.text, 'complete');
    await waitFor(() => s.closed === 1, 1000, 'socket close');
  });
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

describe('more connect phases and the pending-call registry', () => {
  it('a TCP server that never speaks TLS -> net.connect_timeout in the tls phase', async () => {
    const sockets = new Set<net.Socket>();
    const srv = net.createServer((s) => {
      sockets.add(s);
      s.resume(); // read (and drop) the ClientHello, so the close is noticed
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
    open.push({
      close: () => {
        for (const s of sockets) s.destroy();
        return new Promise<void>((resolve) => srv.close(() => resolve()));
      },
    });
    const port = (srv.address() as net.AddressInfo).port;
    const p = provider(`https://127.0.0.1:${port}/v1`, { timeouts: { connectMs: 300 } });
    const { err } = await rejectsWith(p.chat(hello, opts()), 'net.connect_timeout');
    assert.equal(err.data!.phase, 'tls');
    await waitFor(() => sockets.size === 0, 1000, 'the server to see the close');
  });

  it('pendingCalls() shows what a step waits on, matched by its signal, and forgets settled calls', async () => {
    const s = await serve((req, res) => {
      if (req.url?.includes('stream')) {
        sse(res);
        res.write(': ping\n\n');
      }
    });
    const ac = new AbortController();
    const other = new AbortController();
    const call = provider(`${s.url}/v1?key=SECRET`).chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    const call2 = provider(`${s.url}/stream/v1`).chat(hello, { signal: other.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => s.requests.length === 2, 2000, 'requests');
    await waitFor(() => (pendingCalls(ac.signal)[0]?.msInPhase ?? 0) >= 40, 2000, 'the call to wait 40 ms for headers');
    const mine = pendingCalls(ac.signal);
    assert.equal(mine.length, 1);
    assert.equal(mine[0]!.phase, 'headers');
    assert.equal(mine[0]!.url, `${s.url}/v1/chat/completions?key=[redacted]`);
    assert.ok(mine[0]!.msInPhase >= 40);
    assert.ok(mine[0]!.bytesOut > 0);
    await waitFor(() => pendingCalls(other.signal)[0]?.phase === 'stream', 1000, 'the stream phase');
    const theirs = pendingCalls(other.signal)[0]!;
    assert.equal(theirs.contentSeen, false);
    assert.ok(theirs.bytesIn > 0);
    ac.abort();
    other.abort();
    await assert.rejects(call);
    await assert.rejects(call2);
    assert.deepEqual(pendingCalls(), []);
  });

  it('pendingCalls() shows a backoff wait', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(429, { 'retry-after': '5' });
      res.end();
    });
    const ac = new AbortController();
    const call = provider(`${s.url}/v1`, { maxRetries: 1 }).chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    await waitFor(() => pendingCalls(ac.signal)[0]?.phase === 'backoff', 2000, 'the backoff');
    assert.equal(pendingCalls(ac.signal)[0]!.provider, 't');
    ac.abort();
    await rejectsWith(call, 'llm.rate_limited');
    assert.deepEqual(pendingCalls(), []);
  });
});
