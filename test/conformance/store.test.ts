import assert from 'node:assert/strict';
import type { Store } from '../../src/store/store.ts';
import { conformance } from './harness.ts';
import { Clock, coreAt, createRun, events } from './fixtures.ts';

conformance('store basics', (it) => {
  it('reads and writes from outside a transaction neither see nor join what it has not committed', async (ctx) => {
    const boom = new Error('rolled back on purpose');
    let inserted: () => void = () => undefined;
    const insertedNow = new Promise<void>((r) => (inserted = r));
    let release: () => void = () => undefined;
    const released = new Promise<void>((r) => (release = r));
    // A transaction that awaits something other than the store (here: the test) between its
    // writes and its end, then rolls back.
    const tx = ctx.store.transaction(async (t) => {
      await t.insertRun({ id: 'r_uncommitted', goal: null, labels: {}, idempotencyKey: 'k_uncommitted', plan: {}, stepsTotal: 1, createdAt: 1 });
      inserted();
      await released;
      throw boom;
    });
    await insertedNow;
    const reads = Promise.all([
      ctx.store.getRun('r_uncommitted'),
      ctx.store.findRunByIdempotencyKey('k_uncommitted'),
      ctx.store.listRuns({ limit: 10 }),
      ctx.store.runCounts(),
    ]);
    const worker = { id: 'w_outside', pid: 1, host: 'h', state: 'running', startedAt: new Date(2).toISOString(), lastHeartbeatAt: new Date(3).toISOString(), info: {} };
    const write = ctx.store.upsertWorker(worker);
    // Whatever would run on the connection before the transaction ends gets the chance to now.
    await new Promise((r) => setImmediate(r));
    release();
    await assert.rejects(tx, boom);
    const [run, byKey, list, counts] = await reads;
    await write;
    assert.equal(run, null);
    assert.equal(byKey, null);
    assert.deepEqual(list, []);
    assert.equal(counts.queued, 0);
    assert.deepEqual(await ctx.store.getRun('r_uncommitted'), null);
    assert.deepEqual((await ctx.store.listWorkers()).map((w) => w.id), ['w_outside'], 'the outside write was not rolled back with the transaction');
  });

  it('migrate applies every migration once and reports its status', async (ctx) => {
    const { store } = await ctx.unmigrated();
    const before = await store.migrationStatus();
    assert.equal(before.dialect, ctx.dialect);
    assert.equal(before.current, 0);
    assert.ok(before.latest >= 1);
    assert.deepEqual(before.pending, Array.from({ length: before.latest }, (_, i) => i + 1));
    const first = await store.migrate();
    assert.deepEqual(first.applied, before.pending);
    assert.deepEqual(await store.migrationStatus(), { dialect: ctx.dialect, current: before.latest, latest: before.latest, pending: [] });
    assert.deepEqual((await store.migrate()).applied, []);
  });

  it('several processes migrating one new database at once apply each migration exactly once', async (ctx) => {
    const db = await ctx.unmigrated();
    const stores = [db.store, db.open(), db.open(), db.open(), db.open()];
    const results = await Promise.all(stores.map((s) => s.migrate()));
    const applied = results.flatMap((r) => r.applied).sort((a, b) => a - b);
    const status = await db.store.migrationStatus();
    assert.deepEqual(applied, Array.from({ length: status.latest }, (_, i) => i + 1));
    assert.deepEqual(status.pending, []);
  });

  it('a run and its steps read back exactly as written', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const inputs = { b: 1, a: [1, 'x', { z: null, y: 1.5 }], text: 'héllo ✓ 🚀 "quoted" \\ back\nslash \u0000 nul' };
    const runId = await createRun(
      core,
      [
        { name: 'first', inputs },
        { name: 'second', inputs: { up: '{{steps.first.outputs.a}}' }, dependsOn: ['first'], timeoutMs: 1234, retries: { max: 2, backoffMs: 50 } },
      ],
      { labels: { team: 'docs', 'with space': 'ünïcode' }, idempotencyKey: 'key-1' },
    );
    const run = await ctx.store.getRun(runId);
    assert.ok(run);
    assert.equal(run.status, 'queued');
    assert.deepEqual(run.labels, { team: 'docs', 'with space': 'ünïcode' });
    assert.equal(run.idempotencyKey, 'key-1');
    assert.equal(run.createdAt, new Date(clock.t).toISOString());
    assert.equal(run.stepsTotal, 2);
    assert.equal(run.stepsDone, 0);
    assert.deepEqual(run.usage, { inputTokens: 0, outputTokens: 0, calls: 0 });
    assert.equal(run.cancelRequested, false);
    assert.equal((await ctx.store.findRunByIdempotencyKey('key-1'))?.id, runId);
    assert.equal(await ctx.store.findRunByIdempotencyKey('nope'), null);

    const steps = await ctx.store.getRunSteps(runId);
    assert.deepEqual(
      steps.map((s) => [s.name, s.idx, s.status, s.pendingDeps]),
      [
        ['first', 0, 'queued', 0],
        ['second', 1, 'pending', 1],
      ],
    );
    const [first, second] = steps;
    // Key order and every character survive the round trip.
    assert.equal(JSON.stringify(first?.inputs), JSON.stringify(inputs));
    assert.equal(JSON.stringify(first?.resolvedInputs), JSON.stringify(inputs));
    assert.deepEqual(first?.dependents, ['second']);
    assert.deepEqual(second?.dependsOn, ['first']);
    assert.equal(second?.timeoutMs, 1234);
    assert.deepEqual(second?.retries, { max: 2, backoffMs: 50, maxBackoffMs: 60_000 });
    assert.equal(second?.resolvedInputs, null);
    assert.equal(first?.readyAt, new Date(clock.t).toISOString());
    assert.equal(second?.readyAt, null);
    assert.deepEqual(await ctx.store.getStep(runId, 'second'), second);
    assert.equal(await ctx.store.getStep(runId, 'nope'), null);

    const list = await events(ctx.store, runId);
    assert.deepEqual(
      list.map((e) => [e.seq, e.type, e.stepName ?? null]),
      [
        [1, 'run.created', null],
        [2, 'step.queued', 'first'],
      ],
    );
    assert.deepEqual(list[0]?.data, { goal: null, steps: 2, labels: { team: 'docs', 'with space': 'ünïcode' } });
    assert.deepEqual(await ctx.store.listEvents(runId, 1, 10), list.slice(1));
    assert.deepEqual(await ctx.store.listEvents(runId, 0, 1), list.slice(0, 1));
  });

  it('lists runs newest first, filtered by status and label, in pages', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      clock.advance(1000);
      ids.push(await createRun(core, [{ name: 'a' }], { labels: { team: i % 2 === 0 ? 'even' : 'odd' } }));
    }
    const all = await ctx.store.listRuns({ limit: 10 });
    assert.deepEqual(
      all.map((r) => r.id),
      [...ids].reverse(),
    );
    const page1 = await ctx.store.listRuns({ limit: 2 });
    const last = page1.at(-1);
    assert.ok(last);
    const page2 = await ctx.store.listRuns({ limit: 2, before: { createdAt: Date.parse(last.createdAt), id: last.id } });
    assert.deepEqual(
      [...page1, ...page2].map((r) => r.id),
      [ids[4], ids[3], ids[2], ids[1]],
    );
    const even = await ctx.store.listRuns({ limit: 10, label: { key: 'team', value: 'even' } });
    assert.deepEqual(
      even.map((r) => r.id),
      [ids[4], ids[2], ids[0]],
    );
    assert.equal((await ctx.store.listRuns({ limit: 10, status: 'running' })).length, 0);
    assert.equal((await ctx.store.listRuns({ limit: 10, status: 'queued' })).length, 5);
    assert.deepEqual(await ctx.store.runCounts(), { queued: 5, running: 0, succeeded: 0, failed: 0, cancelled: 0 });
  });

  it('lists runs by creation time, goal text (any case) and the tools of their steps', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const t0 = clock.now();
    const echo = await createRun(core, [{ name: 'a', tool: 'echo' }], { goal: 'Summarise the Q3 Report' });
    clock.advance(60_000);
    const sleep = await createRun(core, [{ name: 'a', tool: 'echo' }, { name: 'b', tool: 'sleep', inputs: { ms: 1 } }], { goal: 'nightly report' });
    clock.advance(60_000);
    const other = await createRun(core, [{ name: 'a', tool: 'noop' }]);
    const ids = async (f: Omit<Parameters<Store['listRuns']>[0], 'limit'>): Promise<string[]> => (await ctx.store.listRuns({ limit: 10, ...f })).map((r) => r.id);
    assert.deepEqual(await ids({ createdAfter: t0 + 60_000 }), [other, sleep]);
    assert.deepEqual(await ids({ createdBefore: t0 + 60_000 }), [echo]);
    assert.deepEqual(await ids({ createdAfter: t0 + 1, createdBefore: t0 + 120_000 }), [sleep]);
    assert.deepEqual(await ids({ goal: 'REPORT' }), [sleep, echo]);
    assert.deepEqual(await ids({ goal: 'q3 rep' }), [echo]);
    assert.deepEqual(await ids({ tool: 'sleep' }), [sleep]);
    assert.deepEqual(await ids({ tool: 'echo' }), [sleep, echo]);
    assert.deepEqual(await ids({ tool: 'echo', goal: 'nightly' }), [sleep]);
    assert.deepEqual(await ids({ tool: 'teleport' }), []);
  });

  it('a transaction that throws leaves nothing behind', async (ctx) => {
    const boom = new Error('boom');
    await assert.rejects(
      ctx.store.transaction(async (tx) => {
        await tx.insertRun({ id: 'r-rolled-back', goal: null, labels: {}, idempotencyKey: null, plan: {}, stepsTotal: 1, createdAt: 1 });
        await tx.insertSteps([
          {
            runId: 'r-rolled-back',
            name: 'a',
            idx: 0,
            tool: 'echo',
            status: 'queued',
            dependsOn: [],
            dependents: [],
            inputs: {},
            resolvedInputs: {},
            pendingDeps: 0,
            timeoutMs: 1000,
            retries: { max: 0, backoffMs: 1, maxBackoffMs: 1 },
            readyAt: 1,
          },
        ]);
        await tx.insertEvents([{ runId: 'r-rolled-back', seq: 1, ts: 1, type: 'run.created', data: {} }]);
        throw boom;
      }),
      boom,
    );
    assert.equal(await ctx.store.getRun('r-rolled-back'), null);
    assert.deepEqual(await ctx.store.getRunSteps('r-rolled-back'), []);
    assert.deepEqual(await ctx.store.listEvents('r-rolled-back', 0, 10), []);
    assert.equal(await ctx.store.nextReadyAt(), null);
  });

  it('reads through the store inside a transaction see that transaction’s writes', async (ctx) => {
    const seen = await ctx.store.transaction(async (tx) => {
      await tx.insertRun({ id: 'r-inside', goal: 'g', labels: {}, idempotencyKey: 'inside-key', plan: {}, stepsTotal: 0, createdAt: 5 });
      return { byTx: await tx.getRun('r-inside'), byStore: await ctx.store.findRunByIdempotencyKey('inside-key') };
    });
    assert.equal(seen.byTx?.id, 'r-inside');
    assert.equal(seen.byStore?.id, 'r-inside');
  });

  it('workers are registered, refreshed, listed and removed', async (ctx) => {
    const w = { id: 'w1', pid: 42, host: 'box', state: 'running', startedAt: new Date(1000).toISOString(), lastHeartbeatAt: new Date(2000).toISOString(), info: { inflight: 3, b: 1, a: 2 } };
    await ctx.store.upsertWorker(w);
    await ctx.store.upsertWorker({ ...w, id: 'w2', startedAt: new Date(1500).toISOString() });
    await ctx.store.upsertWorker({ ...w, lastHeartbeatAt: new Date(3000).toISOString(), state: 'draining', info: { inflight: 0 } });
    const list = await ctx.store.listWorkers();
    assert.deepEqual(
      list.map((x) => [x.id, x.state, x.lastHeartbeatAt]),
      [
        ['w1', 'draining', new Date(3000).toISOString()],
        ['w2', 'running', new Date(2000).toISOString()],
      ],
    );
    assert.deepEqual(list[0]?.info, { inflight: 0 });
    assert.equal(JSON.stringify(list[1]?.info), JSON.stringify({ inflight: 3, b: 1, a: 2 }));
    await ctx.store.deleteWorker('w1');
    assert.deepEqual(
      (await ctx.store.listWorkers()).map((x) => x.id),
      ['w2'],
    );
    assert.ok((await ctx.store.ping()) >= 0);
  });

  it('counts steps, times the next ready step and lists stuck ones', async (ctx) => {
    const clock = new Clock();
    const core = coreAt(ctx.store, clock);
    const runId = await createRun(core, [{ name: 'a', timeoutMs: 1000 }, { name: 'b' }, { name: 'c', dependsOn: ['a'] }]);
    assert.equal(await ctx.store.nextReadyAt(), clock.t);
    const counts = await ctx.store.stepCounts();
    assert.equal(counts.queued, 2);
    assert.equal(counts.pending, 1);
    assert.equal(counts.running, 0);
    const claimed = await core.claim('w1', 1, 500);
    assert.equal(claimed.length, 1);
    assert.deepEqual(await ctx.store.stuckSteps(clock.t + 100), []);
    // Lease (500 ms) expired, deadline (1000 ms) not yet: stuck on its lease.
    const stuck = await ctx.store.stuckSteps(clock.t + 600);
    assert.deepEqual(
      stuck.map((s) => [s.runId, s.name]),
      [[runId, claimed[0]?.stepName]],
    );
    assert.equal((await ctx.store.stepCounts()).running, 1);
  });
});
