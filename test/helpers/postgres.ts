/**
 * PostgreSQL for tests: a fresh database per suite on the server named by RUNWARDEN_TEST_PG_URL
 * (default postgres://postgres@127.0.0.1:5432/postgres, the one `.ci/run` starts).
 *
 * - Unreachable server: with CI=true the suite FAILS (`postgresSkip()` throws); locally it is
 *   skipped with a message saying how to get one.
 * - Every database is `rwt_<time>_<random>`, dropped by `drop()`. `drop()` first waits (bounded)
 *   for the test's own connections to go away and fails the test if some remain: a pool left open
 *   is a bug (a process that cannot exit, connections a server runs out of).
 * - The server is shared: nothing here restarts it or touches databases it did not create, except
 *   `rwt_` databases older than a day (left behind by a test process that was killed).
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

export const PG_ADMIN_URL = process.env.RUNWARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const PREFIX = 'rwt_';

let reachable: Promise<string | null> | undefined;

/** null when the server answers, else why not. */
function probe(): Promise<string | null> {
  reachable ??= (async () => {
    const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 3000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      return null;
    } catch (err) {
      return (err as Error).message || String(err);
    } finally {
      await c.end().catch(() => undefined);
    }
  })();
  return reachable;
}

/**
 * `false` when PostgreSQL is reachable; a skip message when it is not and we are not in CI.
 * Throws in CI: there, a missing PostgreSQL is a failure, not a reason to skip.
 */
export async function postgresSkip(): Promise<string | false> {
  const why = await probe();
  if (why === null) return false;
  const message = `PostgreSQL is not reachable at ${redact(PG_ADMIN_URL)} (${why})`;
  if (process.env.CI === 'true' || process.env.CI === '1') throw new Error(`${message}: the PostgreSQL tests cannot run, and in CI that is a failure`);
  return `${message}; start one (or set RUNWARDEN_TEST_PG_URL) to run these tests`;
}

export interface TestDatabase {
  name: string;
  url: string;
  /** Waits for the database's connections to close, fails if some stay open, then drops it. */
  drop(opts?: { allowOpenConnections?: boolean }): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_ADMIN_URL, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end().catch(() => undefined);
  }
}

export function databaseUrl(name: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}

let swept = false;

export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `${PREFIX}${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;
  await admin(async (c) => {
    if (!swept) {
      swept = true;
      await sweepStale(c);
    }
    await c.query(`CREATE DATABASE ${name}`);
  });
  return {
    name,
    url: databaseUrl(name),
    async drop(opts = {}) {
      await admin(async (c) => {
        const open = async (): Promise<Array<{ pid: number; application_name: string; state: string }>> =>
          (await c.query('SELECT pid, application_name, state FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])).rows;
        const until = Date.now() + 3000;
        let left = await open();
        while (left.length > 0 && Date.now() < until) {
          await new Promise((r) => setTimeout(r, 50));
          left = await open();
        }
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
        if (left.length > 0 && !opts.allowOpenConnections) {
          throw new Error(`test left ${left.length} connection(s) open to ${name}: ${left.map((l) => `${l.application_name || '?'} (${l.state})`).join(', ')}`);
        }
      });
    },
  };
}

async function sweepStale(c: pg.Client): Promise<void> {
  const rows = (await c.query<{ datname: string }>('SELECT datname FROM pg_database WHERE datname LIKE $1', [`${PREFIX}%`])).rows;
  const dayAgo = Date.now() - 86_400_000;
  for (const { datname } of rows) {
    const born = parseInt(datname.slice(PREFIX.length).split('_')[0] ?? '', 36);
    if (Number.isFinite(born) && born < dayAgo) await c.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`).catch(() => undefined);
  }
}

/** Runs one statement as the admin user (terminating backends, inspecting pg_stat_activity ...). */
export function adminQuery<R extends pg.QueryResultRow = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
  return admin(async (c) => (await c.query<R>(sql, params)).rows);
}

/** Ends every backend connected to `database` (a server restart, as far as that database can tell). */
export async function terminateConnections(database: string): Promise<number> {
  const rows = await adminQuery<{ ok: boolean }>('SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [database]);
  return rows.filter((r) => r.ok).length;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
