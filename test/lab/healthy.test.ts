import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHAT, MESSAGES, parseSse, RawClient, streamedText, withLab } from './helpers.ts';

const CODEGEN_SYSTEM = 'You write files. Answer with one fenced block per file: ```<language> file=<relative/path>';

async function post(port: number, path: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; text: string; headers: Record<string, string> }> {
  const client = await RawClient.request(port, 'POST', path, body, headers);
  try {
    const res = await client.untilComplete();
    return { status: res.status, text: res.body.toString('utf8'), headers: res.headers };
  } finally {
    client.destroy();
  }
}

test('OpenAI chat, non-streaming: deterministic content and usage', async () => {
  await withLab(async (lab) => {
    const a = await post(lab.port, '/v1/chat/completions', CHAT('Tell me about rivers'));
    const b = await post(lab.port, '/healthy/v1/chat/completions', CHAT('Tell me about rivers'));
    const c = await post(lab.port, '/v1/chat/completions', CHAT('Tell me about mountains'));
    assert.equal(a.status, 200);
    assert.equal(a.headers['content-type'], 'application/json');
    const ja = JSON.parse(a.text);
    assert.equal(ja.object, 'chat.completion');
    assert.equal(ja.choices[0].message.role, 'assistant');
    assert.equal(ja.choices[0].finish_reason, 'stop');
    assert.equal(ja.choices[0].message.content, JSON.parse(b.text).choices[0].message.content, 'same prompt, same answer');
    assert.notEqual(ja.choices[0].message.content, JSON.parse(c.text).choices[0].message.content);
    const u = ja.usage;
    assert.ok(u.prompt_tokens > 0 && u.completion_tokens > 0);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    assert.equal(u.completion_tokens, Math.ceil(ja.choices[0].message.content.length / 4));
  });
});

test('OpenAI chat, streaming: role chunk, several content chunks, finish, usage chunk, [DONE]', async () => {
  await withLab(async (lab) => {
    const plain = JSON.parse((await post(lab.port, '/v1/chat/completions', CHAT())).text);
    const res = await post(lab.port, '/v1/chat/completions', CHAT(undefined, { stream: true, stream_options: { include_usage: true } }));
    assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
    const { events } = parseSse(res.text);
    assert.equal(events.at(-1)?.data, '[DONE]');
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
    assert.equal(chunks[0].choices[0].delta.role, 'assistant');
    const contentChunks = chunks.filter((c) => c.choices[0]?.delta?.content);
    assert.ok(contentChunks.length >= 3, `expected several content chunks, got ${contentChunks.length}`);
    assert.equal(streamedText(events), plain.choices[0].message.content);
    const finish = chunks.at(-2);
    assert.equal(finish.choices[0].finish_reason, 'stop');
    const usage = chunks.at(-1);
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, plain.usage);
  });
});

test('OpenAI streaming without include_usage has no usage chunk', async () => {
  await withLab(async (lab) => {
    const { events } = parseSse((await post(lab.port, '/v1/chat/completions', CHAT(undefined, { stream: true }))).text);
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data));
    assert.ok(chunks.every((c) => c.choices.length === 1 && c.usage === undefined));
  });
});

test('codegen contract: the Hello World README prompt gives a README.md block', async () => {
  await withLab(async (lab) => {
    const body = { model: 'lab-1', messages: [{ role: 'system', content: CODEGEN_SYSTEM }, { role: 'user', content: 'Write a simple Hello World README.md file' }] };
    const content: string = JSON.parse((await post(lab.port, '/v1/chat/completions', body)).text).choices[0].message.content;
    const blocks = [...content.matchAll(/```(\S+) file=(\S+)\n([\s\S]*?)```/g)];
    assert.equal(blocks.length, 1);
    const [, language, path, file] = blocks[0] ?? [];
    assert.equal(language, 'markdown');
    assert.equal(path, 'README.md');
    assert.match(file ?? '', /^# Hello World\n/);
    assert.match(file ?? '', /Hello, World!/);

    // Anthropic's `system` field triggers it too; several named files give several blocks.
    const multi = await post(lab.port, '/v1/messages', {
      max_tokens: 2048,
      system: CODEGEN_SYSTEM,
      messages: [{ role: 'user', content: 'Create index.html, src/app.ts and styles.css for a todo list.' }],
    });
    const text: string = JSON.parse(multi.text).content[0].text;
    const files = [...text.matchAll(/```(\S+) file=(\S+)\n/g)].map((m) => `${m[1]} ${m[2]}`);
    assert.deepEqual(files, ['html index.html', 'typescript src/app.ts', 'css styles.css']);

    // No file named: one output.md.
    const none = await post(lab.port, '/v1/chat/completions', { messages: [{ role: 'system', content: CODEGEN_SYSTEM }, { role: 'user', content: 'Describe the water cycle' }] });
    assert.match(JSON.parse(none.text).choices[0].message.content, /```markdown file=output\.md\n# Water Cycle\n/);

    // Without the marker, the same prompt is prose.
    const prose = await post(lab.port, '/v1/chat/completions', CHAT('Write a simple Hello World README.md file'));
    assert.doesNotMatch(JSON.parse(prose.text).choices[0].message.content, /file=/);
  });
});

test('max_tokens truncates and reports finish_reason length / stop_reason max_tokens', async () => {
  await withLab(async (lab) => {
    const o = JSON.parse((await post(lab.port, '/v1/chat/completions', CHAT(undefined, { max_tokens: 5 }))).text);
    assert.equal(o.choices[0].finish_reason, 'length');
    assert.equal(o.choices[0].message.content.length, 20);
    assert.equal(o.usage.completion_tokens, 5);
    const a = JSON.parse((await post(lab.port, '/v1/messages', MESSAGES(undefined, { max_tokens: 5 }))).text);
    assert.equal(a.stop_reason, 'max_tokens');
    assert.equal(a.usage.output_tokens, 5);
  });
});

test('Anthropic messages, non-streaming and streaming', async () => {
  await withLab(async (lab) => {
    const plain = await post(lab.port, '/v1/messages', MESSAGES(), { 'anthropic-version': '2023-06-01' });
    assert.equal(plain.status, 200);
    const msg = JSON.parse(plain.text);
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.content[0].type, 'text');
    assert.equal(msg.stop_reason, 'end_turn');
    assert.ok(msg.usage.input_tokens > 0 && msg.usage.output_tokens > 0);

    const res = await post(lab.port, '/v1/messages', MESSAGES(undefined, { stream: true }));
    const { events } = parseSse(res.text);
    const names = events.map((e) => e.event);
    assert.deepEqual(names.slice(0, 3), ['message_start', 'content_block_start', 'ping']);
    assert.deepEqual(names.slice(-3), ['content_block_stop', 'message_delta', 'message_stop']);
    assert.ok(names.filter((n) => n === 'content_block_delta').length >= 3);
    for (const e of events) assert.equal(JSON.parse(e.data).type, e.event, 'data.type matches the event name');
    assert.equal(streamedText(events), msg.content[0].text);
    const delta = JSON.parse(events.at(-2)?.data ?? '{}');
    assert.equal(delta.delta.stop_reason, 'end_turn');
    assert.equal(delta.usage.output_tokens, msg.usage.output_tokens);
    assert.equal(JSON.parse(events[0]?.data ?? '{}').message.usage.input_tokens, msg.usage.input_tokens);
  });
});

test('models listing and embeddings (float, base64, dimensions)', async () => {
  await withLab(async (lab) => {
    const client = await RawClient.request(lab.port, 'GET', '/v1/models');
    const models = JSON.parse((await client.untilComplete()).body.toString());
    client.destroy();
    assert.equal(models.object, 'list');
    assert.ok(models.data.some((m: { id: string }) => m.id === 'lab-1'));

    const one = JSON.parse((await post(lab.port, '/v1/embeddings', { model: 'lab-embed-1', input: 'hello world' })).text);
    assert.equal(one.data.length, 1);
    assert.equal(one.data[0].object, 'embedding');
    assert.equal(one.data[0].embedding.length, 256, 'default dimensions');
    assert.ok(one.usage.prompt_tokens > 0 && one.usage.total_tokens === one.usage.prompt_tokens);

    const many = JSON.parse((await post(lab.port, '/v1/embeddings', { input: ['a', 'b', 'c'], dimensions: 64, encoding_format: 'base64' })).text);
    assert.deepEqual(many.data.map((d: { index: number }) => d.index), [0, 1, 2]);
    const bytes = Buffer.from(many.data[0].embedding, 'base64');
    assert.equal(bytes.length, 64 * 4);
    const floats = new Float32Array(bytes.buffer, bytes.byteOffset, 64);
    const norm = Math.sqrt(floats.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - 1) < 1e-5, `unit length, got ${norm}`);
  });
});

test('embeddings put similar texts near each other', async () => {
  await withLab(async (lab) => {
    const docs = ['The cat sat on the mat', 'Stock markets fell sharply today', 'Photosynthesis converts light into chemical energy'];
    const res = JSON.parse((await post(lab.port, '/v1/embeddings', { input: [...docs, 'where did the cat sit?'] })).text);
    const vectors: number[][] = res.data.map((d: { embedding: number[] }) => d.embedding);
    const query = vectors[3] ?? [];
    const scores = vectors.slice(0, 3).map((v) => v.reduce((s, x, i) => s + x * (query[i] ?? 0), 0));
    const best = scores.indexOf(Math.max(...scores));
    assert.equal(best, 0, `scores ${scores.join(', ')}`);
    const again = JSON.parse((await post(lab.port, '/v1/embeddings', { input: docs[0] })).text);
    assert.deepEqual(again.data[0].embedding, vectors[0], 'stable vectors');
  });
});

test('bad requests get 400 in the provider error shape; unknown paths get a JSON 404', async () => {
  await withLab(async (lab) => {
    const badJson = await post(lab.port, '/v1/chat/completions', '{"messages": [');
    assert.equal(badJson.status, 400);
    assert.equal(JSON.parse(badJson.text).error.type, 'invalid_request_error');
    const noMessages = await post(lab.port, '/v1/messages', { model: 'x', max_tokens: 10 });
    assert.equal(noMessages.status, 400);
    assert.deepEqual(Object.keys(JSON.parse(noMessages.text)), ['type', 'error']);
    assert.equal(JSON.parse(noMessages.text).error.type, 'invalid_request_error');
    const badInput = await post(lab.port, '/v1/embeddings', { input: 42 });
    assert.equal(badInput.status, 400);
    const badParam = await post(lab.port, '/stream_stall;after=lots/v1/chat/completions', CHAT(undefined, { stream: true }));
    assert.equal(badParam.status, 400);
    assert.match(JSON.parse(badParam.text).error.message, /after must be an integer/);

    for (const path of ['/nonsense', '/v2/chat/completions', '/no_such_mode/v1/chat/completions', '/v1/chat/other']) {
      const res = await post(lab.port, path, CHAT());
      assert.equal(res.status, 404, path);
      assert.equal(JSON.parse(res.text).modes_url, `${lab.url}/modes`);
    }
    const wrongMethod = await RawClient.request(lab.port, 'GET', '/v1/chat/completions');
    assert.equal((await wrongMethod.untilComplete()).status, 405);
    wrongMethod.destroy();
    // Not HTTP at all: a 400 and a closed socket, and the lab keeps serving.
    const garbage = await RawClient.connect(lab.port);
    garbage.socket.write('\x16\x03\x01 definitely not http\r\n\r\n');
    await garbage.untilClosed();
    assert.equal((await post(lab.port, '/v1/chat/completions', CHAT())).status, 200);
  });
});

test('GET /modes lists every mode with its exact base URL and params', async () => {
  await withLab(async (lab) => {
    const client = await RawClient.request(lab.port, 'GET', '/modes');
    const listing = JSON.parse((await client.untilComplete()).body.toString());
    client.destroy();
    assert.deepEqual(listing.modes, lab.modes());
    const byName = new Map(lab.modes().map((m) => [m.name, m]));
    assert.equal(byName.get('stream_stall')?.baseUrl, `${lab.url}/stream_stall/v1`);
    assert.equal(byName.get('stream_stall')?.anthropicBaseUrl, `${lab.url}/stream_stall`);
    assert.ok('after' in (byName.get('stream_stall')?.params ?? {}));
    assert.match(byName.get('connect_blackhole')?.baseUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    assert.notEqual(byName.get('connect_blackhole')?.baseUrl, `${lab.url}/connect_blackhole/v1`);
    assert.match(byName.get('slow_dns')?.howTo ?? '', /Resolver\.setServers/);
    assert.equal(byName.size, 17);
    assert.ok('turns' in (byName.get('tool_calls')?.params ?? {}));
    assert.ok('rpm' in (byName.get('quota')?.params ?? {}));
    for (const m of lab.modes()) assert.ok(m.description.length > 20, m.name);
  });
});

test('latency: from the lab default, overridden per request by matrix or query parameter', async () => {
  await withLab(
    async (lab) => {
      const timed = async (path: string): Promise<number> => {
        const started = performance.now();
        const res = await post(lab.port, path, CHAT());
        assert.equal(res.status, 200);
        return performance.now() - started;
      };
      assert.ok((await timed('/v1/chat/completions')) >= 140, 'lab default latency');
      assert.ok((await timed('/healthy;latency_ms=0/v1/chat/completions')) < 140, 'matrix parameter');
      assert.ok((await timed('/healthy;latency_ms=0/v1/chat/completions?latency_ms=300')) >= 290, 'the query string wins');
    },
    { latencyMs: 150 },
  );
});

test('a client on 127.0.0.1 only: non-loopback hosts are refused', async () => {
  const { startLab } = await import('../../src/lab/index.ts');
  await assert.rejects(startLab({ host: '0.0.0.0', port: 0 }), { code: 'LAB_NOT_LOOPBACK' });
});
