/**
 * One conformance suite for the storage interface: each test body is written once, with
 * `conformance(suite, (it) => ...)`, and registered for every dialect (SQLite and PostgreSQL).
 *
 * A test gets a fresh, migrated, empty database (`ctx.store`), can open more stores on the same
 * database (`ctx.another()`: another connection, as another process would have), and can open a
 * store on a brand-new database that is not migrated yet (`ctx.unmigrated()`). Everything it opens
 * is closed after it. Times are explicit where a test controls them (`Transitions({ now })`).
 *
 * PostgreSQL: one database per suite, created when the suite starts and dropped at its end (which
 * fails the suite if a store was left open); tables are emptied before each test. Without a
 * reachable server the PostgreSQL half is skipped locally and fails in CI (test/helpers/postgres.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/index.ts';
import { SqliteStore } from '../../src/store/sqlite/index.ts';
import type { Store } from '../../src/store/store.ts';
import { createTestDatabase, postgresSkip, type TestDatabase } from '../helpers/postgres.ts';

export type DialectName = 'sqlite' | 'postgres';

export interface Ctx {
  dialect: DialectName;
  /** A migrated store on an empty database. */
  store: Store;
  /** Another store on the same database (a separate connection or pool). Closed after the test. */
  another(): Promise<Store>;
  /** A store on a new, empty, unmigrated database; `open()` gives more stores on that one. */
  unmigrated(): Promise<{ store: Store; open(): Store }>;
}

type Body = (ctx: Ctx) => Promise<void>;
type It = (name: string, body: Body, opts?: { timeout?: number }) => void;

interface DialectHarness {
  name: DialectName;
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** Open a store on the suite's database after emptying it. */
  fresh(): Promise<{ store: Store; open: () => Store }>;
  newDatabase(): Promise<{ open: () => Store }>;
}

const TABLES = ['event_batches', 'attempts', 'artifacts', 'signals', 'steps', 'run_plans', 'runs', 'workers', 'vectors', 'vector_collections', 'schedules'];

/**
 * SQLite connections in one thread cannot wait for each other the way processes do: a busy wait
 * blocks the thread, so the connection holding the lock never gets to commit. Each SQLite store
 * here therefore fails fast when the file is locked (busy timeout 0) and retries the operation
 * after a short asynchronous pause, which is what separate processes, each waiting on its own
 * thread, amount to. Only operations that failed to take the lock are retried (SQLITE_BUSY on
 * BEGIN IMMEDIATE or on a first write), so nothing runs twice.
 */
function sqliteProcess(path: string): Store {
  const store = new SqliteStore({ path, busyTimeoutMs: 0 });
  const retrying = <T extends object>(target: T): T =>
    new Proxy(target, {
      get(obj, prop, receiver) {
        const value = Reflect.get(obj, prop, receiver) as unknown;
        if ((prop === 'vectors' || prop === 'schedules' || prop === 'providerLimits') && typeof value === 'object' && value !== null) return retrying(value);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const call = (): unknown => (value as (...a: unknown[]) => unknown).apply(obj, args);
          const first = call();
          if (!(first instanceof Promise)) return first;
          const again = async (p: Promise<unknown>, tries: number): Promise<unknown> => {
            try {
              return await p;
            } catch (err) {
              if (!isBusy(err) || tries > 5000) throw err;
              await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
              return again(call() as Promise<unknown>, tries + 1);
            }
          };
          return again(first, 0);
        };
      },
    });
  return retrying(store);
}

const isBusy = (err: unknown): boolean => typeof (err as { errcode?: unknown })?.errcode === 'number' && ((err as { errcode: number }).errcode & 0xff) === 5;

function sqliteHarness(): DialectHarness {
  const dirs: string[] = [];
  const tempDir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'rw-conf-'));
    dirs.push(d);
    return d;
  };
  return {
    name: 'sqlite',
    async setup() {},
    async teardown() {
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
    async fresh() {
      const path = join(tempDir(), 'runwarden.db');
      const store = sqliteProcess(path);
      await store.migrate();
      return { store, open: () => sqliteProcess(path) };
    },
    async newDatabase() {
      const path = join(tempDir(), 'runwarden.db');
      return { open: () => sqliteProcess(path) };
    },
  };
}

function postgresHarness(): DialectHarness {
  const dbs: TestDatabase[] = [];
  let main: TestDatabase | undefined;
  let migrated = false;
  // Small pools: the server is shared with other suites, and a test opens up to six stores.
  const open = (url: string) => (): Store => new PostgresStore({ url, poolMax: 3 });
  return {
    name: 'postgres',
    async setup() {
      main = await createTestDatabase();
      dbs.push(main);
    },
    async teardown() {
      const errors: unknown[] = [];
      for (const db of dbs) await db.drop().catch((err: unknown) => errors.push(err));
      if (errors.length > 0) throw errors[0];
    },
    async fresh() {
      const url = (main as TestDatabase).url;
      const store = open(url)() as PostgresStore;
      if (!migrated) {
        await store.migrate();
        migrated = true;
      } else {
        const c = new pg.Client({ connectionString: url });
        await c.connect();
        try {
          await c.query(`TRUNCATE ${TABLES.join(', ')} RESTART IDENTITY`);
        } finally {
          await c.end();
        }
        await store.migrate();
      }
      return { store, open: open(url) };
    },
    async newDatabase() {
      const db = await createTestDatabase();
      dbs.push(db);
      return { open: open(db.url) };
    },
  };
}

const pgSkip = await postgresSkip();

/** Registers `define`'s tests once per dialect. */
export function conformance(suite: string, define: (it: It) => void): void {
  for (const make of [sqliteHarness, postgresHarness]) {
    const h = make();
    const skip = h.name === 'postgres' ? pgSkip : false;
    describe(`${suite} [${h.name}]`, { skip }, () => {
      before(() => h.setup());
      after(() => h.teardown());
      define((name, body, opts = {}) => {
        test(name, { timeout: opts.timeout ?? 60_000 }, async (t) => {
          const opened: Store[] = [];
          t.after(async () => {
            for (const s of opened.reverse()) await s.close();
          });
          const { store, open } = await h.fresh();
          opened.push(store);
          await body({
            dialect: h.name,
            store,
            async another() {
              const s = open();
              opened.push(s);
              return s;
            },
            async unmigrated() {
              const db = await h.newDatabase();
              const first = db.open();
              opened.push(first);
              return {
                store: first,
                open() {
                  const s = db.open();
                  opened.push(s);
                  return s;
                },
              };
            },
          });
        });
      });
    });
  }
}
