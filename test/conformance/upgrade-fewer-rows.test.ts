/**
 * Migration 5 (fewer rows per step) upgrades a database created at migration 4 in place, with runs
 * in it: a finished one, and one whose step is running (its attempt row says `running`, as
 * migration 3's engine wrote it) under a lease a live worker still holds. After the upgrade the
 * events read as before (pages, the `events` view), the running attempt is shown from the step's
 * row, the worker renews and completes it with the token it had, and the run ends with one
 * step.finished per step and contiguous seqs. Idempotency keys stay unique.
 */
import assert from 'node:assert/strict';
import type { ClaimedStep } from '../../src/engine/transitions.ts';
import type { PostgresStore } from '../../src/store/postgres/index.ts';
import type { SqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { conformance, type DialectName } from './harness.ts';
import { assertRunBooks, Clock, coreAt, done, validate } from './fixtures.ts';
import { storeAt, upgradeFrom } from './upgrade.ts';

const T0 = 1_760_000_000_000;
const RETRIES = '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}';

async function rows(dialect: DialectName, store: Store, sql: string): Promise<Array<Record<string, unknown>>> {
  if (dialect === 'sqlite') return (store as SqliteStore).db.prepare(sql).all();
  return (await (store as PostgresStore).pool.query(sql)).rows as Array<Record<string, unknown>>;
}

conformance('upgrade to migration 5 (fewer rows per step)', (it) => {
  it('a database at migration 4 with a finished and a running run upgrades in place; the running attempt completes', async (ctx) => {
    const t = T0;
    const store = await storeAt(
      ctx,
      4,
      // done-run: finished, 5 events. live-run: a (succeeded), b running attempt 2 (attempt 1 failed and
      // was retried), c pending on b; 7 events so far.
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, started_at, finished_at, steps_total, steps_done, last_seq)
         VALUES ('done-run', 'succeeded', NULL, '{}', 'key-1', ${t}, ${t}, ${t + 5}, 1, 1, 5);
       INSERT INTO run_plans (run_id, plan) VALUES ('done-run', '{"steps":[{"name":"a","tool":"echo"}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, outputs, timeout_ms, retries, attempts, started_at, finished_at)
         VALUES ('done-run', 'a', 0, 'echo', 'succeeded', '[]', '[]', 0, '{}', '{}', '{"from":"a"}', 30000, '${RETRIES}', 1, ${t}, ${t + 5});
       INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at) VALUES ('done-run', 'a', 1, 'succeeded', 'w-old', ${t}, ${t + 5}, ${t + 30_000});
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('done-run', 1, ${t}, 'run.created', NULL, NULL, '{"goal":null,"steps":1,"labels":{}}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('done-run', 2, ${t}, 'step.queued', 'a', NULL, '{}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('done-run', 3, ${t + 1}, 'run.started', NULL, NULL, '{}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('done-run', 4, ${t + 5}, 'step.finished', 'a', 1, '{"status":"succeeded","error":null,"durationMs":4,"attempts":1}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('done-run', 5, ${t + 5}, 'run.finished', NULL, NULL, '{"status":"succeeded","note":"a\\u0000b"}');

       INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, started_at, steps_total, steps_done, last_seq)
         VALUES ('live-run', 'running', 'g', '{}', NULL, ${t}, ${t}, 3, 1, 7);
       INSERT INTO run_plans (run_id, plan) VALUES ('live-run', '{"steps":[]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, outputs, timeout_ms, retries, attempts, started_at, finished_at)
         VALUES ('live-run', 'a', 0, 'echo', 'succeeded', '[]', '["b"]', 0, '{}', '{}', '{"from":"a"}', 30000, '${RETRIES}', 1, ${t}, ${t + 1});
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries, attempts, started_at,
                          worker_id, lease_token, lease_expires_at, deadline_at)
         VALUES ('live-run', 'b', 1, 'echo', 'running', '["a"]', '["c"]', 0, '{}', '{}', 30000, '{"max":1,"backoffMs":1,"maxBackoffMs":1}', 2, ${t + 1},
                 'w-live', 'tok-b', ${t + 3000}, ${t + 30_002});
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, timeout_ms, retries)
         VALUES ('live-run', 'c', 2, 'echo', 'pending', '["b"]', '[]', 1, '{}', NULL, 30000, '${RETRIES}');
       INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at) VALUES ('live-run', 'a', 1, 'succeeded', 'w-live', ${t}, ${t + 1}, ${t + 30_000});
       INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at, error) VALUES ('live-run', 'b', 1, 'failed', 'w-live', ${t + 1}, ${t + 1}, ${t + 30_001}, '{"code":"X","message":"boom"}');
       INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, deadline_at) VALUES ('live-run', 'b', 2, 'running', 'w-live', ${t + 2}, ${t + 30_002});
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 1, ${t}, 'run.created', NULL, NULL, '{"goal":"g","steps":3,"labels":{}}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 2, ${t}, 'step.queued', 'a', NULL, '{}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 3, ${t}, 'run.started', NULL, NULL, '{}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 4, ${t + 1}, 'step.finished', 'a', 1, '{"status":"succeeded","error":null,"durationMs":1,"attempts":1}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 5, ${t + 1}, 'step.queued', 'b', NULL, '{}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 6, ${t + 1}, 'step.retrying', 'b', 1, '{"nextAttempt":2,"delayMs":1,"error":{"code":"X","message":"boom"}}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('live-run', 7, ${t + 2}, 'step.started', 'b', 2, '{"tool":"echo"}');`,
    );
    await upgradeFrom(store, 4);

    // Events: the same records, in pages, from any seq.
    const iso = (ms: number): string => new Date(ms).toISOString();
    const doneEvents = await store.listEvents('done-run', 0, 100);
    assert.deepEqual(
      doneEvents.map((e) => [e.seq, e.type, e.stepName ?? null, e.attempt ?? null]),
      [
        [1, 'run.created', null, null],
        [2, 'step.queued', 'a', null],
        [3, 'run.started', null, null],
        [4, 'step.finished', 'a', 1],
        [5, 'run.finished', null, null],
      ],
    );
    assert.equal(doneEvents[3]?.ts, iso(t + 5));
    assert.deepEqual(doneEvents[3]?.data, { status: 'succeeded', error: null, durationMs: 4, attempts: 1 });
    assert.deepEqual(doneEvents[4]?.data, { status: 'succeeded', note: 'a\u0000b' });
    assert.deepEqual((await store.listEvents('done-run', 2, 2)).map((e) => e.seq), [3, 4]);
    // The view keeps one row per event for ad-hoc queries (on PostgreSQL, json operators refuse the
    // \u0000 escape of event 5's data, as they did on the table: it is left out).
    const viewed = await rows(ctx.dialect, store, "SELECT seq, type, step_name FROM events WHERE run_id = 'done-run' AND seq < 5 ORDER BY seq");
    assert.deepEqual(viewed.map((r) => [Number(r.seq), r.type, r.step_name ?? null]), doneEvents.slice(0, 4).map((e) => [e.seq, e.type, e.stepName ?? null]));

    // The running attempt moved into its step's row; ended attempts kept theirs.
    const attempts = await store.listAttempts('live-run', 'b');
    assert.deepEqual(
      attempts.map((a) => [a.attempt, a.status, a.workerId, a.startedAt, a.finishedAt, a.deadlineAt, a.error?.code ?? null]),
      [
        [1, 'failed', 'w-live', iso(t + 1), iso(t + 1), iso(t + 30_001), 'X'],
        [2, 'running', 'w-live', iso(t + 2), null, iso(t + 30_002), null],
      ],
    );
    assert.deepEqual(await rows(ctx.dialect, store, "SELECT attempt FROM attempts WHERE status = 'running'"), []);

    // The live worker renews and completes attempt 2 with the token it held before the upgrade.
    const clock = new Clock();
    clock.t = t + 100;
    const core = coreAt(store, clock);
    const renewal = await core.renew('w-live', [{ runId: 'live-run', name: 'b', token: 'tok-b' }], 3000, 1000);
    assert.deepEqual(renewal.renewed, ['tok-b']);
    const claimB: ClaimedStep = { runId: 'live-run', stepName: 'b', tool: 'echo', attempt: 2, token: 'tok-b', inputs: {}, timeoutMs: 30_000, deadlineAt: t + 30_002, leaseExpiresAt: t + 3100, readyAt: t + 1, claimedAt: t + 2 };
    assert.deepEqual(await core.flush([], [done(claimB)]), [{ applied: true }]);
    assert.deepEqual(await core.flush([], [done(claimB)]), [{ applied: false, refused: 'not_running' }], 'a second result for the attempt is refused');
    const [claimC] = await core.claim('w-new', 5, 60_000);
    assert.equal(claimC?.stepName, 'c');
    await core.flush([], [done(claimC)]);
    assert.equal((await store.getRun('live-run'))?.status, 'succeeded');
    const live = await assertRunBooks(store, 'live-run');
    assert.deepEqual(live.slice(0, 7).map((e) => e.type), ['run.created', 'step.queued', 'run.started', 'step.finished', 'step.queued', 'step.retrying', 'step.started']);
    assert.deepEqual(
      (await store.listAttempts('live-run', 'b')).map((a) => [a.attempt, a.status, a.workerId, a.startedAt]),
      [
        [1, 'failed', 'w-live', iso(t + 1)],
        [2, 'succeeded', 'w-live', iso(t + 2)],
      ],
    );

    // The idempotency key of the old run still finds it.
    const again = await core.createRun(await validate([{ name: 'a' }], { idempotencyKey: 'key-1' }), {});
    assert.deepEqual(again, { runId: 'done-run', created: false });
  });
});
