/**
 * Tool calling through runwarden's own providers: the tools go out in each provider's format, the
 * model's calls come back in one shape (ChatResult.toolCalls), and results go back as OpenAI
 * `role: "tool"` messages and Anthropic `tool_result` blocks. Against the lab's tool_calls mode
 * (real HTTP), streaming and not; the exact request bodies against a capturing server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startLab, type Lab } from '../../src/lab/index.ts';
import type { LabRequest } from '../../src/lab/requests.ts';
import { ProviderRegistry } from '../../src/llm/registry.ts';
import type { CallOptions, ChatMessage, ToolSpec } from '../../src/llm/types.ts';
import { completionJson, startServer } from './helpers.ts';

let lab: Lab;
before(async () => {
  lab = await startLab({ port: 0 });
});
after(async () => {
  await lab.close();
});

const opts = (): CallOptions => ({ signal: new AbortController().signal, deadline: Date.now() + 10_000 });
const tools: ToolSpec[] = [
  { name: 'lookup', description: 'Looks a thing up', parameters: { type: 'object', properties: { turn: { type: 'integer' } } } },
  { name: 'other', parameters: { type: 'object' } },
];

async function labRequests(since: number): Promise<LabRequest[]> {
  const res = await fetch(`${lab.url}/requests?since=${since}`);
  return ((await res.json()) as { requests: LabRequest[] }).requests;
}

for (const type of ['openai', 'anthropic'] as const) {
  for (const stream of [false, true]) {
    it(`${type} (${stream ? 'streaming' : 'plain'}): two turns of two calls, results sent back, then the answer`, async () => {
      const base = type === 'openai' ? `${lab.url}/tool_calls;turns=2;calls=2;key=${type}${stream}/v1` : `${lab.url}/tool_calls;turns=2;calls=2;key=${type}${stream}`;
      const registry = new ProviderRegistry({ env: {}, providers: { p: { type, baseUrl: base, model: 'lab-1' } } });
      try {
        const provider = registry.get('p');
        const since = (await labRequests(0)).at(-1)?.seq ?? 0;
        const messages: ChatMessage[] = [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'Find it' }];
        const prefix = type === 'openai' ? 'call' : 'toolu';
        for (const turn of [1, 2]) {
          const r = await provider.chat({ messages, tools, stream }, opts());
          assert.equal(r.finishReason, type === 'openai' ? 'tool_calls' : 'tool_use');
          assert.deepEqual(r.toolCalls.map((c) => [c.id, c.name, JSON.parse(c.arguments)]), [1, 2].map((n) => [`${prefix}_lab_t${turn}_${n}`, 'lookup', { turn, call: n }]));
          assert.equal(r.text, '');
          assert.ok(r.usage.inputTokens > 0 && r.usage.outputTokens > 0);
          messages.push({ role: 'assistant', content: r.text, toolCalls: r.toolCalls });
          for (const c of r.toolCalls) messages.push({ role: 'tool', toolCallId: c.id, content: JSON.stringify({ found: c.id }) });
        }
        const final = await provider.chat({ messages, tools, stream }, opts());
        assert.deepEqual(final.toolCalls, []);
        assert.match(final.text, /^Lab answer — /);
        assert.equal(final.finishReason, type === 'openai' ? 'stop' : 'end_turn');
        const seen = await labRequests(since);
        assert.deepEqual(seen.map((r) => [r.turn, r.toolResults, r.stream]), [
          [1, 0, stream],
          [2, 2, stream],
          [3, 4, stream],
        ]);
        assert.deepEqual(seen[0]?.tools, ['lookup', 'other']);
      } finally {
        registry.close();
      }
    });
  }
}

describe('what goes on the wire', () => {
  const conversation: ChatMessage[] = [
    { role: 'system', content: 'sys' },
    { role: 'user', content: 'go' },
    { role: 'assistant', content: '', toolCalls: [{ id: 'a', name: 'lookup', arguments: '{"q":1}' }, { id: 'b', name: 'other', arguments: '{}' }] },
    { role: 'tool', toolCallId: 'a', content: '{"r":1}' },
    { role: 'tool', toolCallId: 'b', content: 'plain' },
  ];

  it('openai: tools as functions, calls as tool_calls, results as role "tool"', async () => {
    const server = await startServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(completionJson('ok')));
    const registry = new ProviderRegistry({ env: {}, providers: { p: { type: 'openai', baseUrl: `${server.url}/v1` } } });
    try {
      await registry.get('p').chat({ messages: conversation, tools, stream: false }, opts());
      const body = JSON.parse(server.requests[0]?.body ?? '{}') as Record<string, unknown>;
      assert.deepEqual(body.tools, [
        { type: 'function', function: { name: 'lookup', description: 'Looks a thing up', parameters: tools[0]?.parameters } },
        { type: 'function', function: { name: 'other', parameters: { type: 'object' } } },
      ]);
      assert.deepEqual((body.messages as unknown[]).slice(2), [
        { role: 'assistant', content: null, tool_calls: [{ id: 'a', type: 'function', function: { name: 'lookup', arguments: '{"q":1}' } }, { id: 'b', type: 'function', function: { name: 'other', arguments: '{}' } }] },
        { role: 'tool', tool_call_id: 'a', content: '{"r":1}' },
        { role: 'tool', tool_call_id: 'b', content: 'plain' },
      ]);
    } finally {
      registry.close();
      await server.close();
    }
  });

  it('anthropic: tools with input_schema, calls as tool_use blocks, the results of a turn in one user message', async () => {
    const server = await startServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ content: [{ type: 'text', text: 'ok' }], stop_reason: 'end_turn', usage: { input_tokens: 1, output_tokens: 1 } })),
    );
    const registry = new ProviderRegistry({ env: {}, providers: { p: { type: 'anthropic', baseUrl: server.url } } });
    try {
      await registry.get('p').chat({ messages: conversation, tools, stream: false }, opts());
      const body = JSON.parse(server.requests[0]?.body ?? '{}') as Record<string, unknown>;
      assert.equal(body.system, 'sys');
      assert.deepEqual(body.tools, [
        { name: 'lookup', description: 'Looks a thing up', input_schema: tools[0]?.parameters },
        { name: 'other', input_schema: { type: 'object' } },
      ]);
      assert.deepEqual(body.messages, [
        { role: 'user', content: 'go' },
        { role: 'assistant', content: [{ type: 'tool_use', id: 'a', name: 'lookup', input: { q: 1 } }, { type: 'tool_use', id: 'b', name: 'other', input: {} }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'a', content: '{"r":1}' }, { type: 'tool_result', tool_use_id: 'b', content: 'plain' }] },
      ]);
    } finally {
      registry.close();
      await server.close();
    }
  });
});
