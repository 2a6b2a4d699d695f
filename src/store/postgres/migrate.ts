/**
 * Applying the numbered migrations of migrations/ on one connection. A session advisory lock makes
 * processes that start together take turns: the first applies what is pending, the others then
 * find nothing to do. Each migration commits with its row in schema_migrations.
 */
import type pg from 'pg';
import type { Migration } from '../migrations.ts';

/** Session advisory lock held while migrating (any constant unique to runwarden). */
export const MIGRATION_LOCK = 0x72_77_6d_69_67; // 'rwmig'

export async function applyMigrations(client: pg.PoolClient, migrations: readonly Migration[], location: string): Promise<number[]> {
  // Migrations may run longer than the statement timeout meant for engine statements.
  await client.query('SET statement_timeout = 0');
  await lockForMigration(client, location);
  let unlocked = false;
  try {
    await client.query('CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)');
    const done = new Set((await client.query('SELECT version FROM schema_migrations')).rows.map((r: { version: number }) => Number(r.version)));
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.version)) continue;
      await client.query('BEGIN');
      try {
        await client.query(m.sql);
        await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      }
      applied.push(m.version);
    }
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]);
    await client.query('SET statement_timeout = DEFAULT');
    unlocked = true;
    return applied;
  } finally {
    // A session lock must not go back to the pool with the connection: if the unlock did not
    // happen, release every lock this session holds (closing the connection would, too).
    if (!unlocked) await client.query('SELECT 1 FROM pg_advisory_unlock_all()').catch(() => undefined);
  }
}

/** Waits (bounded) for the migration lock. */
async function lockForMigration(client: pg.PoolClient, location: string, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await client.query('SELECT pg_try_advisory_lock($1) AS ok', [MIGRATION_LOCK]);
    if ((r.rows[0] as { ok: boolean }).ok) return;
    if (Date.now() > until) {
      throw new Error(`another process has been migrating ${location} for ${timeoutMs / 1000} s (advisory lock ${MIGRATION_LOCK} is held); is a migration stuck?`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
