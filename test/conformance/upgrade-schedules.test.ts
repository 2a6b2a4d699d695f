/**
 * Migration 6 (schedules) upgrades a database created at migration 5 in place, with a run in it:
 * the old run reads and finishes as before, and a schedule created after the upgrade fires.
 */
import assert from 'node:assert/strict';
import { SCHEDULE_LABEL } from '../../src/domain/schedule.ts';
import { Schedules } from '../../src/engine/schedules.ts';
import { startScheduler } from '../../src/engine/scheduler.ts';
import { Transitions } from '../../src/engine/transitions.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, Clock, done, LIMITS, tools } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_750_000_000_000;

conformance('upgrade to migration 6 (schedules)', (it) => {
  it('a database at migration 5 with a run in it upgrades in place; schedules then fire', async (ctx) => {
    const store = await storeAt(
      ctx,
      5,
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, last_seq, max_steps) VALUES ('old-run', 'queued', 'from v5', '{"k":"v"}', 'old-key', ${T0}, 1, 2, NULL);
       INSERT INTO run_plans (run_id, plan) VALUES ('old-run', '{"steps":[{"name":"a","tool":"echo"}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, ready_at, added_by, outputs_from, priority)
         VALUES ('old-run', 'a', 0, 'echo', 'queued', '[]', '[]', 0, '{"x":1}', '{"x":1}', 30000, '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}', ${T0}, NULL, NULL, 0);
       INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES ('old-run', 2, 1,
         '[{"ts":${T0},"type":"run.created","step":null,"attempt":null,"data":{"goal":"from v5","steps":1,"labels":{"k":"v"}}},{"ts":${T0},"type":"step.queued","step":"a","attempt":null,"data":{}}]');`,
    );
    await upgradeFrom(store, 5);

    const run = await store.getRun('old-run');
    assert.deepEqual(run?.labels, { k: 'v' });
    assert.equal((await store.findRunByIdempotencyKey('old-key'))?.id, 'old-run');
    assert.deepEqual(await store.schedules.list(), []);

    const clock = new Clock();
    const core = new Transitions(store, { now: clock.now });
    const [claim] = await core.claim('w-upgrade', 1, 60_000);
    assert.equal(claim?.runId, 'old-run');
    await core.flush([], [done(claim)]);
    assert.equal((await store.getRun('old-run'))?.status, 'succeeded');
    await assertRunBooks(store, 'old-run');

    const s = await new Schedules({ store, tools, limits: LIMITS, now: clock.now }).create({ cron: '*/5 * * * *', plan: { steps: [{ name: 'a', tool: 'echo' }] } });
    clock.t = Date.parse(s.nextTickAt ?? '') + 100;
    const [fired] = await startScheduler(core, { manual: true, now: clock.now, log: () => undefined }).pass();
    assert.ok(fired);
    assert.equal((await store.getRun(fired))?.labels[SCHEDULE_LABEL], s.id);
  });
});
