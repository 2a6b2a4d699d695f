/**
 * Several stores on one database, used at once: as far as the database can tell, several processes.
 */
import assert from 'node:assert/strict';
import { Transitions, type ClaimedStep } from '../../src/engine/transitions.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, byKey, createRun, done, validate } from './fixtures.ts';

const CLAIMERS = 4;

conformance('concurrent writers', (it) => {
  it('concurrent claimers never claim the same step twice', async (ctx) => {
    const setup = new Transitions(ctx.store);
    // One wide run (every claimer contends for its run row) and many small ones.
    const wide = await createRun(
      setup,
      Array.from({ length: 200 }, (_, i) => ({ name: `s${i}`, tool: 'noop' })),
    );
    const small: string[] = [];
    for (let r = 0; r < 20; r++) {
      small.push(await createRun(setup, [{ name: 'a', tool: 'noop' }, { name: 'b', tool: 'noop' }, { name: 'c', tool: 'noop', dependsOn: ['a', 'b'] }]));
    }
    const total = 200 + 20 * 3;
    const stores: Store[] = [ctx.store];
    for (let i = 1; i < CLAIMERS; i++) stores.push(await ctx.another());
    const claimed: ClaimedStep[] = [];
    let finished = 0;
    await Promise.all(
      stores.map(async (store, i) => {
        const core = new Transitions(store);
        let idle = 0;
        // Claim small batches and complete them, so claims race completions (which release
        // dependants) as well as each other; stop once everything is done.
        while (finished < total && idle < 400) {
          const batch = await core.claim(`w${i}`, 1 + (i % 3) * 3, 60_000);
          if (batch.length === 0) {
            idle++;
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          idle = 0;
          claimed.push(...batch);
          const results = await core.flush([], batch.map((c) => done(c)));
          assert.ok(results.every((r) => r.applied));
          finished += batch.length;
        }
      }),
    );
    const keys = claimed.map(byKey);
    assert.equal(new Set(keys).size, keys.length, 'no step was claimed twice');
    assert.equal(keys.length, total, 'every step was claimed');
    for (const runId of [wide, ...small]) {
      assert.equal((await ctx.store.getRun(runId))?.status, 'succeeded');
      const list = await assertRunBooks(ctx.store, runId);
      const started = list.filter((e) => e.type === 'step.started').map((e) => e.stepName);
      assert.equal(new Set(started).size, started.length, 'one step.started per step');
      assert.equal(list.filter((e) => e.type === 'run.started').length, 1, 'the run started once');
      for (const s of await ctx.store.getRunSteps(runId)) assert.equal(s.attempts, 1, `${s.name} ran once`);
    }
    assert.deepEqual(await ctx.store.stepCounts(), { pending: 0, queued: 0, running: 0, succeeded: total, failed: 0, timed_out: 0, cancelled: 0, skipped: 0 });
  });

  it('event seq stays strictly increasing and gap-free under concurrent writers, and a reader never skips one', async (ctx) => {
    const core = new Transitions(ctx.store);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [claim] = await core.claim('w0', 1, 60_000);
    assert.ok(claim);
    const stores: Store[] = [ctx.store];
    for (let i = 1; i < CLAIMERS; i++) stores.push(await ctx.another());
    const reader = await ctx.another();
    const seen: number[] = [];
    let writing = true;
    const reading = (async () => {
      // Follows the run like an SSE stream does: always "after the last seq I saw". If a larger seq
      // ever became visible before a smaller one, this reader would jump over the smaller one.
      while (writing) {
        const page = await reader.listEvents(runId, seen.at(-1) ?? 0, 1000);
        for (const e of page) seen.push(e.seq);
        if (page.length === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const perWriter = 25;
    await Promise.all(
      stores.map(async (store, w) => {
        const c = new Transitions(store);
        for (let i = 0; i < perWriter; i++) {
          const n = 1 + ((w + i) % 3);
          await c.flush(
            Array.from({ length: n }, (_, k) => ({ runId, stepName: 'a', attempt: 1, type: 'step.log', ts: Date.now(), data: { w, i, k } })),
            [],
          );
        }
      }),
    );
    writing = false;
    await reading;
    for (const e of await reader.listEvents(runId, seen.at(-1) ?? 0, 10_000)) seen.push(e.seq);
    const all = await ctx.store.listEvents(runId, 0, 100_000);
    const expected = Array.from({ length: all.length }, (_, i) => i + 1);
    assert.deepEqual(
      all.map((e) => e.seq),
      expected,
    );
    assert.deepEqual(seen, expected, 'the reader saw every seq, in order, none skipped');
    const logs = all.filter((e) => e.type === 'step.log');
    let written = 0;
    for (let w = 0; w < stores.length; w++) for (let i = 0; i < perWriter; i++) written += 1 + ((w + i) % 3);
    assert.equal(logs.length, written);
    // Within one transaction, events keep the order they were written in.
    for (let i = 1; i < logs.length; i++) {
      const a = logs[i - 1]?.data as { w: number; i: number; k: number };
      const b = logs[i]?.data as { w: number; i: number; k: number };
      if (a.w === b.w && a.i === b.i) assert.equal(b.k, a.k + 1);
    }
  });

  it('one idempotency key submitted by many processes at once creates one run', async (ctx) => {
    const validated = await validate([{ name: 'a' }], { idempotencyKey: 'same-key' });
    const stores: Store[] = [ctx.store];
    for (let i = 1; i < 6; i++) stores.push(await ctx.another());
    const results = await Promise.all(stores.map((s) => new Transitions(s).createRun(validated, {})));
    assert.equal(new Set(results.map((r) => r.runId)).size, 1, 'every caller gets the same run');
    assert.equal(results.filter((r) => r.created).length, 1, 'exactly one created it');
    const runs = await ctx.store.listRuns({ limit: 10 });
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.idempotencyKey, 'same-key');
    assert.equal((await ctx.store.listEvents(runs[0]?.id ?? '', 0, 10)).filter((e) => e.type === 'run.created').length, 1);
  });

  it('a run started by racing claimers is started once', async (ctx) => {
    const setup = new Transitions(ctx.store);
    const runs: string[] = [];
    for (let r = 0; r < 10; r++) runs.push(await createRun(setup, Array.from({ length: 8 }, (_, i) => ({ name: `s${i}`, tool: 'noop' }))));
    const stores: Store[] = [ctx.store];
    for (let i = 1; i < CLAIMERS; i++) stores.push(await ctx.another());
    await Promise.all(stores.map(async (s, i) => {
      const core = new Transitions(s);
      for (let k = 0; k < 10; k++) await core.claim(`w${i}`, 2, 60_000);
    }));
    for (const runId of runs) {
      const list = await ctx.store.listEvents(runId, 0, 1000);
      assert.equal(list.filter((e) => e.type === 'run.started').length, 1);
      list.forEach((e, i) => assert.equal(e.seq, i + 1));
      assert.equal((await ctx.store.getRun(runId))?.status, 'running');
    }
  });
});
