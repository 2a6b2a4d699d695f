/**
 * definePlan at run time: the JSON plan it builds (templates for references, dependsOn added for
 * each referenced step), the errors a JavaScript caller gets for what TypeScript would refuse, and
 * the plan running on a real runtime with values passed through references keeping their types.
 * (The compile-time checks are test/types/plan.ts and test/package/pack.test.ts.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { builtins, definePlan, defineTool, jsonSchema, RunwardenError, startRuntime, toolRef } from '../../src/index.ts';

const stats = defineTool({
  name: 'stats',
  input: jsonSchema({ type: 'object', properties: { text: { type: 'string' } }, required: ['text'] }),
  run: (_ctx, input) => ({ words: input.text.split(' ').length, upper: input.text.toUpperCase(), parts: input.text.split(' ').map((w) => ({ w })) }),
});
const repeat = defineTool({
  name: 'repeat',
  input: jsonSchema({ type: 'object', properties: { text: { type: 'string' }, times: { type: 'integer' } }, required: ['text', 'times'] }),
  run: (_ctx, input) => ({ text: Array.from({ length: input.times }, () => input.text).join(' '), timesType: typeof input.times }),
});

describe('definePlan', () => {
  test('builds the JSON plan: references become templates and dependencies', () => {
    const plan = definePlan({ goal: 'g' })
      .step('a', stats, { text: 'one two' })
      .step('b', repeat, (s) => ({ text: s.a.outputs.upper, times: s.a.outputs.words }), { timeoutMs: 5000, retries: { max: 2 } })
      .step('c', builtins.echo, (s) => ({ line: `${s.b.outputs.text} / ${s.a.outputs.parts[1]!.w}` }), { dependsOn: ['a'] })
      .build();
    assert.deepEqual(plan, {
      goal: 'g',
      steps: [
        { name: 'a', tool: 'stats', inputs: { text: 'one two' } },
        { name: 'b', tool: 'repeat', inputs: { text: '{{steps.a.outputs.upper}}', times: '{{steps.a.outputs.words}}' }, dependsOn: ['a'], timeoutMs: 5000, retries: { max: 2 } },
        { name: 'c', tool: 'echo', inputs: { line: '{{steps.b.outputs.text}} / {{steps.a.outputs.parts.1.w}}' }, dependsOn: ['a', 'b'] },
      ],
    });
    assert.equal(JSON.stringify(JSON.parse(JSON.stringify(plan))), JSON.stringify(plan), 'plain JSON, nothing else');
  });

  test('a builder is immutable: each step returns a new one', () => {
    const base = definePlan().step('a', stats, { text: 'x' });
    const one = base.step('b', stats, { text: 'y' }).build();
    const other = base.step('c', stats, { text: 'z' }).build();
    assert.deepEqual(one.steps.map((s) => s.name), ['a', 'b']);
    assert.deepEqual(other.steps.map((s) => s.name), ['a', 'c']);
  });

  test('what TypeScript refuses, JavaScript gets as a PLAN_INVALID error that says what is wrong', () => {
    // Casts stand for untyped JavaScript callers.
    const loose = definePlan().step('a', stats, { text: 'x' }) as unknown as {
      step(name: string, tool: unknown, inputs: unknown, options?: unknown): { build(): unknown };
    };
    const invalid = (fn: () => unknown, message: RegExp): void =>
      assert.throws(fn, (e: unknown) => e instanceof RunwardenError && e.code === 'PLAN_INVALID' && message.test(e.message));
    invalid(() => loose.step('b', stats, (s: Record<string, { outputs: unknown }>) => ({ text: s.nope?.outputs })), /no earlier step named "nope" \(earlier steps: a\)/);
    invalid(() => loose.step('a', stats, { text: 'again' }), /step name "a" is used more than once/);
    invalid(() => loose.step('has space', stats, { text: 'x' }), /must use letters, digits/);
    invalid(() => loose.step('b', stats, { text: 'x' }, { dependsOn: ['later'] }), /refers to "later", which is not an earlier step/);
    invalid(() => loose.step('b', {}, { text: 'x' }), /tool must be a tool definition or toolRef/);
    invalid(() => loose.step('b', stats, (s: Record<string, { outputs: Record<string, unknown> }>) => ({ text: s.a?.outputs['with space'] })), /cannot be referenced/);
    invalid(() => definePlan().build(), /at least one step/);
  });

  test('runs on a real runtime: a referenced number arrives as a number, interpolated text as text', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rw-plan-'));
    const rt = await startRuntime({ port: 0, dataDir: dir, workers: 1, lab: 'off', tools: [stats, repeat], env: {} });
    try {
      const plan = definePlan()
        .step('a', stats, { text: 'ab cd' })
        .step('b', repeat, (s) => ({ text: s.a.outputs.parts[0]!.w, times: s.a.outputs.words }))
        .step('c', toolRef<{ said: string }, { said: string }>('echo'), (s) => ({ said: `${s.b.outputs.text}!` }))
        .build();
      const run = await rt.client.runs.create({ plan });
      const done = await rt.client.waitForRun(run.id, { timeoutMs: 15_000 });
      assert.equal(done.status, 'succeeded');
      const out = Object.fromEntries(done.steps.map((s) => [s.name, s.outputs]));
      assert.deepEqual(out.b, { text: 'ab ab', timesType: 'number' });
      assert.deepEqual(out.c, { said: 'ab ab!' });
    } finally {
      await rt.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
