/**
 * Steps added at runtime (ctx.addSteps), end to end on one in-process worker and a real SQLite file:
 * fan-out and nested fan-out, joins, templates on the adding step's outputs, outputsFrom, the
 * maxSteps bound, refused additions, and a retried adding step that adds its steps once.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { EventRecord } from '../../src/domain/records.ts';
import { defineTool } from '../../src/tools/types.ts';
import { startTestEngine, type TestEngine } from '../helpers/engine.ts';

const attemptsOf = new Map<string, number>();

const tools = [
  defineTool({
    name: 'fanout',
    run: (ctx, input: { n: number; prefix?: string; nestAt?: number; join?: boolean }) => {
      const prefix = input.prefix ?? 'child';
      const names = Array.from({ length: input.n }, (_, i) => `${prefix}-${i}`);
      ctx.addSteps(
        names.map((name, i) => ({
          name,
          tool: i === input.nestAt ? 'fanout' : 'echo',
          inputs: i === input.nestAt ? { n: 5, prefix: `${name}-sub` } : { i, seed: '{{steps.' + ctx.stepName + '.outputs.seed}}' },
        })),
      );
      if (input.join) ctx.addSteps([{ name: `${prefix}-join`, tool: 'echo', dependsOn: names, inputs: { first: `{{steps.${prefix}-0.outputs.i}}` } }]);
      return { seed: `from ${ctx.stepName}` };
    },
  }),
  defineTool({
    name: 'flaky-adder',
    run: (ctx) => {
      const n = (attemptsOf.get(ctx.runId) ?? 0) + 1;
      attemptsOf.set(ctx.runId, n);
      ctx.addSteps([{ name: 'added-once', tool: 'echo', inputs: { attempt: ctx.attempt } }]);
      if (n === 1) throw new Error('fails after adding');
      return { ok: true };
    },
  }),
  defineTool({
    name: 'delegate',
    run: (ctx, input: { text: string }) => {
      ctx.addSteps([{ name: `${ctx.stepName}-work`, tool: 'echo', dependsOn: [], inputs: { text: input.text.toUpperCase() } }], { outputsFrom: `${ctx.stepName}-work` });
      return { ignored: true };
    },
  }),
  defineTool({
    name: 'adds-bad',
    run: (ctx, input: { kind: string }) => {
      if (input.kind === 'unknown-tool') ctx.addSteps([{ name: 'x', tool: 'no-such-tool' }]);
      if (input.kind === 'taken') ctx.addSteps([{ name: 'first', tool: 'echo' }]);
      if (input.kind === 'dangling') ctx.addSteps([{ name: 'x', tool: 'echo', dependsOn: ['nowhere'] }]);
      if (input.kind === 'shape') {
        try {
          ctx.addSteps([{ name: 'bad name!', tool: 'echo' }]);
        } catch (err) {
          return { threw: (err as { code?: string }).code };
        }
      }
      return {};
    },
  }),
];

let t: TestEngine;
before(async () => {
  t = await startTestEngine({ tools });
});
after(async () => {
  await t.close();
});

async function events(runId: string): Promise<EventRecord[]> {
  return t.engine.listEvents(runId, 0, 10_000);
}

describe('ctx.addSteps', () => {
  test('fan-out of 50, one of which adds 5: all run, one step.finished each, the run ends after the last', async () => {
    const run = await t.submit({ plan: { steps: [{ name: 'root', tool: 'fanout', inputs: { n: 50, nestAt: 7, join: true } }] } });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    assert.equal(done.stepsTotal, 1 + 50 + 1 + 5);
    assert.equal(done.steps.length, 57);
    assert.ok(done.steps.every((s) => s.status === 'succeeded'));
    const byName = new Map(done.steps.map((s) => [s.name, s]));
    assert.equal(byName.get('child-3')?.addedBy, 'root');
    assert.equal(byName.get('child-7-sub-2')?.addedBy, 'child-7');
    assert.equal(byName.get('root')?.addedBy, null);
    assert.deepEqual(byName.get('child-3')?.outputs, { i: 3, seed: 'from root' });
    assert.deepEqual(byName.get('child-join')?.outputs, { first: 0 });
    assert.deepEqual(
      done.steps.map((s) => s.idx),
      done.steps.map((_, i) => i),
    );
    const evs = await events(run.id);
    const finished = evs.filter((e) => e.type === 'step.finished').map((e) => e.stepName);
    assert.equal(finished.length, 57);
    assert.equal(new Set(finished).size, 57);
    const added = evs.filter((e) => e.type === 'step.added');
    assert.equal(added.length, 56);
    assert.equal(added.find((e) => e.stepName === 'child-7-sub-0')?.data.addedBy, 'child-7');
    const last = evs.at(-1) as EventRecord;
    assert.equal(last.type, 'run.finished');
    assert.equal((last.data.steps as { total: number }).total, 57);
    // The join ran after every child.
    const seqOf = (type: string, step: string): number => evs.find((e) => e.type === type && e.stepName === step)?.seq ?? -1;
    for (let i = 0; i < 50; i++) assert.ok(seqOf('step.finished', `child-${i}`) < seqOf('step.started', 'child-join'));
  });

  test('a retried adding step adds its steps once: a failed attempt adds nothing', async () => {
    const run = await t.submit({ plan: { steps: [{ name: 'adder', tool: 'flaky-adder', retries: { max: 2, backoffMs: 1 } }] } });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual(
      done.steps.map((s) => [s.name, s.attempts]),
      [
        ['adder', 2],
        ['added-once', 1],
      ],
    );
    assert.deepEqual(done.steps[1]?.outputs, { attempt: 2 });
    assert.equal((await events(run.id)).filter((e) => e.type === 'step.added').length, 1);
  });

  test('outputsFrom: the adding step waits, pending, and takes the added step outputs; its dependents wait too', async () => {
    const run = await t.submit({
      plan: {
        steps: [
          { name: 'lead', tool: 'delegate', inputs: { text: 'hi' } },
          { name: 'after', tool: 'echo', dependsOn: ['lead'], inputs: { got: '{{steps.lead.outputs.text}}' } },
        ],
      },
    });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'succeeded', JSON.stringify(done.error));
    const byName = new Map(done.steps.map((s) => [s.name, s]));
    assert.deepEqual(byName.get('lead')?.outputs, { text: 'HI' });
    assert.equal(byName.get('lead')?.outputsFrom, 'lead-work');
    assert.deepEqual(byName.get('after')?.outputs, { got: 'HI' });
    const evs = await events(run.id);
    assert.ok(evs.some((e) => e.type === 'step.awaiting' && e.stepName === 'lead' && e.data.step === 'lead-work'));
    assert.equal(evs.filter((e) => e.type === 'step.finished' && e.stepName === 'lead').length, 1);
  });

  test('maxSteps: an attempt that would exceed it fails with MAX_STEPS_EXCEEDED and adds nothing', async () => {
    const run = await t.submit({ plan: { steps: [{ name: 'root', tool: 'fanout', inputs: { n: 10 } }] }, maxSteps: 10 });
    const done = await t.waitRun(run.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.maxSteps, 10);
    assert.equal(done.steps.length, 1);
    assert.equal(done.steps[0]?.error?.code, 'MAX_STEPS_EXCEEDED');
    assert.match(done.steps[0]?.error?.message ?? '', /would bring run .* to 11 steps; its maxSteps is 10/);
  });

  test('refused additions fail the adding step with STEPS_INVALID and a detail per problem', async () => {
    for (const [kind, code] of [
      ['unknown-tool', 'UNKNOWN_TOOL'],
      ['taken', 'DUPLICATE_STEP'],
      ['dangling', 'UNKNOWN_DEPENDENCY'],
    ] as const) {
      const run = await t.submit({ plan: { steps: [{ name: 'first', tool: 'adds-bad', inputs: { kind } }] } });
      const done = await t.waitRun(run.id);
      assert.equal(done.status, 'failed', kind);
      const err = done.steps[0]?.error;
      assert.equal(err?.code, 'STEPS_INVALID', kind);
      assert.equal(err?.details?.[0]?.code, code, `${kind}: ${JSON.stringify(err)}`);
      assert.equal(done.steps.length, 1);
    }
    const run = await t.submit({ plan: { steps: [{ name: 'first', tool: 'adds-bad', inputs: { kind: 'shape' } }] } });
    const done = await t.waitRun(run.id);
    assert.deepEqual(done.steps[0]?.outputs, { threw: 'STEPS_INVALID' });
  });

  test('a maxSteps below the plan is refused at submission', async () => {
    await assert.rejects(
      t.submit({ plan: { steps: [{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'echo' }] }, maxSteps: 1 }),
      (err: { code?: string; details?: Array<{ path?: string }> }) => err.code === 'PLAN_INVALID' && err.details?.[0]?.path === 'maxSteps',
    );
  });
});
