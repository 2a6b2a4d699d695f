/**
 * Upgrading in place: a database at migration 1 with a finished run and a vector collection in it
 * is migrated to the latest schema; the run, its events and the collection are all there after,
 * the old vectors belong to no run (never pruned), and new ones record their run. The old rows
 * are written as version 1 wrote them, in SQL: today's engine writes columns version 1 lacks.
 */
import assert from 'node:assert/strict';
import type { PostgresStore } from '../../src/store/postgres/index.ts';
import type { SqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { toBlob } from '../../src/store/vector-matrix.ts';
import { conformance, type Ctx } from './harness.ts';
import { Clock, coreAt, createRun, done } from './fixtures.ts';
import { migrateTo, rawExec, versionsAfter } from './upgrade.ts';

/** A vector written the way version 1 wrote them (no run_id column yet). */
async function oldVector(ctx: Ctx, store: Store, text: string, v: number[]): Promise<void> {
  const blob = toBlob(Float32Array.from(v.map((x) => x / Math.hypot(...v))));
  if (ctx.dialect === 'sqlite') {
    (store as SqliteStore).db.prepare('INSERT INTO vectors (collection, text, dims, vector, metadata, created_at) VALUES (?, ?, ?, ?, NULL, ?)').run('kb', text, v.length, blob, new Date().toISOString());
  } else {
    const pool = (store as PostgresStore).pool;
    await pool.query('INSERT INTO vector_collections (collection, dims, rows) VALUES ($1, $2, 0) ON CONFLICT DO NOTHING', ['kb', v.length]);
    await pool.query('INSERT INTO vectors (collection, text, dims, vector, metadata, created_at) VALUES ($1, $2, $3, $4, NULL, $5)', ['kb', text, v.length, Buffer.from(blob), new Date().toISOString()]);
    await pool.query('UPDATE vector_collections SET rows = rows + 1 WHERE collection = $1', ['kb']);
  }
}

conformance('upgrade from the previous schema', (it) => {
  it('a database at migration 1 with runs and vectors is upgraded in place', async (ctx) => {
    const { store } = await ctx.unmigrated();
    await migrateTo(ctx.dialect, store, 1);
    assert.deepEqual((await store.migrationStatus()).current, 1);
    const clock = new Clock();
    const core = coreAt(store, clock);
    const runId = 'v1-run';
    const t = clock.now();
    await rawExec(
      ctx.dialect,
      store,
      `INSERT INTO runs (id, status, goal, labels, idempotency_key, created_at, started_at, finished_at, steps_total, steps_done, last_seq) VALUES ('${runId}', 'succeeded', NULL, '{}', NULL, ${t}, ${t}, ${t}, 1, 1, 3);
       INSERT INTO run_plans (run_id, plan) VALUES ('${runId}', '{"steps":[{"name":"a","tool":"echo"}]}');
       INSERT INTO steps (run_id, name, idx, tool, status, depends_on, dependents, pending_deps, inputs, resolved_inputs, outputs, timeout_ms, retries, attempts, started_at, finished_at)
         VALUES ('${runId}', 'a', 0, 'echo', 'succeeded', '[]', '[]', 0, '{}', '{}', '{"from":"a"}', 30000, '{"max":0,"backoffMs":1000,"maxBackoffMs":60000}', 1, ${t}, ${t});
       INSERT INTO attempts (run_id, step_name, attempt, status, worker_id, started_at, finished_at, deadline_at) VALUES ('${runId}', 'a', 1, 'succeeded', 'w1', ${t}, ${t}, ${t + 30_000});
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('${runId}', 1, ${t}, 'run.created', NULL, NULL, '{"goal":null,"steps":1,"labels":{}}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('${runId}', 2, ${t}, 'step.finished', 'a', 1, '{"status":"succeeded","error":null,"durationMs":0,"attempts":1}');
       INSERT INTO events (run_id, seq, ts, type, step_name, attempt, data) VALUES ('${runId}', 3, ${t}, 'run.finished', NULL, NULL, '{"status":"succeeded"}');`,
    );
    await oldVector(ctx, store, 'old fact', [1, 0, 0]);
    await oldVector(ctx, store, 'other fact', [0, 1, 0]);
    // As version 1 read them (the store reads today's layout, so they are written out here).
    const ts = new Date(t).toISOString();
    const eventsBefore = [
      { seq: 1, ts, type: 'run.created', runId, data: { goal: null, steps: 1, labels: {} } },
      { seq: 2, ts, type: 'step.finished', runId, stepName: 'a', attempt: 1, data: { status: 'succeeded', error: null, durationMs: 0, attempts: 1 } },
      { seq: 3, ts, type: 'run.finished', runId, data: { status: 'succeeded' } },
    ];

    const later = await versionsAfter(store, 1);
    const { applied } = await store.migrate();
    assert.deepEqual(applied, later);
    assert.deepEqual((await store.migrationStatus()).pending, []);
    assert.equal((await store.getRun(runId))?.status, 'succeeded');
    assert.deepEqual(await store.listEvents(runId, 0, 1000), eventsBefore);
    assert.deepEqual(
      (await store.vectors.query('kb', [1, 0.1, 0], 2)).map((h) => h.text),
      ['old fact', 'other fact'],
    );
    // New vectors record their run; pruning that run takes them and leaves the old ones.
    const newer = await createRun(core, [{ name: 'b' }]);
    const [d] = await core.claim('w1', 1, 60_000);
    assert.ok(d);
    await store.vectors.upsert('kb', [{ text: 'new fact', vector: [0, 0, 1] }], { runId: newer });
    await core.flush([], [done(d)]);
    clock.advance(1000);
    const counts = await store.pruneRuns({ before: clock.now(), limit: 500 });
    assert.equal(counts.runs, 2);
    assert.equal(counts.vectors, 1);
    assert.deepEqual(
      (await store.vectors.query('kb', [0, 0, 1], 5)).map((h) => h.text).sort(),
      ['old fact', 'other fact'],
    );
    if (ctx.dialect === 'sqlite') {
      // Rebuilt with AUTOINCREMENT: a deleted maximum id is never handed out again.
      const seq = (store as SqliteStore).db.prepare("SELECT seq FROM sqlite_sequence WHERE name = 'vectors'").get() as { seq: number } | undefined;
      assert.equal(seq?.seq, 3);
    }
  });
});
