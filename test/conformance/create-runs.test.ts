/**
 * Creating many runs at once: `createRuns` (the batch route's transition) and concurrent
 * `createRun` calls (written together, src/engine/group-commit.ts). Every run is stored whole with
 * its events, idempotency keys hold within a batch, across batches and across concurrent callers.
 */
import assert from 'node:assert/strict';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, coreAt, done, validate } from './fixtures.ts';

conformance('creating runs in batches', (it) => {
  it('createRuns writes every run in order; a repeated key returns the run it names', async (ctx) => {
    const core = coreAt(ctx.store, new Clock());
    const items = await Promise.all(
      [
        validate([{ name: 'a', inputs: { i: 0 } }]),
        validate([{ name: 'a', inputs: { i: 1 } }], { idempotencyKey: 'k1' }),
        validate([{ name: 'a' }, { name: 'b', dependsOn: ['a'] }]),
        validate([{ name: 'a', inputs: { i: 3 } }], { idempotencyKey: 'k1' }),
      ].map(async (p) => ({ run: await p, rawPlan: {} })),
    );
    const out = await core.createRuns(items);
    assert.deepEqual(out.map((r) => r.created), [true, true, true, false]);
    assert.equal(out[3]?.runId, out[1]?.runId);
    const again = await core.createRuns([{ run: await validate([{ name: 'a' }], { idempotencyKey: 'k1' }), rawPlan: {} }]);
    assert.deepEqual(again, [{ runId: out[1]?.runId, created: false }]);
    // Every run is whole: its steps, its events, and it runs to the end.
    for (;;) {
      const claims = await core.claim('w1', 10, 60_000);
      if (claims.length === 0) break;
      await core.flush([], claims.map((c) => done(c)));
    }
    for (const id of new Set(out.map((r) => r.runId))) {
      assert.equal((await ctx.store.getRun(id))?.status, 'succeeded');
      const events = await assertRunBooks(ctx.store, id);
      assert.equal(events[0]?.type, 'run.created');
    }
    assert.deepEqual((await ctx.store.getRunSteps(out[2]?.runId as string)).map((s) => s.name), ['a', 'b']);
  });

  it('concurrent createRun calls share transactions and each gets its own run; one key, one run', async (ctx) => {
    const core = coreAt(ctx.store, new Clock());
    const before = core.groupStats();
    const n = 60;
    const plain = await Promise.all(Array.from({ length: n }, async (_, i) => core.createRun(await validate([{ name: 's', inputs: { i } }]), {})));
    const keyed = await Promise.all(Array.from({ length: 10 }, async () => core.createRun(await validate([{ name: 's' }], { idempotencyKey: 'same' }), {})));
    const after = core.groupStats();
    assert.equal(after.items - before.items, n + 10);
    assert.ok(after.groups - before.groups < n + 10, `${n + 10} calls in ${after.groups - before.groups} transactions`);
    assert.equal(new Set(plain.map((r) => r.runId)).size, n);
    assert.ok(plain.every((r) => r.created));
    for (const [i, r] of plain.entries()) assert.deepEqual((await ctx.store.getStep(r.runId, 's'))?.inputs, { i });
    assert.equal(new Set(keyed.map((r) => r.runId)).size, 1);
    assert.equal(keyed.filter((r) => r.created).length, 1);
  });

  it('callers on separate connections racing one key create one run', async (ctx) => {
    const others = await Promise.all([ctx.another(), ctx.another(), ctx.another()]);
    const results = await Promise.all(
      [ctx.store, ...others].flatMap((s) => Array.from({ length: 3 }, async () => coreAt(s, new Clock()).createRun(await validate([{ name: 's' }], { idempotencyKey: 'race' }), {}))),
    );
    assert.equal(new Set(results.map((r) => r.runId)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
  });
});
