/**
 * Databases at an earlier schema version, for upgrade tests: the dialect's first `n` migrations
 * applied (and recorded in schema_migrations as the store records them), nothing after.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadMigrations } from '../../src/store/migrations.ts';
import type { PostgresStore } from '../../src/store/postgres/index.ts';
import type { SqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import type { Ctx, DialectName } from './harness.ts';

const DIR = (dialect: DialectName): string => join(import.meta.dirname, '..', '..', 'src', 'store', dialect, 'migrations');

/** Runs SQL (literal values only: the same text runs on both dialects) on an unmigrated store's database. */
export async function rawExec(dialect: DialectName, store: Store, sql: string): Promise<void> {
  if (dialect === 'sqlite') (store as SqliteStore).db.exec(sql);
  else await (store as PostgresStore).pool.query(sql);
}

/** Applies the first `n` migrations of the dialect to `store`'s empty database. */
export async function migrateTo(dialect: DialectName, store: Store, n: number): Promise<void> {
  await migrateBetween(dialect, store, 0, n);
}

/** Applies migrations `from + 1` to `to` of the dialect to a database at `from` (rows in it are migrated as in production). */
export async function migrateBetween(dialect: DialectName, store: Store, from: number, to: number): Promise<void> {
  const create =
    dialect === 'sqlite'
      ? 'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)'
      : 'CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)';
  await rawExec(dialect, store, create);
  for (const m of loadMigrations(DIR(dialect)).slice(from, to)) {
    await rawExec(dialect, store, m.sql);
    await rawExec(dialect, store, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (${m.version}, '${m.name}', ${Date.now()})`);
  }
}

/** The versions after `n`, up to the latest this checkout ships: what upgrading from `n` applies. */
export async function versionsAfter(store: Store, n: number): Promise<number[]> {
  const { latest } = await store.migrationStatus();
  return Array.from({ length: latest - n }, (_, i) => n + 1 + i);
}

/** A store on a new database created at migration `from`, with `seed` (SQL, literal values only) written at that version. */
export async function storeAt(ctx: Ctx, from: number, seed: string): Promise<Store> {
  const { store } = await ctx.unmigrated();
  await migrateTo(ctx.dialect, store, from);
  await rawExec(ctx.dialect, store, seed);
  return store;
}

/**
 * Upgrades a database at migration `from` as a deployment does: every later version is pending,
 * `from + 1` first, and the store's migrate() applies exactly those.
 */
export async function upgradeFrom(store: Store, from: number): Promise<void> {
  const later = await versionsAfter(store, from);
  assert.equal(later[0], from + 1);
  assert.deepEqual((await store.migrationStatus()).pending, later);
  assert.deepEqual((await store.migrate()).applied, later);
}
