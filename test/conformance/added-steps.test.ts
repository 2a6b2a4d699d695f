/**
 * Steps added at runtime on each dialect: what a completion adds commits with it, dependencies on
 * steps of every state settle at once, concurrent additions to one run keep positions distinct and
 * maxSteps exact, and a step added on a dependency that ends at the same moment is released.
 */
import assert from 'node:assert/strict';
import { validateAdditions, type StepAdditions } from '../../src/domain/added-steps.ts';
import { Transitions, type ClaimedStep } from '../../src/engine/transitions.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, createRun, done, events, failed, LIMITS, tools } from './fixtures.ts';

const additions = (a: StepAdditions, adder: string) => validateAdditions(a, adder, tools, LIMITS);

async function claimAll(core: Transitions, n: number): Promise<Map<string, ClaimedStep>> {
  const out = new Map<string, ClaimedStep>();
  for (const c of await core.claim('w', n, 60_000)) out.set(c.stepName, c);
  return out;
}

/** Claims and completes what is ready until nothing is, returning how many it completed. */
async function drain(core: Transitions, worker = 'w'): Promise<number> {
  let n = 0;
  for (;;) {
    const batch = await core.claim(worker, 50, 60_000);
    if (batch.length === 0) return n;
    await core.flush([], batch.map((c) => done(c)));
    n += batch.length;
  }
}

conformance('steps added at runtime', (it) => {
  it('added steps commit with the completion; dependencies on finished, running and added steps settle', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, [{ name: 'early' }, { name: 'adder' }, { name: 'sibling' }, { name: 'broken', tool: 'noop' }]);
    const claims = await claimAll(core, 4);
    // `early` succeeded and `broken` failed before the additions.
    await core.flush([], [done(claims.get('early') as ClaimedStep), failed(claims.get('broken') as ClaimedStep, { code: 'TOOL_ERROR', message: 'no', retryable: false })]);
    const added = await additions(
      {
        steps: [
          { name: 'on-adder', tool: 'echo', inputs: { said: '{{steps.adder.outputs.from}}', before: '{{steps.early.outputs.from}}' } },
          { name: 'on-sibling', tool: 'echo', dependsOn: ['sibling'], inputs: { s: '{{steps.sibling.outputs.from}}' } },
          { name: 'on-early', tool: 'echo', dependsOn: ['early'] },
          { name: 'on-broken', tool: 'echo', dependsOn: ['broken'] },
          { name: 'after-broken', tool: 'echo', dependsOn: ['on-broken'] },
          { name: 'join', tool: 'echo', dependsOn: ['on-adder', 'on-sibling'] },
        ],
      },
      'adder',
    );
    const [res] = await core.flush([], [done(claims.get('adder') as ClaimedStep, { added })]);
    assert.deepEqual(res, { applied: true });
    const steps = new Map((await ctx.store.getRunSteps(runId)).map((s) => [s.name, s]));
    assert.equal(steps.size, 10);
    assert.equal((await ctx.store.getRun(runId))?.stepsTotal, 10);
    assert.deepEqual([...steps.values()].map((s) => s.idx), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(steps.get('on-adder')?.status, 'queued');
    assert.deepEqual(steps.get('on-adder')?.resolvedInputs, { said: 'adder', before: 'early' });
    assert.equal(steps.get('on-early')?.status, 'queued');
    assert.equal(steps.get('on-sibling')?.status, 'pending');
    assert.equal(steps.get('on-broken')?.status, 'skipped');
    assert.equal(steps.get('after-broken')?.status, 'skipped');
    assert.equal(steps.get('join')?.status, 'pending');
    assert.deepEqual(steps.get('sibling')?.dependents, ['on-sibling']);
    assert.equal(steps.get('on-sibling')?.addedBy, 'adder');
    const list = await events(ctx.store, runId);
    assert.deepEqual(
      list.filter((e) => e.type === 'step.added').map((e) => [e.stepName, e.data.addedBy]),
      ['on-adder', 'on-sibling', 'on-early', 'on-broken', 'after-broken', 'join'].map((n) => [n, 'adder']),
    );
    // The sibling finishing releases the step that depends on it; then everything runs.
    await core.flush([], [done(claims.get('sibling') as ClaimedStep)]);
    assert.equal((await ctx.store.getStep(runId, 'on-sibling'))?.status, 'queued');
    assert.equal(await drain(core), 4);
    assert.deepEqual((await ctx.store.getStep(runId, 'on-sibling'))?.resolvedInputs, { s: 'sibling' });
    const run = await ctx.store.getRun(runId);
    assert.equal(run?.status, 'failed');
    assert.equal(run?.stepsDone, 10);
    await assertRunBooks(ctx.store, runId);
  });

  it('an adding step that lost its lease adds nothing', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, [{ name: 'adder' }]);
    const [claim] = await core.claim('w', 1, 60_000);
    assert.ok(claim);
    const added = await additions({ steps: [{ name: 'child', tool: 'echo' }] }, 'adder');
    const [res] = await core.flush([], [{ ...done(claim, { added }), token: 'not-the-lease' }]);
    assert.deepEqual(res, { applied: false, refused: 'lease_lost' });
    assert.equal((await ctx.store.getRunSteps(runId)).length, 1);
  });

  it('concurrent additions to one run: positions distinct, every step once, maxSteps exact', async (ctx) => {
    const setup = new Transitions(ctx.store);
    // 20 adders of 3 steps each; room for 17 of them under maxSteps 71 (20 + 17 * 3).
    const runId = await createRun(setup, Array.from({ length: 20 }, (_, i) => ({ name: `adder${i}` })), { maxSteps: 71 });
    const stores: Store[] = [ctx.store, await ctx.another(), await ctx.another(), await ctx.another()];
    const claims = [...(await claimAll(setup, 20)).values()];
    await Promise.all(
      stores.map(async (store, i) => {
        const core = new Transitions(store);
        const mine = claims.filter((_, j) => j % stores.length === i);
        for (const c of mine) {
          const added = await additions({ steps: [0, 1, 2].map((k) => ({ name: `${c.stepName}-c${k}`, tool: 'echo' })) }, c.stepName);
          const [res] = await core.flush([], [done(c, { added })]);
          assert.deepEqual(res, { applied: true });
        }
      }),
    );
    const steps = await ctx.store.getRunSteps(runId);
    assert.equal(steps.length, 71);
    assert.deepEqual(
      steps.map((s) => s.idx),
      steps.map((_, i) => i),
      'positions 0..70, each once',
    );
    const refused = steps.filter((s) => s.error?.code === 'MAX_STEPS_EXCEEDED');
    assert.equal(refused.length, 3);
    assert.equal((await ctx.store.getRun(runId))?.stepsTotal, 71);
    await drain(setup);
    assert.equal((await ctx.store.getRun(runId))?.status, 'failed');
    await assertRunBooks(ctx.store, runId);
  });

  it('a step added on a dependency that ends at the same moment is released, never left pending', async (ctx) => {
    const a = new Transitions(ctx.store);
    const b = new Transitions(await ctx.another());
    for (let round = 0; round < 15; round++) {
      const runId = await createRun(a, [{ name: 'adder' }, { name: 'sibling' }]);
      const claims = new Map<string, ClaimedStep>();
      for (const c of await a.claim(`w${round}`, 2, 60_000)) claims.set(c.stepName, c);
      const added = await additions({ steps: [{ name: 'late', tool: 'echo', dependsOn: ['adder', 'sibling'] }] }, 'adder');
      await Promise.all([a.flush([], [done(claims.get('adder') as ClaimedStep, { added })]), b.flush([], [done(claims.get('sibling') as ClaimedStep)])]);
      const late = await ctx.store.getStep(runId, 'late');
      assert.equal(late?.status, 'queued', `round ${round}: late is ${late?.status} with ${late?.pendingDeps} pending`);
      assert.equal(await drain(a, `w${round}`), 1);
      assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
    }
  });

  it('endSteps returns the dependents a step has when it ends, appended by another transaction meanwhile', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, [{ name: 'x' }, { name: 'y' }]);
    const other = await ctx.another();
    const seen = await ctx.store.transaction(async (tx) => {
      const [x] = await tx.getSteps([{ runId, name: 'x' }]);
      assert.deepEqual(x?.dependents, []);
      if (ctx.dialect === 'postgres') {
        // Another connection appends and commits between this transaction's read and its update.
        assert.deepEqual(await other.transaction((t2) => t2.appendDependents([{ runId, name: 'x', add: ['n'] }])), [true]);
      } else {
        // SQLite runs one transaction at a time: the append can only come from this one.
        assert.deepEqual(await tx.appendDependents([{ runId, name: 'x', add: ['n'] }]), [true]);
      }
      return tx.endSteps([{ runId, name: 'x', expectStatus: ['queued'], patch: { status: 'cancelled' }, dependents: ctx.dialect === 'postgres' ? [] : ['n'] }]);
    });
    assert.deepEqual(seen, [['n']]);
    // Only steps that have not ended take dependents; a lease token, when given, must match.
    const appended = await ctx.store.transaction((tx) =>
      tx.appendDependents([
        { runId, name: 'x', add: ['m'] },
        { runId, name: 'y', add: ['m'], expectToken: 'nope' },
      ]),
    );
    assert.deepEqual(appended, [false, false]);
    assert.deepEqual(await ctx.store.transaction((tx) => tx.appendDependents([{ runId, name: 'y', add: ['m'] }])), [true]);
    assert.deepEqual((await ctx.store.getStep(runId, 'y'))?.dependents, ['m']);
  });
});
