/**
 * Migration 9 (waiting for capacity) upgrades a database created at migration 8 in place, with a
 * queued run in it: the old rows read with no queue timeout and nothing waited for, the old step is
 * claimed and finished as before, and new runs get the new behaviour on the upgraded schema: a
 * claim carries queueTimeoutMs, a worker's wait is written and read back, and a queued step past its
 * queue timeout fails QUEUE_TIMEOUT (the reaper's pass) naming the concurrency key that held it.
 */
import assert from 'node:assert/strict';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, coreAt, createRun, done } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_750_000_000_000;
const RETRIES = '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}';

conformance('upgrade to migration 9 (waiting for capacity)', (it) => {
  it('a database at migration 8 with a queued run upgrades in place; queue timeouts and waits work after it', async (ctx) => {
    const store = await storeAt(
      ctx,
      8,
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, steps_done, steps_failed, last_seq, max_steps, priority, concurrency_key, concurrency_limit)
         VALUES ('old-run', 'queued', 'from v8', '{}', NULL, ${T0}, 1, 0, 0, 1, NULL, 0, 'old-key', 1);
       INSERT INTO run_plans (run_id, plan) VALUES ('old-run', '{"steps":[{"name":"a","tool":"echo"}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, attempts, ready_at, priority, concurrency_key, concurrency_limit)
         VALUES ('old-run', 'a', 0, 'echo', 'queued', '[]', '[]', 0, '{"x":1}', '{"x":1}', 30000, '${RETRIES}', 0, ${T0}, 0, 'old-key', 1);
       INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES ('old-run', 1, 1, '[{"ts":${T0},"type":"run.created","data":{"goal":"from v8","steps":1,"labels":{}}}]');`,
    );
    await upgradeFrom(store, 8);

    const old = await store.getRun('old-run');
    assert.equal(old?.queueTimeoutMs, null);
    const [a] = await store.getRunSteps('old-run');
    assert.equal(a?.queueTimeoutMs, null);
    assert.equal(a?.waitingFor, null);

    const clock = new Clock();
    clock.t = T0 + 1000;
    const core = coreAt(store, clock);
    const [claim] = await core.claim('w-upgrade', 5, 60_000);
    assert.equal(claim?.stepName, 'a');
    assert.equal(claim?.queueTimeoutMs, null);
    // A worker's wait at a provider's gate, written by its heartbeat: the deadline moves, the wait shows.
    const waitingFor = { kind: 'provider' as const, provider: 'p', limit: 'concurrency' as const, used: 1, cap: 1, nextSlotAt: new Date(T0 + 2000).toISOString(), since: new Date(T0 + 1000).toISOString(), attempt: 1 };
    const renewed = await core.renew('w-upgrade', [{ runId: 'old-run', name: 'a', token: claim.token }], 60_000, 1000, [
      { runId: 'old-run', name: 'a', token: claim.token, deadlineAt: T0 + 99_000, waitingFor },
    ]);
    assert.deepEqual(renewed.renewed, [claim.token]);
    const held = await store.getStep('old-run', 'a');
    assert.deepEqual(held?.waitingFor, waitingFor);
    assert.equal(held?.deadlineAt, new Date(T0 + 99_000).toISOString());
    assert.deepEqual((await store.capacityWaiters()).map((s) => s.name), ['a']);
    await core.flush([], [done(claim)]);
    assert.equal((await store.getRun('old-run'))?.status, 'succeeded');
    await assertRunBooks(store, 'old-run');

    // New runs on the upgraded schema: one holds the key, one waits behind it with a queue timeout.
    const holder = await createRun(core, [{ name: 'h' }], { concurrency: { key: 'k', limit: 1 } });
    const [hc] = await core.claim('w-upgrade', 5, 60_000);
    assert.equal(hc?.runId, holder);
    const bounded = await createRun(core, [{ name: 'b' }], { concurrency: { key: 'k', limit: 1 }, queueTimeoutMs: 500 });
    assert.equal((await store.getStep(bounded, 'b'))?.queueTimeoutMs, 500);
    assert.deepEqual(
      (await store.saturatedKeys(clock.t)).map((k) => [k.key, k.running, k.limit, k.waiting]),
      [['k', 1, 1, 1]],
    );
    assert.equal(await core.expireQueueWaits(), 0, 'not yet past its queue timeout');
    clock.advance(501);
    assert.equal(await core.expireQueueWaits(), 1);
    const b = await store.getStep(bounded, 'b');
    assert.equal(b?.status, 'failed');
    assert.equal(b?.error?.code, 'QUEUE_TIMEOUT');
    assert.match(b?.error?.message ?? '', /its concurrency key "k" had 1 of 1 steps running/);
    assert.equal((await store.getRun(bounded))?.status, 'failed');
    await assertRunBooks(store, bounded);
    await core.flush([], [done(hc)]);
    assert.equal((await store.getRun(holder))?.status, 'succeeded');
  });
});
