/** The registry (names, defaults, configuration) and what each provider puts on the wire. */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import type { CallOptions } from '../../src/llm/types.ts';
import { healthyStream, rejectsWith, startServer, type TestServer } from './helpers.ts';

const open: Array<{ close(): unknown }> = [];
afterEach(async () => {
  for (const o of open.splice(0)) await o.close();
});

function reg(opts: ConstructorParameters<typeof ProviderRegistry>[0]): ProviderRegistry {
  const r = new ProviderRegistry(opts);
  open.push(r);
  return r;
}

async function serve(handler: Parameters<typeof startServer>[0]): Promise<TestServer> {
  const s = await startServer(handler);
  open.push(s);
  return s;
}

function opts(extra: Partial<CallOptions> = {}): CallOptions {
  return { signal: new AbortController().signal, deadline: Date.now() + 5000, ...extra };
}

const KEY = 'sk-test-THIS-IS-A-SECRET-KEY-123456';
const hello = { messages: [{ role: 'system' as const, content: 'sys' }, { role: 'user' as const, content: 'hi' }] };

function isCode(code: string) {
  return (err: unknown) => err instanceof RunwardenError && err.code === code;
}

describe('ProviderRegistry', () => {
  it('default provider: config, else openai with a key, else anthropic with a key, else lab', () => {
    assert.equal(reg({ env: {}, labUrl: 'http://127.0.0.1:1' }).defaultName, 'lab');
    assert.equal(reg({ env: { OPENAI_API_KEY: 'k' } }).defaultName, 'openai');
    assert.equal(reg({ env: { ANTHROPIC_API_KEY: 'k' } }).defaultName, 'anthropic');
    assert.equal(reg({ env: { OPENAI_API_KEY: 'k', ANTHROPIC_API_KEY: 'k' } }).defaultName, 'openai');
    const r = reg({ env: { OPENAI_API_KEY: 'k' }, defaultProvider: 'local', providers: { local: { type: 'openai', baseUrl: 'http://127.0.0.1:8000/v1' } } });
    assert.equal(r.defaultName, 'local');
    assert.equal(r.get().name, 'local');
  });

  it('lists built-ins and configured providers with redacted URLs', () => {
    const r = reg({
      env: { OPENAI_BASE_URL: 'https://proxy.example/v1' },
      labUrl: 'http://127.0.0.1:7401',
      providers: { local: { type: 'openai', baseUrl: 'http://user:pass@127.0.0.1:8000/v1?key=abc' } },
    });
    assert.deepEqual(r.list(), [
      { name: 'openai', type: 'openai', baseUrl: 'https://proxy.example/v1' },
      { name: 'anthropic', type: 'anthropic', baseUrl: 'https://api.anthropic.com' },
      { name: 'lab', type: 'lab', baseUrl: 'http://127.0.0.1:7401/v1' },
      { name: 'local', type: 'openai', baseUrl: 'http://[redacted]@127.0.0.1:8000/v1?key=[redacted]' },
    ]);
  });

  it('unknown names and a missing lab are PROVIDER_UNKNOWN', () => {
    const r = reg({ env: {} });
    assert.throws(() => r.get('nope'), isCode('PROVIDER_UNKNOWN'));
    assert.throws(() => r.get('lab'), (e) => isCode('PROVIDER_UNKNOWN')(e) && /not running/.test((e as Error).message));
    assert.throws(() => r.get(), isCode('PROVIDER_UNKNOWN'), 'the default falls back to the lab');
    assert.throws(() => new ProviderRegistry({ env: {}, defaultProvider: 'ghost' }), isCode('PROVIDER_UNKNOWN'));
  });

  it('rejects unknown config keys, bad types and bad timeouts, naming the problem', () => {
    assert.throws(() => new ProviderRegistry({ env: {}, providers: { x: { type: 'openai', apiKey: 'k' } as never } }), /unknown key "apiKey"/);
    assert.throws(() => new ProviderRegistry({ env: {}, providers: { x: { type: 'gemini' } as never } }), isCode('CONFIG_INVALID'));
    assert.throws(() => new ProviderRegistry({ env: {}, providers: { x: { type: 'openai', timeouts: { idleMs: -1 } } } }), /idleMs/);
    assert.throws(() => new ProviderRegistry({ env: {}, providers: { x: { type: 'openai', timeouts: { idle: 5 } as never } } }), /unknown timeout "idle"/);
    assert.throws(() => new ProviderRegistry({ env: {}, providers: { x: { type: 'openai', baseUrl: 'ftp://x' } } }), isCode('CONFIG_INVALID'));
  });

  it('one instance per name; close() closes them and later use fails', () => {
    const r = new ProviderRegistry({ env: {}, labUrl: 'http://127.0.0.1:1' });
    assert.equal(r.get('lab'), r.get('lab'));
    r.close();
    r.close();
    assert.throws(() => r.get('lab'), isCode('PROVIDERS_CLOSED'));
  });
});

describe('wire format and secrets', () => {
  it('openai: bearer key, stream_options.include_usage, model and params', async () => {
    const s = await serve((_req, res) => healthyStream(res));
    const r = reg({ env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: `${s.url}/v1` } });
    const out = await r.get('openai').chat({ ...hello, maxTokens: 50, temperature: 0.2 }, opts());
    assert.equal(out.text, 'Hello, world');
    assert.deepEqual(out.usage, { inputTokens: 11, outputTokens: 7 });
    const req = s.requests[0]!;
    assert.equal(req.url, '/v1/chat/completions');
    assert.equal(req.headers.authorization, `Bearer ${KEY}`);
    const body = JSON.parse(req.body) as Record<string, unknown>;
    assert.deepEqual(body.stream_options, { include_usage: true });
    assert.equal(body.stream, true);
    assert.equal(body.model, 'gpt-4o-mini');
    assert.equal(body.max_tokens, 50);
    assert.equal(body.temperature, 0.2);
    assert.deepEqual(body.messages, hello.messages);
  });

  it('a configured provider with its own baseUrl never receives OPENAI_API_KEY unless it names it', async () => {
    const s = await serve((_req, res) => healthyStream(res));
    const r = reg({
      env: { OPENAI_API_KEY: KEY, LOCAL_KEY: 'local-key' },
      providers: { plain: { type: 'openai', baseUrl: `${s.url}/v1` }, keyed: { type: 'openai', baseUrl: `${s.url}/v1`, apiKeyEnv: 'LOCAL_KEY', headers: { 'x-extra': '1' } } },
    });
    await r.get('plain').chat(hello, opts());
    await r.get('keyed').chat(hello, opts());
    assert.equal(s.requests[0]!.headers.authorization, undefined);
    assert.equal(s.requests[1]!.headers.authorization, 'Bearer local-key');
    assert.equal(s.requests[1]!.headers['x-extra'], '1');
  });

  it('anthropic: x-api-key, version header, system hoisted, max_tokens set', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'message', model: 'claude-x', content: [{ type: 'text', text: 'hey' }], stop_reason: 'end_turn', usage: { input_tokens: 4, output_tokens: 2 } }));
    });
    const r = reg({ env: { ANTHROPIC_API_KEY: KEY, ANTHROPIC_BASE_URL: s.url } });
    const out = await r.get('anthropic').chat({ ...hello, stream: false }, opts());
    assert.deepEqual([out.text, out.model, out.finishReason, out.usage.inputTokens], ['hey', 'claude-x', 'end_turn', 4]);
    const req = s.requests[0]!;
    assert.equal(req.url, '/v1/messages');
    assert.equal(req.headers['x-api-key'], KEY);
    assert.equal(req.headers['anthropic-version'], '2023-06-01');
    const body = JSON.parse(req.body) as Record<string, unknown>;
    assert.equal(body.system, 'sys');
    assert.deepEqual(body.messages, [{ role: 'user', content: 'hi' }]);
    assert.equal(body.max_tokens, 4096);
  });

  it('the key never appears in errors or events', async () => {
    const s = await serve((req, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: `Incorrect API key provided: ${String(req.headers.authorization).slice(7)}` } }));
    });
    const events: unknown[] = [];
    const r = reg({ env: { OPENAI_API_KEY: KEY, OPENAI_BASE_URL: `${s.url}/v1?token=${KEY}` } });
    const { err } = await rejectsWith(r.get('openai').chat(hello, opts({ onEvent: (t, d) => events.push([t, d]) })), 'llm.auth');
    const everything = JSON.stringify([err.toJSON(), err.message, err.stack, events, r.list()]);
    assert.ok(!everything.includes('THIS-IS-A-SECRET'), everything);
  });

  it('embeddings: request shape, order restored by index, usage event', async () => {
    const s = await serve((_req, res, body) => {
      const input = (JSON.parse(body) as { input: string[] }).input;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          model: 'emb-1',
          data: input.map((t, i) => ({ index: i, embedding: [t.length, i] })).reverse(),
          usage: { prompt_tokens: 9, total_tokens: 9 },
        }),
      );
    });
    const events: Array<[string, Record<string, unknown>]> = [];
    const r = reg({ env: { OPENAI_BASE_URL: `${s.url}/v1` } });
    const out = await r.get('openai').embed(['a', 'bbb'], { ...opts({ onEvent: (t, d) => events.push([t, d]) }), dimensions: 2 });
    assert.deepEqual(out.vectors, [
      [1, 0],
      [3, 1],
    ]);
    assert.equal(out.model, 'emb-1');
    assert.equal(out.usage.inputTokens, 9);
    const body = JSON.parse(s.requests[0]!.body) as Record<string, unknown>;
    assert.deepEqual(body, { model: 'text-embedding-3-small', input: ['a', 'bbb'], encoding_format: 'float', dimensions: 2 });
    assert.deepEqual(
      events.map(([t]) => t),
      ['llm.request', 'llm.usage'],
    );
  });

  it('embeddings with a wrong count -> llm.malformed', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ data: [{ index: 0, embedding: [1] }] }));
    });
    const r = reg({ env: { OPENAI_BASE_URL: `${s.url}/v1` } });
    await assert.rejects(r.get('openai').embed(['a', 'b'], opts()), isCode('llm.malformed'));
  });

  it('a server that ignores stream:true and answers JSON is accepted', async () => {
    const s = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { content: 'plain' }, finish_reason: 'stop' }], usage: { prompt_tokens: 1, completion_tokens: 1 } }));
    });
    const r = reg({ env: { OPENAI_BASE_URL: `${s.url}/v1` } });
    assert.equal((await r.get('openai').chat(hello, opts())).text, 'plain');
  });
});
