/**
 * Migration 4 (flow control) upgrades a database created at migration 3 in place, with runs in it:
 * old steps read with priority 0 and no concurrency key and are claimed in the order they were
 * queued; a new run of higher priority goes ahead of them; a new keyed run is held to its limit.
 */
import assert from 'node:assert/strict';
import { Transitions } from '../../src/engine/transitions.ts';
import { conformance } from './harness.ts';
import { createRun, done } from './fixtures.ts';
import { migrateBetween, storeAt, upgradeFrom } from './upgrade.ts';
import { randomUUID } from 'node:crypto';

const T0 = Date.now() - 60_000;

const oldRun = (id: string, at: number): string => `
  INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, last_seq) VALUES ('${id}', 'queued', NULL, '{}', NULL, ${at}, 1, 2);
  INSERT INTO run_plans (run_id, plan) VALUES ('${id}', '{"steps":[{"name":"a","tool":"noop"}]}');
  INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, ready_at)
    VALUES ('${id}', 'a', 0, 'noop', 'queued', '[]', '[]', 0, '{}', '{}', 30000, '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}', ${at});
  INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('${id}', 1, ${at}, 'run.created', NULL, NULL, '{"goal":null,"steps":1,"labels":{}}');
  INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('${id}', 2, ${at}, 'step.queued', 'a', NULL, '{}');`;

conformance('upgrade to migrations 4 and 8 (flow control)', (it) => {
  it('a database at migration 3 with queued runs upgrades in place; old steps keep their order, new priorities and keys apply', async (ctx) => {
    const store = await storeAt(ctx, 3, oldRun('old-1', T0) + oldRun('old-2', T0 + 1000));
    await upgradeFrom(store, 3);

    const run = await store.getRun('old-1');
    assert.equal(run?.priority, 0);
    assert.equal(run?.concurrency, null);
    const [a] = await store.getRunSteps('old-1');
    assert.equal(a?.priority, 0);
    assert.equal(a?.concurrency, null);

    const core = new Transitions(store);
    // Queued now with priority 100 (worth 100 s of waiting): ahead of both old steps.
    const urgent = await createRun(core, [{ name: 'u', tool: 'noop' }], { priority: 100 });
    const keyed = await createRun(core, [{ name: 'k1', tool: 'noop' }, { name: 'k2', tool: 'noop' }], { concurrency: { key: 't', limit: 1 } });
    const order: string[] = [];
    for (let i = 0; i < 5; i++) {
      const [c] = await core.claim('w-upgrade', 1, 60_000);
      if (!c) break;
      order.push(`${c.runId === urgent ? 'urgent' : c.runId === keyed ? 'keyed' : c.runId}/${c.stepName}`);
      if (c.runId !== keyed) await core.flush([], [done(c)]);
    }
    // k2 waits for k1, which is still running.
    assert.deepEqual(order, ['urgent/u', 'old-1/a', 'old-2/a', 'keyed/k1']);
    assert.equal((await store.getRun('old-1'))?.status, 'succeeded');
  });

  it('a database at migration 7 with a queued run upgrades to 8 (provider limits) in place; the run runs and limits work', async (ctx) => {
    const store = await storeAt(ctx, 3, oldRun('old-7', T0));
    // The migrations between carry the run along as they would in production.
    await migrateBetween(ctx.dialect, store, 3, 7);
    await upgradeFrom(store, 7);
    const core = new Transitions(store);
    const [c] = await core.claim('w-upgrade', 1, 60_000);
    assert.equal(c?.runId, 'old-7');
    await core.flush([], [done(c)]);
    assert.equal((await store.getRun('old-7'))?.status, 'succeeded');
    const now = Date.now();
    const take = () => store.providerLimits.take({ name: 'p', limits: { concurrency: 1 }, id: randomUUID(), tokens: 1, now, leaseUntil: now + 60_000 });
    assert.equal((await take()).granted, true);
    assert.equal((await take()).granted, false);
  });
});
