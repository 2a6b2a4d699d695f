/**
 * The database's CHECK constraints on every status column list exactly the states of
 * src/domain/states.ts, after all migrations: a state added in TypeScript without a migration (or
 * a migration that drifts from the TypeScript) fails here, on both dialects.
 */
import assert from 'node:assert/strict';
import { ATTEMPT_STATES, RUN_STATES, STEP_STATES } from '../../src/domain/states.ts';
import type { PostgresStore } from '../../src/store/postgres/index.ts';
import type { SqliteStore } from '../../src/store/sqlite/index.ts';
import { conformance, type Ctx } from './harness.ts';

/** The quoted values of the `status` CHECK of a table, in the order the constraint lists them. */
async function statusCheck(ctx: Ctx, table: string): Promise<string[]> {
  let text: string;
  if (ctx.dialect === 'sqlite') {
    const row = (ctx.store as SqliteStore).db.prepare("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?").get(table) as { sql: string } | undefined;
    assert.ok(row, `table ${table}`);
    const m = /status\s+TEXT\s+NOT NULL\s+CHECK\s*\(\s*status\s+IN\s*\(([^)]*)\)\s*\)/i.exec(row.sql);
    assert.ok(m?.[1], `${table}: a CHECK on status`);
    text = m[1];
  } else {
    const res = await (ctx.store as PostgresStore).pool.query(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c
       WHERE c.conrelid = $1::regclass AND c.contype = 'c' AND pg_get_constraintdef(c.oid) LIKE '%status%'`,
      [table],
    );
    assert.equal(res.rows.length, 1, `${table}: one CHECK on status`);
    text = (res.rows[0] as { def: string }).def;
  }
  return [...text.matchAll(/'([^']*)'/g)].map((m) => m[1] as string);
}

conformance('schema mirrors the lifecycle', (it) => {
  it('every status CHECK lists exactly the states declared in src/domain/states.ts', async (ctx) => {
    assert.deepEqual(await statusCheck(ctx, 'runs'), [...RUN_STATES]);
    assert.deepEqual(await statusCheck(ctx, 'steps'), [...STEP_STATES]);
    assert.deepEqual(await statusCheck(ctx, 'attempts'), [...ATTEMPT_STATES]);
  });
});
