/**
 * Reruns on each dialect: a new run that reuses the succeeded steps not downstream of `from`
 * (outputs and artifacts copied, no attempt, `step.reused`), runs the rest with templates resolved
 * from the reused outputs, and handles runs that grew at runtime as rerun-plan.ts documents.
 */
import assert from 'node:assert/strict';
import { validateAdditions } from '../../src/domain/added-steps.ts';
import { RunwardenError } from '../../src/domain/errors.ts';
import { Transitions, type ClaimedStep } from '../../src/engine/transitions.ts';
import { conformance } from './harness.ts';
import { artifact, assertRunBooks, createRun, done, events, failed, LIMITS, tools } from './fixtures.ts';

async function claimOne(core: Transitions, name: string): Promise<ClaimedStep> {
  const [c] = await core.claim('w', 1, 60_000);
  assert.equal(c?.stepName, name);
  return c;
}

const CHAIN = ['s1', 's2', 's3', 's4', 's5'].map((name, i, all) => ({
  name,
  inputs: i === 0 ? { n: 1 } : { prev: `{{steps.${all[i - 1] as string}.outputs.from}}` },
  ...(i > 0 ? { dependsOn: [all[i - 1] as string] } : {}),
}));

async function rejects(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (err: unknown) => err instanceof RunwardenError && err.code === code);
}

conformance('rerun from a step', (it) => {
  it('a run failed at step 4 reruns steps 4 and 5 only, with the earlier outputs and artifacts', async (ctx) => {
    const core = new Transitions(ctx.store);
    const oldId = await createRun(core, CHAIN, { labels: { team: 'a' }, goal: 'five steps' });
    for (const name of ['s1', 's2', 's3']) {
      const c = await claimOne(core, name);
      await core.flush([], [done(c, name === 's2' ? { artifacts: [artifact(c, `art_${ctx.dialect}_s2`, 'notes.txt', new TextEncoder().encode('from s2'), 'text/plain')] } : {})]);
    }
    await core.flush([], [failed(await claimOne(core, 's4'), { code: 'TOOL_ERROR', message: 'boom', retryable: false })]);
    assert.equal((await ctx.store.getRun(oldId))?.status, 'failed');

    const out = await core.rerun(oldId);
    assert.ok(out);
    assert.deepEqual(out.plan.from, ['s4', 's5']);
    const run = await ctx.store.getRun(out.runId);
    assert.equal(run?.rerunOf, oldId);
    assert.equal(run?.goal, 'five steps');
    assert.deepEqual(run?.labels, { team: 'a' });
    assert.equal(run?.stepsTotal, 5);
    assert.equal(run?.stepsDone, 3);
    assert.deepEqual(await ctx.store.getPlan(out.runId), await ctx.store.getPlan(oldId));
    const steps = new Map((await ctx.store.getRunSteps(out.runId)).map((s) => [s.name, s]));
    for (const name of ['s1', 's2', 's3']) {
      const s = steps.get(name);
      assert.equal(s?.status, 'succeeded');
      assert.equal(s?.reusedFrom, oldId);
      assert.equal(s?.attempts, 0);
      assert.deepEqual(s?.outputs, { from: name });
      assert.deepEqual(await ctx.store.listAttempts(out.runId, name), []);
    }
    assert.equal(steps.get('s4')?.status, 'queued');
    assert.deepEqual(steps.get('s4')?.resolvedInputs, { prev: 's3' });
    assert.equal(steps.get('s5')?.status, 'pending');
    const arts = await ctx.store.listArtifacts(out.runId);
    assert.equal(arts.length, 1);
    assert.equal(arts[0]?.stepName, 's2');
    assert.notEqual(arts[0]?.id, `art_${ctx.dialect}_s2`);
    assert.equal((await ctx.store.getArtifact(arts[0]?.id))?.content.toString('utf8'), 'from s2');

    // Only s4 and s5 are claimed: the reused steps' tools are not called again.
    const c4 = await claimOne(core, 's4');
    assert.deepEqual(c4.inputs, { prev: 's3' });
    await core.flush([], [done(c4)]);
    const c5 = await claimOne(core, 's5');
    await core.flush([], [done(c5)]);
    assert.deepEqual(await core.claim('w', 10, 60_000), []);
    assert.equal((await ctx.store.getRun(out.runId))?.status, 'succeeded');
    const list = await assertRunBooks(ctx.store, out.runId);
    assert.deepEqual(list.filter((e) => e.type === 'step.reused').map((e) => [e.stepName, e.data]), [
      ['s1', { reusedFrom: oldId, rerunOf: oldId, artifacts: 0 }],
      ['s2', { reusedFrom: oldId, rerunOf: oldId, artifacts: 1 }],
      ['s3', { reusedFrom: oldId, rerunOf: oldId, artifacts: 0 }],
    ]);
    assert.equal(list[0]?.type, 'run.created');
    assert.equal(list[0]?.data.rerunOf, oldId);

    // A rerun of the rerun, from s3: s1 and s2 still say where their outputs were made.
    const again = await core.rerun(out.runId, ['s3']);
    assert.ok(again);
    const second = new Map((await ctx.store.getRunSteps(again.runId)).map((s) => [s.name, s]));
    assert.equal(second.get('s1')?.reusedFrom, oldId);
    assert.equal(second.get('s3')?.status, 'queued');
    assert.equal(second.get('s4')?.status, 'pending');
    assert.equal((await ctx.store.listArtifacts(again.runId)).length, 1);
  });

  it('refuses unknown steps, a run that has not finished and a rerun with nothing to run', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, CHAIN.slice(0, 2));
    await rejects(core.rerun(runId), 'RUN_NOT_FINISHED');
    assert.equal(await core.rerun('no-such-run'), null);
    await core.flush([], [done(await claimOne(core, 's1'))]);
    await core.flush([], [done(await claimOne(core, 's2'))]);
    await rejects(core.rerun(runId, ['s2', 'nope']), 'UNKNOWN_STEP');
    await rejects(core.rerun(runId), 'NOTHING_TO_RERUN');
    const out = await core.rerun(runId, ['s2']);
    assert.deepEqual((await ctx.store.getRunSteps(out?.runId as string)).map((s) => [s.name, s.status]), [
      ['s1', 'succeeded'],
      ['s2', 'queued'],
    ]);
  });

  it('runs that grew: steps added by a reused step are kept; steps added by a step that runs again are not', async (ctx) => {
    const core = new Transitions(ctx.store);
    const oldId = await createRun(core, [{ name: 'root' }, { name: 'adder', dependsOn: ['root'] }, { name: 'tail', dependsOn: ['adder'] }]);
    await core.flush([], [done(await claimOne(core, 'root'))]);
    const added = await validateAdditions({ steps: [{ name: 'x', tool: 'echo' }, { name: 'y', tool: 'echo', dependsOn: ['x'], inputs: { x: '{{steps.x.outputs.from}}' } }] }, 'adder', tools, LIMITS);
    await core.flush([], [done(await claimOne(core, 'adder'), { added })]);
    const ready = new Map((await core.claim('w', 10, 60_000)).map((c) => [c.stepName, c]));
    assert.deepEqual([...ready.keys()].sort(), ['tail', 'x']);
    await core.flush([], [done(ready.get('tail') as ClaimedStep), failed(ready.get('x') as ClaimedStep, { code: 'TOOL_ERROR', message: 'x broke', retryable: false })]);
    assert.equal((await ctx.store.getRun(oldId))?.status, 'failed');
    assert.equal((await ctx.store.getStep(oldId, 'y'))?.status, 'skipped');

    // Default: x and y run again; the adder is reused, so what it added stays.
    const keep = await core.rerun(oldId);
    assert.ok(keep);
    const kept = new Map((await ctx.store.getRunSteps(keep.runId)).map((s) => [s.name, s]));
    assert.deepEqual([...kept.keys()], ['root', 'adder', 'tail', 'x', 'y']);
    assert.equal(kept.get('adder')?.reusedFrom, oldId);
    assert.equal(kept.get('x')?.status, 'queued');
    assert.equal(kept.get('x')?.addedBy, 'adder');
    assert.equal(kept.get('y')?.status, 'pending');
    const x = await claimOne(core, 'x');
    await core.flush([], [done(x)]);
    const y = await claimOne(core, 'y');
    assert.deepEqual(y.inputs, { x: 'x' });
    await core.flush([], [done(y)]);
    assert.equal((await ctx.store.getRun(keep.runId))?.status, 'succeeded');
    await assertRunBooks(ctx.store, keep.runId);

    // From the adder: it runs again and will add its steps again; x and y are left out.
    const redo = await core.rerun(oldId, ['adder']);
    assert.ok(redo);
    assert.deepEqual(redo.plan.dropped.sort(), ['x', 'y']);
    const rows = await ctx.store.getRunSteps(redo.runId);
    assert.deepEqual(rows.map((s) => [s.name, s.idx, s.status]), [
      ['root', 0, 'succeeded'],
      ['adder', 1, 'queued'],
      ['tail', 2, 'pending'],
    ]);
    assert.equal((await ctx.store.getRun(redo.runId))?.stepsTotal, 3);
    const again = await claimOne(core, 'adder');
    const readded = await validateAdditions({ steps: [{ name: 'x', tool: 'echo' }] }, 'adder', tools, LIMITS);
    await core.flush([], [done(again, { added: readded })]);
    for (const c of await core.claim('w', 10, 60_000)) await core.flush([], [done(c)]);
    assert.equal((await ctx.store.getRun(redo.runId))?.status, 'succeeded');
    const list = await assertRunBooks(ctx.store, redo.runId);
    assert.equal(list.filter((e) => e.type === 'step.added').length, 1);
    assert.ok((await events(ctx.store, redo.runId)).some((e) => e.type === 'step.reused' && e.stepName === 'root'));
  });
});
