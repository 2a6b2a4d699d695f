/**
 * Retention on each dialect: pruning deletes finished runs older than the cutoff with everything
 * they own (steps, attempts, events, artifacts, the vectors they stored), never a run that has not
 * finished, and leaves the store usable: collections answer with what is left, and late events of
 * a pruned run are dropped instead of failing the worker's flush.
 */
import assert from 'node:assert/strict';
import { pruneRuns } from '../../src/engine/retention.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { artifact, Clock, coreAt, createRun, done } from './fixtures.ts';

const V = (x: number): number[] => [x, 1 - x, 0.5];

async function rows(store: Store, runId: string): Promise<{ steps: number; events: number; artifacts: number; attempts: number }> {
  const steps = await store.getRunSteps(runId);
  let attempts = 0;
  for (const s of steps) attempts += (await store.listAttempts(runId, s.name)).length;
  return { steps: steps.length, events: (await store.listEvents(runId, 0, 10_000)).length, artifacts: (await store.listArtifacts(runId)).length, attempts };
}

conformance('retention', (it) => {
  it('prunes finished runs older than the cutoff with all they own; running and newer runs stay', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    // Two old runs that finish, each with an artifact and vectors in a shared collection.
    const old: string[] = [];
    for (let i = 0; i < 2; i++) {
      const runId = await createRun(core, [{ name: 'a' }]);
      const [c] = await core.claim('w1', 1, 60_000);
      assert.ok(c);
      await ctx.store.vectors.upsert('shared', [{ text: `old ${i}`, vector: V(0.1 * i) }], { runId });
      await core.flush([], [done(c, { artifacts: [artifact(c, `art_old${i}`, 'out.txt', new TextEncoder().encode('x'))] })]);
      old.push(runId);
    }
    // Vectors stored outside any run (as before runs were recorded) are never pruned.
    await ctx.store.vectors.upsert('shared', [{ text: 'no run', vector: V(0.9) }]);
    clock.advance(3_600_000);
    // An old run still running (claimed, never completed) and a new finished one.
    const running = await createRun(core, [{ name: 'a' }]);
    const [r] = await core.claim('w1', 1, 600_000_000);
    assert.ok(r);
    clock.advance(3_600_000);
    const recent = await createRun(core, [{ name: 'a' }]);
    const [n] = await core.claim('w1', 1, 60_000);
    assert.ok(n);
    await ctx.store.vectors.upsert('shared', [{ text: 'recent', vector: V(0.5) }], { runId: recent });
    await core.flush([], [done(n)]);
    // Warm the collection cache with all four texts.
    assert.equal((await ctx.store.vectors.query('shared', V(0.5), 10)).length, 4);

    const cutoff = clock.now() - 1_800_000;
    assert.equal(await ctx.store.countPrunable(cutoff), 2);
    const counts = await ctx.store.pruneRuns({ before: cutoff, limit: 500 });
    assert.deepEqual(counts, { runs: 2, steps: 2, attempts: 2, events: counts.events, artifacts: 2, vectors: 2, signals: 0 });
    assert.ok(counts.events >= 10, `events ${counts.events}`);
    for (const id of old) {
      assert.equal(await ctx.store.getRun(id), null);
      assert.deepEqual(await rows(ctx.store, id), { steps: 0, events: 0, artifacts: 0, attempts: 0 });
    }
    assert.equal(await ctx.store.getArtifact('art_old0'), null);
    assert.equal((await ctx.store.getRun(running))?.status, 'running');
    assert.equal((await ctx.store.getStep(running, 'a'))?.status, 'running');
    assert.equal((await ctx.store.getRun(recent))?.status, 'succeeded');
    assert.ok((await rows(ctx.store, recent)).events > 0);
    const texts = (await ctx.store.vectors.query('shared', V(0.5), 10)).map((h) => h.text).sort();
    assert.deepEqual(texts, ['no run', 'recent']);
    assert.equal(await ctx.store.vectors.count('shared'), 2);
    assert.equal(await ctx.store.countPrunable(cutoff), 0);

    // The running run's step completes after the prune: its run finishes as usual.
    assert.deepEqual(await core.flush([], [done(r)]), [{ applied: true }]);
    assert.equal((await ctx.store.getRun(running))?.status, 'succeeded');
  });

  it('keepVectors keeps a collection the pruned runs built; late events of a pruned run are dropped', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [c] = await core.claim('w1', 1, 60_000);
    assert.ok(c);
    await ctx.store.vectors.upsert('kb', [{ text: 'fact', vector: V(0.3) }], { runId });
    await core.flush([], [done(c)]);
    clock.advance(10_000);
    const counts = await ctx.store.pruneRuns({ before: clock.now(), limit: 500, keepVectors: true });
    assert.equal(counts.runs, 1);
    assert.equal(counts.vectors, 0);
    assert.equal(await ctx.store.vectors.count('kb'), 1);
    // An abandoned attempt's log line arrives after its run was pruned: the flush carries on.
    const other = await createRun(core, [{ name: 'b' }]);
    const [o] = await core.claim('w1', 1, 60_000);
    assert.ok(o);
    const late = { runId, stepName: 'a', attempt: 1, type: 'step.log', ts: clock.now(), data: { message: 'still here' } };
    assert.deepEqual(await core.flush([late], [done(o)]), [{ applied: true }]);
    assert.equal((await ctx.store.getRun(other))?.status, 'succeeded');
    assert.equal(await ctx.store.getRun(runId), null);
  });

  it('pruneRuns (the engine loop) goes through many batches, and a dry run deletes nothing', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      ids.push(await createRun(core, [{ name: 'a' }]));
      const [c] = await core.claim('w1', 1, 60_000);
      assert.ok(c);
      await core.flush([], [done(c)]);
    }
    const now = clock.advance(86_400_000);
    const dry = await pruneRuns(ctx.store, { olderThanMs: 3_600_000, dryRun: true, now });
    assert.equal(dry.runs, 30);
    assert.equal(dry.remaining, 30);
    assert.equal((await ctx.store.runCounts()).succeeded, 30);
    // Batches of 7: five transactions, the last one short.
    const r = await pruneRuns(ctx.store, { olderThanMs: 3_600_000, now, batchSize: 7 });
    assert.equal(r.runs, 30);
    assert.equal(r.done, true);
    assert.equal(r.remaining, 0);
    assert.equal((await ctx.store.runCounts()).succeeded, 0);
    assert.ok(r.space.after.bytes > 0);
    // A full vacuum runs on either store (SQLite: VACUUM; PostgreSQL: VACUUM (ANALYZE), outside a transaction).
    await ctx.store.vacuum();
    assert.equal((await ctx.store.spaceUsage()).freeBytes, 0);
  });
});
