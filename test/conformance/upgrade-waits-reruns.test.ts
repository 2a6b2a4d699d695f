/**
 * Migration 7 (waits and reruns) upgrades a database created at migration 6 in place, with a
 * finished run in it: the old rows read as before (no rerunOf, no wait, nothing reused), the old
 * run can be rerun, a new run can wait for a signal, and prune takes both with their signals.
 */
import assert from 'node:assert/strict';
import { Transitions } from '../../src/engine/transitions.ts';
import { conformance } from './harness.ts';
import { assertRunBooks, createRun, done } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_750_000_000_000;
const RETRIES = '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}';

conformance('upgrade to migration 7 (waits and reruns)', (it) => {
  it('a database at migration 6 with a failed run upgrades in place; the run can be rerun', async (ctx) => {
    // A failed run as migration 6 left it: a succeeded, b failed; its events in one batch.
    const store = await storeAt(
      ctx,
      6,
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, started_at, finished_at, steps_total, steps_done, steps_failed, last_seq, max_steps)
         VALUES ('old-run', 'failed', 'from v6', '{}', NULL, ${T0}, ${T0}, ${T0 + 10}, 2, 2, 1, 2, NULL);
       INSERT INTO run_plans (run_id, plan) VALUES ('old-run', '{"steps":[{"name":"a","tool":"echo"},{"name":"b","tool":"echo","dependsOn":["a"]}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, outputs, timeout_ms, retries, attempts, finished_at)
         VALUES ('old-run', 'a', 0, 'echo', 'succeeded', '[]', '["b"]', 0, '{"x":1}', '{"x":1}', '{"x":1}', 30000, '${RETRIES}', 1, ${T0 + 5});
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, attempts, finished_at)
         VALUES ('old-run', 'b', 1, 'echo', 'failed', '["a"]', '[]', 0, '{"y":"{{steps.a.outputs.x}}"}', '{"y":1}', 30000, '${RETRIES}', 1, ${T0 + 10});
       INSERT INTO event_batches (run_id, last_seq, first_seq, body) VALUES ('old-run', 2, 1,
         '[{"ts":${T0},"type":"run.created","data":{"goal":"from v6","steps":2,"labels":{}}},{"ts":${T0 + 10},"type":"run.finished","data":{"status":"failed"}}]');`,
    );
    await upgradeFrom(store, 6);

    const run = await store.getRun('old-run');
    assert.equal(run?.rerunOf, null);
    const [a] = await store.getRunSteps('old-run');
    assert.equal(a?.awaitingSignal, null);
    assert.equal(a?.awaitingSince, null);
    assert.equal(a?.reusedFrom, null);

    const core = new Transitions(store);
    const out = await core.rerun('old-run');
    assert.ok(out);
    assert.equal((await store.getRun(out.runId))?.rerunOf, 'old-run');
    const [claim] = await core.claim('w-upgrade', 5, 60_000);
    assert.equal(claim?.stepName, 'b');
    assert.deepEqual(claim?.inputs, { y: 1 });
    await core.flush([], [done(claim)]);
    assert.equal((await store.getRun(out.runId))?.status, 'succeeded');
    await assertRunBooks(store, out.runId);

    // A new run waits for a signal on the upgraded schema.
    const waiting = await createRun(core, [{ name: 'w', tool: 'wait', inputs: { signal: 'go', timeoutMs: 60_000 } }]);
    const [wc] = await core.claim('w-upgrade', 1, 60_000);
    assert.ok(wc);
    await core.flush([], [done(wc, { outputs: wc.inputs })]);
    assert.equal((await store.getStep(waiting, 'w'))?.awaitingSignal, 'go');
    const sent = await core.signal(waiting, 'go', 1);
    assert.equal(sent.kind === 'sent' && sent.released.join(), 'w');
    assert.equal((await store.getRun(waiting))?.status, 'succeeded');

    const pruned = await store.pruneRuns({ before: Date.now() + 60_000, limit: 10 });
    assert.equal(pruned.runs, 3);
    assert.equal(pruned.signals, 1);
  });
});
