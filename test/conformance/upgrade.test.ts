/**
 * Upgrading in place: a database at migration 1 with a finished run and a vector collection in it
 * is migrated to the latest schema; the run, its events and the collection are all there after,
 * the old vectors belong to no run (never pruned), and new ones record their run.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PostgresStore } from '../../src/store/postgres/index.ts';
import type { SqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { toBlob } from '../../src/store/vector-matrix.ts';
import { conformance, type Ctx } from './harness.ts';
import { Clock, coreAt, createRun, done } from './fixtures.ts';

const ROOT = join(import.meta.dirname, '..', '..');

/** Applies migration 1 alone, as the release before this one left databases. */
async function atMigration1(ctx: Ctx, store: Store): Promise<void> {
  const dir = ctx.dialect === 'sqlite' ? 'src/store/sqlite/migrations' : 'src/store/postgres/migrations';
  const sql = readFileSync(join(ROOT, dir, '000001_initial.sql'), 'utf8');
  const ledger = 'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)';
  if (ctx.dialect === 'sqlite') {
    const db = (store as SqliteStore).db;
    db.exec(sql);
    db.exec(ledger);
    db.prepare('INSERT INTO schema_migrations VALUES (1, ?, ?)').run('initial', Date.now());
  } else {
    const pool = (store as PostgresStore).pool;
    await pool.query(sql);
    await pool.query(ledger);
    await pool.query('INSERT INTO schema_migrations VALUES (1, $1, $2)', ['initial', Date.now()]);
  }
}

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
    await atMigration1(ctx, store);
    assert.deepEqual((await store.migrationStatus()).current, 1);
    const clock = new Clock();
    const core = coreAt(store, clock);
    const runId = await createRun(core, [{ name: 'a' }]);
    const [c] = await core.claim('w1', 1, 60_000);
    assert.ok(c);
    await core.flush([], [done(c)]);
    await oldVector(ctx, store, 'old fact', [1, 0, 0]);
    await oldVector(ctx, store, 'other fact', [0, 1, 0]);
    const eventsBefore = await store.listEvents(runId, 0, 1000);

    const { applied } = await store.migrate();
    assert.deepEqual(applied, [2]);
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
