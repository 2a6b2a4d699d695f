/**
 * The providers against the hang lab: every failure mode of FAILURES.md, OpenAI and Anthropic wire
 * formats, bounded and classified.
 */
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import type net from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import type { CallOptions, LlmProvider, ProviderConfig } from '../../src/llm/types.ts';
import { rejectsWith } from './helpers.ts';
import { waitFor } from '../helpers/wait.ts';

const SLACK = 300;
let lab: Lab;
const open: Array<{ close(): unknown }> = [];

before(async () => {
  lab = await startLab({ port: 0 });
});
afterEach(() => {
  for (const o of open.splice(0)) o.close();
});
after(async () => {
  await lab.close();
});

function mode(name: string) {
  const m = lab.modes().find((x) => x.name === name);
  assert.ok(m, `lab mode ${name}`);
  return m;
}

/** `segment` is the mode segment with its tunables, e.g. `stream_stall;after=3`. */
function prov(segment: string, over: Partial<ProviderConfig> = {}): LlmProvider {
  const type = over.type ?? 'openai';
  const baseUrl = over.baseUrl ?? (type === 'anthropic' ? `${lab.url}/${segment}` : `${lab.url}/${segment}/v1`);
  const reg = new ProviderRegistry({ env: {}, providers: { l: { maxRetries: 0, ...over, type, baseUrl } } });
  open.push(reg);
  return reg.get('l');
}

function opts(ms = 5000, extra: Partial<CallOptions> = {}): CallOptions {
  return { signal: new AbortController().signal, deadline: Date.now() + ms, ...extra };
}

const hello = { messages: [{ role: 'user' as const, content: 'Tell me about deadlines' }] };

describe('lab: healthy', () => {
  it('OpenAI format, streaming and not, with usage', async () => {
    const events: string[] = [];
    const s = await prov('healthy').chat(hello, opts(5000, { onEvent: (t) => events.push(t) }));
    const n = await prov('healthy').chat({ ...hello, stream: false }, opts());
    assert.match(s.text, /^Lab answer — you asked about/);
    assert.equal(s.text, n.text, 'streamed and non-streamed answers agree');
    assert.ok(s.usage.inputTokens > 0 && s.usage.outputTokens > 0);
    assert.equal(s.finishReason, 'stop');
    assert.deepEqual(events, ['llm.request', 'llm.usage']);
  });

  it('Anthropic format, streaming and not', async () => {
    const p = prov('healthy', { type: 'anthropic', model: 'claude-lab' });
    const s = await p.chat({ messages: [{ role: 'system', content: 'be brief' }, ...hello.messages] }, opts());
    const n = await p.chat({ ...hello, stream: false }, opts());
    assert.match(s.text, /^Lab answer/);
    assert.equal(s.text, n.text);
    assert.ok(s.usage.outputTokens > 0);
    assert.equal(s.finishReason, 'end_turn');
  });

  it('Anthropic has no embeddings: PROVIDER_UNSUPPORTED', async () => {
    await rejectsWith(prov('healthy', { type: 'anthropic' }).embed(['x'], opts()), 'PROVIDER_UNSUPPORTED');
  });

  it('embeddings, in order', async () => {
    const r = await prov('healthy').embed(['a cat', 'a dog', 'a cat'], opts());
    assert.equal(r.vectors.length, 3);
    assert.deepEqual(r.vectors[0], r.vectors[2]);
    assert.notDeepEqual(r.vectors[0], r.vectors[1]);
  });
});

describe('lab: connect level', () => {
  it('connect_blackhole -> net.connect_timeout at connectMs', async () => {
    const p = prov('', { baseUrl: mode('connect_blackhole').baseUrl, timeouts: { connectMs: 300 } });
    const { err, ms } = await rejectsWith(p.chat(hello, opts()), 'net.connect_timeout');
    assert.ok(ms >= 295 && ms < 300 + SLACK, `took ${ms} ms`);
    assert.equal(err.data!.phase, 'connect');
    assert.equal(err.data!.bytesIn, 0);
  });

  it('connect_blackhole + abort mid-connect -> released at once, the socket destroyed', async () => {
    const p = prov('', { baseUrl: mode('connect_blackhole').baseUrl });
    const ac = new AbortController();
    // The lab's own filler connections live in this process too, so the handle count is no
    // measure: capture the socket our call creates (synchronously, inside chat()).
    const sockets: net.Socket[] = [];
    const onSocket = (msg: unknown): void => {
      sockets.push((msg as { socket: net.Socket }).socket);
    };
    diagnostics_channel.subscribe('net.client.socket', onSocket);
    const call = p.chat(hello, { signal: ac.signal, deadline: Date.now() + 10_000 });
    // The connect may start a turn or two later (the provider first takes its flow-control slot).
    await waitFor(() => (sockets.length > 0 ? true : undefined), 5000, 'the call to open its socket');
    diagnostics_channel.unsubscribe('net.client.socket', onSocket);
    assert.equal(sockets.length, 1);
    const socket = sockets[0]!;
    // Not a wait for a condition: the blackhole's promise is that nothing happens, so the test
    // gives it 100 ms to (wrongly) connect.
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(socket.connecting, true, 'still in SYN-SENT');
    ac.abort();
    const { err, ms } = await rejectsWith(call, 'net.connect_timeout');
    assert.ok(ms < 300);
    assert.equal(err.data!.aborted, true);
    assert.equal(err.data!.phase, 'connect');
    assert.equal(socket.destroyed, true);
  });

  it('slow_dns -> net.connect_timeout in the dns phase; a delayed answer connects', async () => {
    const m = mode('slow_dns');
    const dnsServer = /127\.0\.0\.1:(\d+)/.exec(m.howTo ?? '')?.[0];
    assert.ok(dnsServer, 'the lab names its DNS server');
    const slow = prov('', { baseUrl: m.baseUrl, dnsServers: [dnsServer], timeouts: { connectMs: 300 } });
    const { err, ms } = await rejectsWith(slow.chat(hello, opts()), 'net.connect_timeout');
    assert.ok(ms < 300 + SLACK, `took ${ms} ms`);
    assert.equal(err.data!.phase, 'dns');
    const delayed = prov('', { baseUrl: m.baseUrl.replace('slow-dns.invalid', 'delay-100.slow-dns.invalid'), dnsServers: [dnsServer] });
    const r = await delayed.chat(hello, opts());
    assert.match(r.text, /Lab answer/);
  });
});

describe('lab: stalls', () => {
  it('no_headers -> llm.no_headers', async () => {
    const { ms } = await rejectsWith(prov('no_headers', { timeouts: { headersMs: 300 } }).chat(hello, opts()), 'llm.no_headers');
    assert.ok(ms < 300 + SLACK);
  });

  it('headers_no_body -> llm.body_stall (non-streaming), also with half a body', async () => {
    for (const seg of ['headers_no_body', 'headers_no_body;partial=1']) {
      const { ms } = await rejectsWith(prov(seg, { timeouts: { idleMs: 300 } }).chat({ ...hello, stream: false }, opts()), 'llm.body_stall');
      assert.ok(ms < 300 + SLACK, `${seg}: ${ms} ms`);
    }
  });

  it('headers_no_body on a stream -> llm.stream_idle before first content', async () => {
    const { err } = await rejectsWith(prov('headers_no_body', { timeouts: { firstContentMs: 300 } }).chat(hello, opts()), 'llm.stream_idle');
    assert.equal(err.data!.limit, 'first_content');
  });

  it('stream_stall -> llm.stream_idle (after content, and before the first)', async () => {
    const a = await rejectsWith(prov('stream_stall;after=3', { timeouts: { idleMs: 300 } }).chat(hello, opts()), 'llm.stream_idle');
    assert.equal(a.err.data!.limit, 'idle');
    assert.ok(a.ms < 300 + SLACK);
    const b = await rejectsWith(prov('stream_stall;stall=before_first', { timeouts: { firstContentMs: 300 } }).chat(hello, opts()), 'llm.stream_idle');
    assert.equal(b.err.data!.limit, 'first_content');
  });

  it('stream_stall after [DONE] -> success; the held socket is dropped', async () => {
    const r = await prov('stream_stall;stall=after_done').chat(hello, opts());
    assert.match(r.text, /Lab answer/);
  });

  it('stream_stall (Anthropic) -> llm.stream_idle', async () => {
    await rejectsWith(prov('stream_stall;after=2', { type: 'anthropic', timeouts: { idleMs: 300 } }).chat(hello, opts()), 'llm.stream_idle');
  });

  it('trickle (pings and empty deltas) -> llm.trickle', async () => {
    for (const seg of ['trickle;interval_ms=50', 'trickle;kind=empty;interval_ms=50']) {
      const { ms } = await rejectsWith(prov(seg, { timeouts: { firstContentMs: 400, idleMs: 400 } }).chat(hello, opts()), 'llm.trickle');
      assert.ok(ms >= 395 && ms < 400 + SLACK, `${seg}: ${ms} ms`);
    }
  });

  it('trickle on a non-streaming body -> llm.trickle at the total deadline', async () => {
    const { err } = await rejectsWith(prov('trickle;interval_ms=50', { timeouts: { totalMs: 400 } }).chat({ ...hello, stream: false }, opts()), 'llm.trickle');
    assert.equal(err.data!.phase, 'body');
    assert.equal(err.data!.limit, 'total');
  });

  it('trickle (Anthropic pings) -> llm.trickle', async () => {
    await rejectsWith(prov('trickle;interval_ms=50', { type: 'anthropic', timeouts: { firstContentMs: 400 } }).chat(hello, opts()), 'llm.trickle');
  });
});

describe('lab: broken bodies never succeed', () => {
  for (const seg of ['reset_mid_body', 'reset_mid_body;how=fin', 'clean_close_no_done', 'clean_close_no_done;after=2']) {
    it(`${seg} (stream) -> llm.truncated`, async () => {
      await rejectsWith(prov(seg).chat(hello, opts()), 'llm.truncated');
    });
  }

  it('reset_mid_body (non-streaming) -> llm.truncated', async () => {
    await rejectsWith(prov('reset_mid_body').chat({ ...hello, stream: false }, opts()), 'llm.truncated');
  });

  it('clean_close_no_done (non-streaming) -> an error, never success', async () => {
    await assert.rejects(prov('clean_close_no_done').chat({ ...hello, stream: false }, opts()), (err: { code: string }) =>
      ['llm.truncated', 'llm.malformed'].includes(err.code),
    );
  });

  it('clean_close_no_done (Anthropic) -> llm.truncated', async () => {
    await rejectsWith(prov('clean_close_no_done', { type: 'anthropic' }).chat(hello, opts()), 'llm.truncated');
  });

  it('malformed_sse: bad_json and error_event -> llm.malformed; no_final_blank -> llm.truncated', async () => {
    await rejectsWith(prov('malformed_sse;kind=bad_json').chat(hello, opts()), 'llm.malformed');
    await rejectsWith(prov('malformed_sse;kind=error_event').chat(hello, opts()), 'llm.malformed');
    await rejectsWith(prov('malformed_sse;kind=error_event', { type: 'anthropic' }).chat(hello, opts()), 'llm.malformed');
    await rejectsWith(prov('malformed_sse;kind=no_final_blank').chat(hello, opts()), 'llm.truncated');
    await rejectsWith(prov('malformed_sse;kind=bad_json').chat({ ...hello, stream: false }, opts()), 'llm.malformed');
  });

  it('malformed_sse split (CRLF, cut inside a field and a UTF-8 character) -> the healthy text', async () => {
    const healthy = await prov('healthy').chat(hello, opts());
    const split = await prov('malformed_sse;kind=split').chat(hello, opts());
    assert.equal(split.text, healthy.text);
    const splitA = await prov('malformed_sse;kind=split', { type: 'anthropic' }).chat(hello, opts());
    assert.equal(splitA.text, healthy.text);
  });

  it('huge_response -> llm.too_large (stream and not)', async () => {
    await rejectsWith(prov('huge_response', { maxResponseBytes: 1_000_000 }).chat(hello, opts()), 'llm.too_large');
    await rejectsWith(prov('huge_response', { maxResponseBytes: 1_000_000 }).chat({ ...hello, stream: false }, opts()), 'llm.too_large');
  });
});

describe('lab: retries', () => {
  it('rate_limited with every retry-after form recovers', async () => {
    for (const seg of ['retry_after=ms;wait_ms=150', 'retry_after=1', 'retry_after=garbage', 'retry_after=none', 'retry_after=date;wait_ms=100']) {
      const key = `k${Date.now()}${Math.random().toString(36).slice(2)}`;
      const r = await prov(`rate_limited;${seg};count=1;key=${key}`, { maxRetries: 2 }).chat(hello, opts(5000));
      assert.equal(r.retries, 1, seg);
    }
  });

  it('rate_limited retry_after=3600 with 2.5 s left -> llm.rate_limited at once', async () => {
    const { err, ms } = await rejectsWith(prov('rate_limited;retry_after=3600', { maxRetries: 2 }).chat(hello, opts(2500)), 'llm.rate_limited');
    assert.ok(ms < 200, `took ${ms} ms`);
    assert.match(err.message, /3600 s but only/);
  });

  it('overloaded 529 twice, then healthy -> success after 2 retries; always -> llm.overloaded', async () => {
    const key = `ov-${Date.now()}`;
    const r = await prov(`overloaded;status=529;count=2;key=${key}`, { maxRetries: 2 }).chat(hello, opts());
    assert.equal(r.retries, 2);
    const { err } = await rejectsWith(prov('overloaded;status=502;body=html', { maxRetries: 1 }).chat(hello, opts()), 'llm.overloaded');
    assert.equal(err.data!.status, 502);
    assert.equal(err.data!.retries, 1);
  });

  it('keepalive_race -> one immediate retry on a fresh socket', async () => {
    const p = prov('keepalive_race;close_after_ms=300');
    await p.chat(hello, opts());
    const t0 = Date.now();
    const r = await p.chat(hello, opts());
    assert.equal(r.retries, 1);
    assert.ok(Date.now() - t0 < 300 + SLACK);
  });
});
