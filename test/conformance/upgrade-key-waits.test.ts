/**
 * Migration 10 (announced key waits) upgrades a database created at migration 9 in place, with two
 * queued steps of one concurrency key (limit 1) in it: after the upgrade the first is claimed, and
 * the second, an old row, is announced as waiting for the key (one step.waiting, once), then
 * claimed and finished as before.
 */
import assert from 'node:assert/strict';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, coreAt, done, events } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_750_000_000_000;
const RETRIES = '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}';

function oldRun(id: string, at: number): string {
  return `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, steps_done, steps_failed, last_seq, max_steps, priority, concurrency_key, concurrency_limit, queue_timeout_ms)
      VALUES ('${id}', 'queued', 'from v9', '{}', NULL, ${at}, 1, 0, 0, 1, NULL, 0, 'old-key', 1, NULL);
    INSERT INTO run_plans (run_id, plan) VALUES ('${id}', '{"steps":[{"name":"a","tool":"echo"}]}');
    INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, attempts, ready_at, priority, concurrency_key, concurrency_limit, queue_timeout_ms, waiting_for)
      VALUES ('${id}', 'a', 0, 'echo', 'queued', '[]', '[]', 0, '{"x":1}', '{"x":1}', 30000, '${RETRIES}', 0, ${at}, 0, 'old-key', 1, NULL, NULL);
    INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES ('${id}', 1, 1, '[{"ts":${at},"type":"run.created","data":{"goal":"from v9","steps":1,"labels":{}}}]');`;
}

conformance('upgrade to migration 10 (announced key waits)', (it) => {
  it('a database at migration 9 with two queued steps of one key upgrades in place; the held one is announced once', async (ctx) => {
    const store = await storeAt(ctx, 9, oldRun('old-1', T0) + oldRun('old-2', T0 + 10));
    await upgradeFrom(store, 9);

    const clock = new Clock();
    clock.t = T0 + 1000;
    const core = coreAt(store, clock);
    const claimed = await core.claim('w-upgrade', 5, 60_000);
    assert.deepEqual(claimed.map((c) => c.runId), ['old-1'], 'the key allows one');
    assert.equal(await core.announceKeyWaits(), 1);
    assert.equal(await core.announceKeyWaits(), 0);
    const waiting = (await events(store, 'old-2')).filter((e) => e.type === 'step.waiting');
    assert.deepEqual(waiting.map((e) => [e.stepName, e.data.key, e.data.used, e.data.cap, e.data.since]), [['a', 'old-key', 1, 1, new Date(T0 + 10).toISOString()]]);

    await core.flush([], [done(claimed[0] as NonNullable<(typeof claimed)[0]>)]);
    const [second] = await core.claim('w-upgrade', 5, 60_000);
    assert.equal(second?.runId, 'old-2');
    await core.flush([], [done(second)]);
    for (const id of ['old-1', 'old-2']) {
      assert.equal((await store.getRun(id))?.status, 'succeeded');
      await assertRunBooks(store, id);
    }
  });
});
