/**
 * The official SDKs parse the lab's healthy answers (and see its failures as they would a real
 * provider's). The SDKs are devDependencies pinned to exact versions (package.json), so the wire
 * format checked here is the one of a known release, installed by `npm ci` like everything else.
 */
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { withLab } from './helpers.ts';

/** What both SDKs' API errors carry. */
interface SdkError {
  status: number;
  headers: Headers;
  error?: { error?: { type?: string } };
}

const PROMPT = 'What is the capital of France?';

/** The text of an Anthropic content block that must be a text block. */
function textOf(block: Anthropic.ContentBlock | undefined): string {
  assert.equal(block?.type, 'text');
  return block.type === 'text' ? block.text : '';
}

test('openai SDK: chat (plain and streaming with usage), embeddings, models', async () => {
  await withLab(async (lab) => {
    const client = new OpenAI({ apiKey: 'lab-key', baseURL: `${lab.url}/v1`, maxRetries: 0 });

    const completion = await client.chat.completions.create({ model: 'lab-1', messages: [{ role: 'user', content: PROMPT }] });
    const answer = completion.choices[0]?.message.content ?? '';
    assert.match(answer, /^Lab answer — /);
    assert.equal(completion.choices[0]?.finish_reason, 'stop');
    const u = completion.usage;
    assert.ok(u && u.prompt_tokens > 0);
    assert.equal(u.total_tokens, u.prompt_tokens + u.completion_tokens);

    const stream = await client.chat.completions.create({
      model: 'lab-1',
      messages: [{ role: 'user', content: PROMPT }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = '';
    let usage: { completion_tokens: number } | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      streamed += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(streamed, answer);
    assert.ok(chunks > 4);
    assert.equal(usage?.completion_tokens, u.completion_tokens);

    // The SDK asks for base64 by default and decodes it back to numbers.
    const docs = ['The cat sat on the mat', 'Stock markets fell sharply today', 'Photosynthesis converts light into chemical energy'];
    const embeddings = await client.embeddings.create({ model: 'lab-embed-1', input: [...docs, 'where did the cat sit?'] });
    assert.equal(embeddings.data.length, 4);
    const vectors: number[][] = embeddings.data.map((d) => d.embedding);
    assert.equal(vectors[0]?.length, 256);
    const query = vectors[3] ?? [];
    const scores = vectors.slice(0, 3).map((v) => v.reduce((s, x, i) => s + x * (query[i] ?? 0), 0));
    assert.equal(scores.indexOf(Math.max(...scores)), 0);
    assert.ok(embeddings.usage.prompt_tokens > 0);
    const sized = await client.embeddings.create({ model: 'lab-embed-1', input: 'x', dimensions: 32, encoding_format: 'float' });
    assert.equal(sized.data[0]?.embedding.length, 32);

    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.ok(ids.includes('lab-1'));
  });
});

test('anthropic SDK: messages (plain and streaming), models', async () => {
  await withLab(async (lab) => {
    const client = new Anthropic({ apiKey: 'lab-key', baseURL: lab.url, maxRetries: 0 });

    const message = await client.messages.create({ model: 'lab-1', max_tokens: 1024, messages: [{ role: 'user', content: PROMPT }] });
    const answer = textOf(message.content[0]);
    assert.match(answer, /^Lab answer — /);
    assert.equal(message.stop_reason, 'end_turn');
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0);

    const stream = client.messages.stream({ model: 'lab-1', max_tokens: 1024, messages: [{ role: 'user', content: PROMPT }] });
    let streamed = '';
    stream.on('text', (text: string) => (streamed += text));
    const final = await stream.finalMessage();
    assert.equal(streamed, answer);
    assert.equal(textOf(final.content[0]), answer);
    assert.equal(final.stop_reason, 'end_turn');
    assert.equal(final.usage.output_tokens, message.usage.output_tokens);
    assert.equal(final.usage.input_tokens, message.usage.input_tokens);

    const raw = await client.messages.create({ model: 'lab-1', max_tokens: 1024, messages: [{ role: 'user', content: PROMPT }], stream: true });
    const types: string[] = [];
    for await (const event of raw) types.push(event.type);
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');

    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    assert.ok(ids.includes('lab-1'));
  });
});

test('the SDKs against failure modes: split SSE reassembles, errors map to typed SDK errors', async () => {
  await withLab(async (lab) => {
    const healthy = new OpenAI({ apiKey: 'lab-key', baseURL: `${lab.url}/v1`, maxRetries: 0 });
    const split = new OpenAI({ apiKey: 'lab-key', baseURL: `${lab.url}/malformed_sse;kind=split;gap_ms=1/v1`, maxRetries: 0 });
    const expected = (await healthy.chat.completions.create({ model: 'lab-1', messages: [{ role: 'user', content: PROMPT }] })).choices[0]?.message.content;
    let streamed = '';
    for await (const chunk of await split.chat.completions.create({ model: 'lab-1', messages: [{ role: 'user', content: PROMPT }], stream: true })) {
      streamed += chunk.choices[0]?.delta?.content ?? '';
    }
    assert.equal(streamed, expected);

    const splitAnthropic = new Anthropic({ apiKey: 'lab-key', baseURL: `${lab.url}/malformed_sse;kind=split;gap_ms=1`, maxRetries: 0 });
    const final = await splitAnthropic.messages.stream({ model: 'lab-1', max_tokens: 1024, messages: [{ role: 'user', content: PROMPT }] }).finalMessage();
    assert.equal(textOf(final.content[0]), expected);

    const limited = new OpenAI({ apiKey: 'lab-key', baseURL: `${lab.url}/rate_limited;retry_after=7/v1`, maxRetries: 0 });
    await assert.rejects(limited.chat.completions.create({ model: 'lab-1', messages: [{ role: 'user', content: PROMPT }] }), (err: SdkError) => {
      assert.equal(err.status, 429);
      assert.equal(err.headers.get('retry-after'), '7');
      return true;
    });

    const overloaded = new Anthropic({ apiKey: 'lab-key', baseURL: `${lab.url}/overloaded;status=529`, maxRetries: 0 });
    await assert.rejects(overloaded.messages.create({ model: 'lab-1', max_tokens: 10, messages: [{ role: 'user', content: PROMPT }] }), (err: SdkError) => {
      assert.equal(err.status, 529);
      assert.equal(err.error?.error?.type, 'overloaded_error');
      return true;
    });

    const midStream = new OpenAI({ apiKey: 'lab-key', baseURL: `${lab.url}/malformed_sse;kind=error_event/v1`, maxRetries: 0 });
    await assert.rejects(async () => {
      for await (const chunk of await midStream.chat.completions.create({ model: 'lab-1', messages: [{ role: 'user', content: PROMPT }], stream: true })) void chunk;
    }, /injected mid-stream error/);
  });
});
