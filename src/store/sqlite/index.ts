/**
 * The embedded default: one SQLite file (WAL) through node:sqlite, one connection per store.
 * Statements are synchronous; a transaction's function may still await, and then other code runs
 * on the same connection, inside the open transaction. So everything goes through one promise
 * chain: transactions one after another, and every read or write from outside a transaction after
 * the transaction in progress has committed or rolled back (a read on the connection mid-way would
 * see rows that may yet be rolled back; a write would join the transaction and roll back with it).
 * Reads made inside the transaction's own function (its async context) run at once, as part of it.
 */
import { limitStore, type ProviderLimitStore } from '../../flow/limit-store.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import { mkdirSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { VectorStore } from '../../domain/vectors.ts';
import { RunwardenError } from '../../domain/errors.ts';
import { yieldToLoop } from '../../domain/slices.ts';
import { loadMigrations, type Migration } from '../migrations.ts';
import type { MigrationStatus, PruneCounts, PruneOptions, SpaceUsage, Store, StoreNotification, Tx } from '../store.ts';
import { StoreReads } from '../reads.ts';
import { ScheduleTable, type ScheduleStore } from '../schedules.ts';
import { countPrunable, pruneBatch, reclaimPages, spaceUsage } from './prune.ts';
import { SqliteTx } from './tx.ts';
import { SqliteVectorStore } from './vectors.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

/** SQLITE_FULL (13): "database or disk is full" (the volume, or the WAL, cannot grow). */
function isFull(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' && (code & 0xff) === 13;
}

function storageFull(err: unknown, where: string): RunwardenError {
  return new RunwardenError('STORAGE_FULL', `disk full: the SQLite database at ${where} cannot grow (${(err as Error).message}); free space on its volume, runwarden recovers by itself`, { cause: err });
}

/** SQLITE_BUSY (5) and its extended codes (SQLITE_BUSY_RECOVERY 261, SQLITE_BUSY_SNAPSHOT 517, ...). */
function isBusy(err: unknown): boolean {
  const code = (err as { errcode?: unknown }).errcode;
  return typeof code === 'number' && (code & 0xff) === 5;
}

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** How long a writer waits for another process's lock before failing. @default 5000 */
  busyTimeoutMs?: number;
}

/** `$1, $2 ...` (how store/reads.ts writes placeholders) as SQLite's numbered `?1, ?2 ...`. */
const NUMBERED = new Map<string, string>();
function numberedParams(sql: string): string {
  let out = NUMBERED.get(sql);
  if (out === undefined) {
    out = sql.replace(/\$(\d+)/g, '?$1');
    NUMBERED.set(sql, out);
  }
  return out;
}

export class SqliteStore extends StoreReads implements Store {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  readonly vectors: VectorStore;
  readonly schedules: ScheduleStore = new ScheduleTable((sql, params) => this.rows(sql, params));
  readonly providerLimits: ProviderLimitStore;
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #listeners = new Set<(n: StoreNotification) => void>();
  readonly #migrations: Migration[];
  #chain: Promise<unknown> = Promise.resolve();
  readonly #busyTimeoutMs: number;
  /** A write failed with SQLITE_FULL and none has succeeded since. */
  #full = false;
  #tunedAt = 0;
  #walPages = 10_000;
  /** Free bytes on the database's volume at the last check (null for :memory: or before one). */
  freeBytes: number | null = null;
  /** The transaction whose function is running (see #outside). */
  readonly #transaction = new AsyncLocalStorage<{ open: boolean }>();
  #closed = false;

  constructor(opts: SqliteStoreOptions) {
    super();
    this.location = opts.path;
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.#busyTimeoutMs = opts.busyTimeoutMs ?? 5000;
    this.db = new DatabaseSync(opts.path, { timeout: this.#busyTimeoutMs });
    // WAL lets readers (API, CLI `db status`, other processes) proceed while a writer commits;
    // synchronous=NORMAL is durable across process crashes in WAL mode (only an OS crash can
    // lose the last commits), which is the failure model a run engine on one machine has.
    // Checkpoints every 10,000 WAL pages (~40 MB) instead of SQLite's 1,000: a busy worker rewrites
    // the same index and run pages commit after commit, and a checkpoint copies each page once
    // however often it changed (about 4 % more no-op steps/s measured with bench/sqlite-engine.ts).
    // auto_vacuum first: it only takes effect on a database that has no table yet (a new file), and
    // lets retention give deleted runs' pages back to the file system a few at a time
    // (src/store/sqlite/prune.ts); on an existing database it changes nothing.
    try {
      this.db.exec('PRAGMA auto_vacuum = INCREMENTAL; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;');
    } catch (err) {
      // Opening on a full volume (doctor, a restart): say so rather than "unreachable".
      this.db.close();
      throw isFull(err) ? storageFull(err, opts.path) : err;
    }
    this.#tuneWal();
    this.#migrations = loadMigrations(MIGRATIONS_DIR);
    this.vectors = new SqliteVectorStore(this.db, (fn) => this.#outside(fn));
    const q = (sql: string, params: unknown[]): Promise<Record<string, unknown>[]> => {
      const st = this.stmt(sql.replace(/\$(\d+)/g, '?$1'));
      const args = params as SQLInputValue[];
      return Promise.resolve(st.columns().length > 0 ? st.all(...args) : (st.run(...args), []));
    };
    this.providerLimits = limitStore({
      write: (fn) =>
        this.#exclusive(async () => {
          await this.#beginImmediate();
          try {
            const out = await fn(q);
            this.db.exec('COMMIT');
            return out;
          } catch (err) {
            if (this.db.isTransaction) this.db.exec('ROLLBACK');
            throw err;
          }
        }),
      read: (sql, params) => this.#outside(() => q(sql, params)).then((rows) => rows),
    });
  }

  /** Cached prepared statement. */
  stmt(sql: string): StatementSync {
    let s = this.#stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.#stmts.set(sql, s);
    }
    return s;
  }

  all(sql: string, ...params: SQLInputValue[]): Record<string, unknown>[] {
    return this.stmt(sql).all(...params);
  }

  get(sql: string, ...params: SQLInputValue[]): Record<string, unknown> | undefined {
    return this.stmt(sql).get(...params);
  }

  async migrate(): Promise<{ applied: number[] }> {
    return this.#exclusive(() => {
      this.db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)');
      const applied: number[] = [];
      // BEGIN IMMEDIATE takes the write lock first, so two processes migrating at once serialise.
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const done = new Set(this.all('SELECT version FROM schema_migrations').map((r) => Number(r.version)));
        for (const m of this.#migrations) {
          if (done.has(m.version)) continue;
          this.db.exec(m.sql);
          this.stmt('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(m.version, m.name, Date.now());
          applied.push(m.version);
        }
        this.db.exec('COMMIT');
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
      return { applied };
    });
  }

  async migrationStatus(): Promise<MigrationStatus> {
    const done = await this.#outside(() => {
      const exists = this.get("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
      return exists ? new Set(this.all('SELECT version FROM schema_migrations').map((r) => Number(r.version))) : new Set<number>();
    });
    const latest = this.#migrations.at(-1)?.version ?? 0;
    const pending = this.#migrations.filter((m) => !done.has(m.version)).map((m) => m.version);
    return { dialect: 'sqlite', current: Math.max(0, ...done), latest, pending };
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      // Every transaction starts in a macrotask of its own: queued transactions chained on promises
      // would otherwise run back to back in one turn of the loop (a burst of 200 submissions kept a
      // new connection's /health waiting 4.5 s for all of them).
      await yieldToLoop();
      this.#tuneWal();
      await this.#beginImmediate();
      const scope = { open: true };
      try {
        const result = await this.#transaction.run(scope, () => fn(new SqliteTx(this)));
        scope.open = false;
        this.db.exec('COMMIT');
        this.#full = false;
        return result;
      } catch (err) {
        scope.open = false;
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        if (isFull(err)) throw this.#onFull(err);
        throw err;
      }
    });
  }

  async pruneRuns(o: PruneOptions): Promise<PruneCounts> {
    return this.#exclusive(async () => {
      await yieldToLoop();
      await this.#beginImmediate();
      let counts: PruneCounts;
      try {
        counts = pruneBatch(this.db, o);
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
      // This connection's own writes do not change data_version: drop its cached collections.
      if (counts.vectors > 0) (this.vectors as SqliteVectorStore).invalidate();
      return counts;
    });
  }

  countPrunable(before: number): Promise<number> {
    return this.#outside(() => countPrunable(this.db, before));
  }

  spaceUsage(): Promise<SpaceUsage> {
    return this.#outside(() => spaceUsage(this.db));
  }

  reclaimSpace(maxPages: number): Promise<number> {
    return this.#exclusive(async () => {
      await yieldToLoop();
      await this.#beginImmediate();
      try {
        const n = reclaimPages(this.db, maxPages);
        this.db.exec('COMMIT');
        // In WAL mode the file is cut when the truncation is checkpointed: start one now (PASSIVE
        // never waits for readers or writers; the automatic checkpoints finish what it cannot).
        if (n > 0 && n < maxPages) this.db.exec('PRAGMA wal_checkpoint(PASSIVE)');
        return n;
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async vacuum(): Promise<void> {
    await this.#exclusive(() => {
      // Takes effect with this VACUUM: from then on retention returns pages as it frees them.
      this.db.exec('PRAGMA auto_vacuum = INCREMENTAL');
      this.db.exec('VACUUM');
      this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    });
  }

  /**
   * Keeps the WAL small enough for its volume. It grows until a checkpoint copies it back into the
   * database (every `wal_autocheckpoint` pages; 10,000 = ~40 MB is ~4 % faster on a large disk) and
   * keeps its size on disk after that unless `journal_size_limit` truncates it. On a small volume a
   * 40 MB WAL filled the disk again as soon as space was freed. So, checked every 5 s (one statfs):
   * the WAL may take an eighth of the free space, between 100 pages and 10,000.
   */
  #tuneWal(): void {
    const now = Date.now();
    if (this.location === ':memory:' || now - this.#tunedAt < 5000) return;
    this.#tunedAt = now;
    let free: number;
    try {
      const st = statfsSync(dirname(this.location));
      free = st.bavail * st.bsize;
    } catch {
      // No statfs here (an exotic filesystem): keep the current setting.
      return;
    }
    this.freeBytes = free;
    const pages = Math.max(100, Math.min(10_000, Math.floor(free / 8 / 4096)));
    if (pages === this.#walPages) return;
    this.#walPages = pages;
    this.db.exec(`PRAGMA wal_autocheckpoint = ${pages}; PRAGMA journal_size_limit = ${pages * 4096}`);
  }

  /**
   * A write failed for want of space. What it wrote is rolled back; the WAL is checkpointed into
   * the database and truncated (TRUNCATE: to zero bytes), so that the space it holds comes back and
   * freeing space on the volume is enough to recover.
   */
  #onFull(err: unknown): RunwardenError {
    this.#full = true;
    this.#tunedAt = 0;
    try {
      this.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
    } catch {
      // Readers in other processes hold the WAL, or the checkpoint itself needs space: the next
      // failure (or the next automatic checkpoint) tries again.
    }
    return storageFull(err, this.location);
  }

  async probeWrite(): Promise<void> {
    await this.#exclusive(async () => {
      await this.#beginImmediate();
      try {
        const v = Number((this.get('PRAGMA user_version') as { user_version?: unknown } | undefined)?.user_version ?? 0);
        this.db.exec(`PRAGMA user_version = ${v}`);
        this.db.exec('COMMIT');
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        if (isFull(err)) throw this.#onFull(err);
        throw err;
      }
    });
    if (this.#full) throw storageFull(new Error('the last write failed: database or disk is full'), this.location);
  }

  /**
   * BEGIN IMMEDIATE without blocking the event loop. SQLite's busy handler waits for another
   * process's write lock by sleeping inside the call, up to the busy timeout, with the whole loop
   * stopped (the API's /health included) while worker processes commit. So the lock is tried with
   * no busy wait and, while another process holds it, tried again after 1, 2, 4 ... 16 ms timers,
   * until the same busy timeout has passed.
   */
  async #beginImmediate(): Promise<void> {
    const deadline = performance.now() + this.#busyTimeoutMs;
    let waitMs = 1;
    this.db.exec('PRAGMA busy_timeout = 0');
    try {
      for (;;) {
        try {
          this.db.exec('BEGIN IMMEDIATE');
          return;
        } catch (err) {
          if (!isBusy(err) || performance.now() >= deadline) throw err;
        }
        await new Promise((r) => setTimeout(r, waitMs));
        waitMs = Math.min(16, waitMs * 2);
      }
    } finally {
      this.db.exec(`PRAGMA busy_timeout = ${this.#busyTimeoutMs}`);
    }
  }

  /**
   * Runs `fn` on the connection outside any transaction but the caller's own: at once when called
   * from inside this store's open transaction (it is part of it), else after the transaction in
   * progress, if any, has ended.
   */
  #outside<T>(fn: () => T): Promise<T> {
    // The executor's throw becomes the rejection.
    if (this.#transaction.getStore()?.open === true) return new Promise<T>((resolve) => resolve(fn()));
    return this.#exclusive(fn);
  }

  #exclusive<T>(fn: () => T | Promise<T>): Promise<T> {
    if (this.#closed) return Promise.reject(new Error('store is closed'));
    const run = this.#chain.then(fn);
    // The chain continues whether this link failed or not; the caller receives the failure.
    this.#chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  protected rows(sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    const text = numberedParams(sql);
    return this.#outside(() => {
      try {
        return this.all(text, ...(params as SQLInputValue[]));
      } catch (err) {
        // The worker-table upserts are the writes outside transactions.
        if (isFull(err)) throw this.#onFull(err);
        throw err;
      }
    });
  }

  protected inTextList(column: string, param: string): string {
    return `${column} IN (SELECT value FROM json_each(${param}))`;
  }

  protected list(values: readonly string[]): unknown {
    return JSON.stringify(values);
  }

  protected textContains(column: string, param: string): string {
    return `instr(${column}, ${param}) > 0`;
  }

  publish(n: StoreNotification): void {
    for (const fn of this.#listeners) fn(n);
  }

  subscribe(fn: (n: StoreNotification) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#chain;
    this.#closed = true;
    this.#listeners.clear();
    this.#stmts.clear();
    this.db.close();
  }
}
