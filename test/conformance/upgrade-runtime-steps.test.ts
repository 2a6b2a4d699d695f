/**
 * Migration 3 (steps added at runtime) upgrades a database created at migration 2 in place, with
 * a run in it: the old rows read as before (no adder, the default maxSteps), and a step of the old
 * run can add steps after the upgrade.
 */
import assert from 'node:assert/strict';
import { DEFAULT_MAX_STEPS } from '../../src/domain/plan.ts';
import { Transitions } from '../../src/engine/transitions.ts';
import { publicRun } from '../../src/engine/api.ts';
import { validateAdditions } from '../../src/domain/added-steps.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, done, LIMITS, tools } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_750_000_000_000;

conformance('upgrade to migration 3 (runtime steps)', (it) => {
  it('a database at migration 2 with a run in it upgrades in place; the run can then grow', async (ctx) => {
    // A run as migration 2 left it: one queued step, its run.created and step.queued events.
    const store = await storeAt(
      ctx,
      2,
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, steps_total, last_seq) VALUES ('old-run', 'queued', 'from v1', '{}', NULL, ${T0}, 1, 2);
       INSERT INTO run_plans (run_id, plan) VALUES ('old-run', '{"steps":[{"name":"a","tool":"echo"}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, ready_at)
         VALUES ('old-run', 'a', 0, 'echo', 'queued', '[]', '[]', 0, '{"x":1}', '{"x":1}', 30000, '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}', ${T0});
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('old-run', 1, ${T0}, 'run.created', NULL, NULL, '{"goal":"from v1","steps":1,"labels":{}}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('old-run', 2, ${T0}, 'step.queued', 'a', NULL, '{}');`,
    );
    await upgradeFrom(store, 2);

    const run = await store.getRun('old-run');
    assert.ok(run);
    assert.equal(run.maxSteps, null);
    assert.equal(publicRun(run).maxSteps, DEFAULT_MAX_STEPS);
    const [a] = await store.getRunSteps('old-run');
    assert.equal(a?.addedBy, null);
    assert.equal(a?.outputsFrom, null);
    assert.deepEqual(a?.inputs, { x: 1 });

    const core = new Transitions(store);
    const [claim] = await core.claim('w-upgrade', 1, 60_000);
    assert.equal(claim?.stepName, 'a');
    const added = await validateAdditions({ steps: [{ name: 'b', tool: 'echo', inputs: { from: '{{steps.a.outputs.from}}' } }] }, 'a', tools, LIMITS);
    const [result] = await core.flush([], [done(claim, { added })]);
    assert.deepEqual(result, { applied: true });
    const [claimB] = await core.claim('w-upgrade', 1, 60_000);
    assert.equal(claimB?.stepName, 'b');
    assert.deepEqual(claimB?.inputs, { from: 'a' });
    await core.flush([], [done(claimB)]);
    const after = await store.getRun('old-run');
    assert.equal(after?.status, 'succeeded');
    assert.equal(after?.stepsTotal, 2);
    const b = (await store.getRunSteps('old-run'))[1];
    assert.equal(b?.addedBy, 'a');
    assert.equal(b?.idx, 1);
    await assertRunBooks(store, 'old-run');
  });
});
