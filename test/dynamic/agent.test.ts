/**
 * The agent tool end to end, on an in-process runtime and a real lab over HTTP (its tool_calls
 * mode): every model turn and every tool call a step of the run, both wire formats, the loop's
 * bounds (maxTurns, tools the worker lacks, calls it cannot make), and text holding `{{` carried
 * through the turns literally. The crash-and-resume proof with real processes is agent-crash.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { z } from 'zod';
import type { RunWithSteps } from '../../src/domain/records.ts';
import { startLab, type Lab } from '../../src/lab/index.ts';
import type { LabRequest } from '../../src/lab/requests.ts';
import type { ProviderConfig } from '../../src/llm/types.ts';
import { ToolRegistry } from '../../src/tools/registry.ts';
import { startTestRuntime, type TestRuntime } from '../helpers/runtime.ts';

let lab: Lab;
let rt: TestRuntime;

const provider = (type: 'openai' | 'anthropic', mode: string): ProviderConfig => ({ type, baseUrl: type === 'openai' ? `${lab.url}/${mode}/v1` : `${lab.url}/${mode}`, model: 'lab-1' });

before(async () => {
  lab = await startLab({ port: 0 });
  rt = await startTestRuntime({
    providers: {
      three: provider('openai', 'tool_calls;turns=3;key=three'),
      pairs: provider('anthropic', `tool_calls;turns=2;calls=2;key=pairs;args=${encodeURIComponent(JSON.stringify({ text: 'keep {{steps.x.outputs}} and {{name}} as they are', n: 1 }))}`),
      many: provider('openai', 'tool_calls;turns=5;key=many'),
      stranger: provider('openai', 'tool_calls;turns=1;tool=teleport;key=stranger'),
      silent: provider('openai', 'tool_calls;turns=2;slow_turn=2;slow_ms=600000;key=silent'),
    },
  });
});
after(async () => {
  await rt.close();
  await lab.close();
});

async function labTurns(key: string): Promise<Array<[number | undefined, number | undefined]>> {
  const res = await fetch(`${lab.url}/requests`);
  const all = ((await res.json()) as { requests: LabRequest[] }).requests;
  return all.filter((r) => r.path.includes(`key=${key}`)).map((r) => [r.turn, r.toolResults]);
}

async function agentRun(inputs: Record<string, unknown>): Promise<RunWithSteps> {
  const created = await rt.submit({ plan: { steps: [{ name: 'ag', tool: 'agent', inputs, timeoutMs: 30_000 }] } });
  return rt.waitRun(created.id, 60_000);
}

test('3 tool-call turns, then the answer: 4 model-turn steps, 3 tool steps, usage summed for the agent and the run', async () => {
  const run = await agentRun({ prompt: 'What is in the box?', tools: ['echo'], provider: 'three', maxTurns: 4 });
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const byName = new Map(run.steps.map((s) => [s.name, s]));
  assert.deepEqual(run.steps.map((s) => [s.name, s.tool, s.addedBy, s.status]), [
    ['ag', 'agent', null, 'succeeded'],
    ['ag-turn-1', 'agent.turn', 'ag', 'succeeded'],
    ['ag-call-1-1', 'echo', 'ag-turn-1', 'succeeded'],
    ['ag-turn-2', 'agent.turn', 'ag-turn-1', 'succeeded'],
    ['ag-call-2-1', 'echo', 'ag-turn-2', 'succeeded'],
    ['ag-turn-3', 'agent.turn', 'ag-turn-2', 'succeeded'],
    ['ag-call-3-1', 'echo', 'ag-turn-3', 'succeeded'],
    ['ag-turn-4', 'agent.turn', 'ag-turn-3', 'succeeded'],
  ]);
  // Each tool call ran with the model's arguments; each turn after the first waited for its calls.
  for (const k of [1, 2, 3]) {
    assert.deepEqual(byName.get(`ag-call-${k}-1`)?.outputs, { turn: k, call: 1 });
    assert.deepEqual(byName.get(`ag-turn-${k + 1}`)?.dependsOn, [`ag-call-${k}-1`]);
    assert.equal(byName.get(`ag-turn-${k}`)?.outputsFrom, `ag-turn-${k + 1}`);
  }
  const out = byName.get('ag')?.outputs as { text: string; turns: number; toolCalls: number; usage: { inputTokens: number; outputTokens: number; calls: number } };
  assert.deepEqual(byName.get('ag-turn-4')?.outputs, out, 'the agent takes the answering turn\'s outputs');
  assert.match(out.text, /^Lab answer — /);
  assert.equal(out.turns, 4);
  assert.equal(out.toolCalls, 3);
  assert.equal(out.usage.calls, 4);
  assert.deepEqual(run.usage, out.usage, 'the run sums the usage of its turns, as the agent does');
  assert.ok(out.usage.inputTokens > 0 && out.usage.outputTokens > 0);
  // Each turn asked once, each with the results of all the calls before it.
  assert.deepEqual(await labTurns('three'), [
    [1, 0],
    [2, 1],
    [3, 2],
    [4, 3],
  ]);
  // A step that went on to wait for an added step's outputs still has its attempt on record.
  for (const name of ['ag', 'ag-turn-1', 'ag-turn-4']) {
    assert.deepEqual((await rt.engine.getStep(run.id, name)).attemptsDetail.map((a) => a.status), ['succeeded'], name);
  }
  const events = await rt.events(run.id);
  assert.equal(events.filter((e) => e.type === 'step.added').length, 7);
  assert.equal(events.filter((e) => e.type === 'llm.usage').length, 4);
});

test('anthropic tool_use, two calls a turn, arguments holding {{ reach the tool as the model wrote them', async () => {
  const run = await agentRun({ messages: [{ role: 'user', content: 'Do it twice {{lbrace}}{{lbrace}}please}}' }], system: 'be brief', tools: ['echo', 'sleep'], provider: 'pairs', stream: false });
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  const calls = run.steps.filter((s) => s.tool === 'echo');
  assert.deepEqual(calls.map((s) => s.name), ['ag-call-1-1', 'ag-call-1-2', 'ag-call-2-1', 'ag-call-2-2']);
  for (const s of calls) {
    assert.deepEqual(s.resolvedInputs, { text: 'keep {{steps.x.outputs}} and {{name}} as they are', n: 1 }, s.name);
    assert.deepEqual(s.outputs, s.resolvedInputs, s.name);
  }
  const turn3 = run.steps.find((s) => s.name === 'ag-turn-3');
  assert.deepEqual(turn3?.dependsOn, ['ag-call-2-1', 'ag-call-2-2']);
  const messages = (turn3?.resolvedInputs as { messages: Array<{ role: string; content: string }> }).messages;
  assert.equal(messages[1]?.content, 'Do it twice {{please}}', 'the prompt is carried literally');
  assert.deepEqual(await labTurns('pairs'), [
    [1, 0],
    [2, 2],
    [3, 4],
  ]);
});

test('maxTurns: a model still calling tools at the last turn fails it with AGENT_MAX_TURNS, and the agent says so', async () => {
  const run = await agentRun({ prompt: 'loop', tools: ['echo'], provider: 'many', maxTurns: 2 });
  assert.equal(run.status, 'failed');
  const turn2 = run.steps.find((s) => s.name === 'ag-turn-2');
  assert.equal(turn2?.error?.code, 'AGENT_MAX_TURNS');
  assert.equal(turn2?.attempts, 1, 'not retried');
  assert.equal(run.steps.some((s) => s.name === 'ag-turn-3' || s.name === 'ag-call-2-1'), false, 'nothing added past the last turn');
  const ag = run.steps.find((s) => s.name === 'ag');
  assert.equal(ag?.error?.code, 'AWAITED_STEP_FAILED');
  assert.equal((ag?.error?.data?.cause as { code?: string } | undefined)?.code, 'AGENT_MAX_TURNS');
  assert.match(ag?.error?.message ?? '', /\(AGENT_MAX_TURNS\)/);
  assert.equal(run.error?.code, 'STEP_FAILED');
  assert.equal((run.error?.data?.error as { code?: string } | undefined)?.code, 'AGENT_MAX_TURNS', 'the run names the turn that failed, and why');
  assert.equal(run.error?.data?.step, 'ag-turn-2');
});

test('tools the worker lacks fail the agent step; a call to a tool the agent was not given goes back to the model as an error', async () => {
  const bad = await agentRun({ prompt: 'x', tools: ['echo', 'teleport'], provider: 'three' });
  assert.equal(bad.status, 'failed');
  assert.equal(bad.steps[0]?.error?.code, 'AGENT_TOOL_UNKNOWN');
  assert.match(bad.steps[0]?.error?.message ?? '', /teleport/);
  assert.equal(bad.steps.length, 1);

  const run = await agentRun({ prompt: 'x', tools: ['echo'], provider: 'stranger' });
  assert.equal(run.status, 'succeeded', JSON.stringify(run.error));
  assert.deepEqual(run.steps.map((s) => s.name), ['ag', 'ag-turn-1', 'ag-turn-2'], 'no step for a call that cannot be made');
  const results = (run.steps[2]?.resolvedInputs as { results: Array<{ error?: string }> }).results;
  assert.match(results[0]?.error ?? '', /no tool "teleport"/);
  assert.deepEqual(await labTurns('stranger'), [
    [1, 0],
    [2, 1],
  ]);
});

test('each turn has its own deadline and hang report: a turn whose model never answers times out alone', async () => {
  const run = await agentRun({ prompt: 'x', tools: ['echo'], provider: 'silent', turnTimeoutMs: 1500, turnRetries: { max: 0 } });
  assert.equal(run.status, 'failed');
  const byName = new Map(run.steps.map((s) => [s.name, s]));
  assert.equal(byName.get('ag-turn-1')?.error?.code, 'AWAITED_STEP_FAILED');
  assert.equal(byName.get('ag-call-1-1')?.status, 'succeeded', 'the turn before and its call finished');
  const turn2 = await rt.engine.getStep(run.id, 'ag-turn-2');
  assert.equal(turn2.status, 'timed_out');
  assert.equal(turn2.timeoutMs, 1500);
  const report = turn2.hangReports[0] as { classification?: { code?: string }; step?: string } | undefined;
  assert.ok(report, 'the turn that hung has a hang report');
  assert.equal(report.classification?.code, 'llm.no_headers', 'which says what the model call waited for');
  assert.equal((report as { operation?: { provider?: string } }).operation?.provider, 'silent');
});

test("a tool's input schema is what the model is offered as its parameters", () => {
  const tools = new ToolRegistry();
  tools.register({ name: 'z', input: z.object({ city: z.string(), days: z.number().int().optional() }), run: () => null });
  tools.register({ name: 'j', input: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, run: () => null });
  tools.register({ name: 'none', run: () => null });
  assert.deepEqual(tools.parameters('z'), {
    type: 'object',
    properties: { city: { type: 'string' }, days: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 } },
    required: ['city'],
  });
  assert.deepEqual(tools.parameters('j'), { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] });
  assert.deepEqual(tools.parameters('none'), { type: 'object' });
});
