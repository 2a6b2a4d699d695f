/**
 * The tool_calls mode through the official SDKs (their own stream accumulators put the tool calls
 * back together), both wire formats, streaming and not; and GET /requests, the lab's side of what
 * it was asked.
 */
import Anthropic from '@anthropic-ai/sdk';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import type { LabRequest } from '../../src/lab/requests.ts';
import { withLab } from './helpers.ts';

const tools: OpenAI.ChatCompletionTool[] = [
  { type: 'function', function: { name: 'lookup', description: 'Looks a thing up', parameters: { type: 'object', properties: { turn: { type: 'integer' } } } } },
  { type: 'function', function: { name: 'other', parameters: { type: 'object' } } },
];

async function requests(url: string, since = 0): Promise<LabRequest[]> {
  const res = await fetch(`${url}/requests?since=${since}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { requests: LabRequest[] }).requests;
}

for (const stream of [false, true]) {
  test(`openai SDK (${stream ? 'streaming' : 'plain'}): 2 turns of 2 tool calls, then the answer`, async () => {
    await withLab(async (lab) => {
      const client = new OpenAI({ apiKey: 'lab', baseURL: `${lab.url}/tool_calls;turns=2;calls=2/v1`, maxRetries: 0 });
      const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Find the answer' }];
      const ask = async (): Promise<OpenAI.ChatCompletion> =>
        stream
          ? client.chat.completions.stream({ model: 'lab-1', messages, tools, stream_options: { include_usage: true } }).finalChatCompletion()
          : client.chat.completions.create({ model: 'lab-1', messages, tools });
      for (const turn of [1, 2]) {
        const c = await ask();
        const choice = c.choices[0];
        assert.equal(choice?.finish_reason, 'tool_calls');
        const calls = choice.message.tool_calls ?? [];
        assert.deepEqual(
          calls.map((x) => (x.type === 'function' ? [x.id, x.function.name, JSON.parse(x.function.arguments)] : null)),
          [1, 2].map((n) => [`call_lab_t${turn}_${n}`, 'lookup', { turn, call: n }]),
        );
        assert.ok((c.usage?.prompt_tokens ?? 0) > 0 && (c.usage?.completion_tokens ?? 0) > 0, 'usage on a tool-call turn');
        messages.push(choice.message);
        for (const x of calls) messages.push({ role: 'tool', tool_call_id: x.id, content: `result of ${x.id}` });
      }
      const final = await ask();
      assert.equal(final.choices[0]?.finish_reason, 'stop');
      assert.match(final.choices[0]?.message.content ?? '', /^Lab answer — /);

      const seen = await requests(lab.url);
      assert.deepEqual(seen.map((r) => [r.turn, r.toolResults, r.stream, r.format]), [
        [1, 0, stream, 'openai'],
        [2, 2, stream, 'openai'],
        [3, 4, stream, 'openai'],
      ]);
      assert.deepEqual(seen[0]?.tools, ['lookup', 'other']);
      assert.equal(seen[0]?.path, '/tool_calls;turns=2;calls=2/v1/chat/completions');
    });
  });

  test(`anthropic SDK (${stream ? 'streaming' : 'plain'}): tool_use turns, then the answer; a given tool and arguments`, async () => {
    await withLab(async (lab) => {
      const args = encodeURIComponent(JSON.stringify({ q: 'a{{b}}c', n: [1, 2] }));
      const client = new Anthropic({ apiKey: 'lab', baseURL: `${lab.url}/tool_calls;turns=1;tool=other;args=${args}`, maxRetries: 0 });
      const messages: Anthropic.MessageParam[] = [{ role: 'user', content: 'Find the answer' }];
      const atools: Anthropic.Tool[] = [
        { name: 'lookup', input_schema: { type: 'object' } },
        { name: 'other', input_schema: { type: 'object' } },
      ];
      const ask = (): Promise<Anthropic.Message> =>
        stream
          ? client.messages.stream({ model: 'lab-1', max_tokens: 256, messages, tools: atools }).finalMessage()
          : client.messages.create({ model: 'lab-1', max_tokens: 256, messages, tools: atools });
      const first = await ask();
      assert.equal(first.stop_reason, 'tool_use');
      assert.deepEqual(
        first.content.map((b) => (b.type === 'tool_use' ? [b.id, b.name, b.input] : b.type)),
        [['toolu_lab_t1_1', 'other', { q: 'a{{b}}c', n: [1, 2] }]],
      );
      assert.ok(first.usage.input_tokens > 0 && first.usage.output_tokens > 0);
      messages.push({ role: 'assistant', content: first.content });
      messages.push({ role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_lab_t1_1', content: 'done' }] });
      const final = await ask();
      assert.equal(final.stop_reason, 'end_turn');
      const block = final.content[0];
      assert.match(block?.type === 'text' ? block.text : '', /^Lab answer — /);
      assert.deepEqual((await requests(lab.url)).map((r) => [r.turn, r.toolResults, r.format, r.endpoint]), [
        [1, 0, 'anthropic', 'messages'],
        [2, 1, 'anthropic', 'messages'],
      ]);
    });
  });
}

test('tool_calls: a retried turn gets the same answer; slow_turn slows only its first request; bad parameters are 400s', async () => {
  await withLab(async (lab) => {
    const base = `${lab.url}/tool_calls;turns=3;slow_turn=1;slow_ms=600000/v1`;
    const client = new OpenAI({ apiKey: 'lab', baseURL: base, maxRetries: 0 });
    const body = { model: 'lab-1', messages: [{ role: 'user' as const, content: 'go' }], tools };
    // The first request of turn 1 is held (10 minutes): the client gives up on it.
    await assert.rejects(client.chat.completions.create(body, { timeout: 300 }), /timed out/i);
    const again = await client.chat.completions.create(body);
    const second = await client.chat.completions.create(body);
    assert.deepEqual(again.choices[0]?.message.tool_calls, second.choices[0]?.message.tool_calls);
    assert.equal(again.choices[0]?.message.tool_calls?.[0]?.id, 'call_lab_t1_1');
    assert.deepEqual((await requests(lab.url)).map((r) => r.turn), [1, 1, 1]);
    const since = (await requests(lab.url)).at(-1)?.seq ?? 0;

    const bad = await fetch(`${lab.url}/tool_calls;args=notjson/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
    assert.equal(bad.status, 400);
    assert.match(await bad.text(), /args must be a JSON object/);
    const noTools = await fetch(`${lab.url}/tool_calls/v1/chat/completions`, { method: 'POST', body: JSON.stringify({ ...body, tools: undefined }) });
    assert.equal(noTools.status, 400);
    assert.match(await noTools.text(), /offers no tools/);
    assert.deepEqual((await requests(lab.url, since)).map((r) => r.seq), [since + 1, since + 2], '?since= returns only later requests');
  });
});
