/**
 * The scale-out store: PostgreSQL through a `pg` pool, shared by any number of API and worker
 * processes on any number of machines. Same contract as the SQLite store (test/conformance runs
 * one suite on both); what differs is concurrency, which PostgreSQL resolves with row locks:
 * see tx.ts for how claims, seq allocation, lease renewal and the reaper stay correct with many
 * writers, and notify.ts for how processes wake each other.
 *
 * Failure model:
 * - A lost connection (server restart, network) surfaces as RunwardenError DATABASE_UNAVAILABLE
 *   (503, retryable). Callers retry: the worker keeps its results and flushes again, the reaper
 *   runs at its next tick, an API client gets a 503. The pool drops broken connections and opens
 *   new ones on demand, so nothing needs restarting when the server is back.
 * - A transaction that loses a race the server resolves (deadlock, serialization failure, the
 *   unique idempotency key) is rolled back and run again from the start, up to `maxTxAttempts`.
 *   The engine's transaction functions are written to be re-run (they rebuild their effects).
 * - A session that stops mid-transaction (a frozen process holding row locks) is ended by the
 *   server after `idleInTransactionMs`, so it cannot block a run forever.
 */
import { limitStore, type ProviderLimitStore } from '../../flow/limit-store.ts';
import { AsyncLocalStorage } from 'node:async_hooks';
import { join } from 'node:path';
import pg from 'pg';
import { RunwardenError } from '../../domain/errors.ts';
import { storableText } from '../../domain/text.ts';
import { loadMigrations, type Migration } from '../migrations.ts';
import { StoreReads } from '../reads.ts';
import { ScheduleTable, type ScheduleStore } from '../schedules.ts';
import type { MigrationStatus, PruneCounts, PruneOptions, SpaceUsage, Store, StoreNotification, Tx } from '../store.ts';
import { redactUrl } from '../../domain/redact-url.ts';
import { TYPES } from './connection.ts';
import { isConflict, isConnectionError, mapError, unavailable } from './errors.ts';
import { applyMigrations } from './migrate.ts';
import { PgNotifier } from './notify.ts';
import { countPrunable, pruneBatch, spaceUsage } from './prune.ts';
import { PgTx } from './tx.ts';
import { PgVectorStore } from './vectors.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export interface PostgresStoreOptions {
  /** `postgres://user:pass@host:port/db`. Query parameter `pool_max` sets `poolMax`. */
  url: string;
  /** Connections in this process's pool. @default 10 (or `?pool_max=` in the URL) */
  poolMax?: number;
  /** How long to wait for a connection (new or from the pool) before DATABASE_UNAVAILABLE. @default 5000 */
  connectTimeoutMs?: number;
  /** Server-side limit on one statement. @default 30000 */
  statementTimeoutMs?: number;
  /** The server ends a session idle inside a transaction this long, releasing its locks. @default 10000 */
  idleInTransactionMs?: number;
  /** Attempts of a transaction that loses a deadlock or serialization race. @default 8 */
  maxTxAttempts?: number;
  /** LISTEN/NOTIFY channel. @default 'runwarden' */
  channel?: string;
  /** Shown in pg_stat_activity. @default 'runwarden' */
  applicationName?: string;
  log?: (line: string) => void;
}

/**
 * PostgreSQL `text` refuses NUL: a tool's artifact name, a collection or a vector text holding one
 * would fail its whole transaction, again on every retry. Client input never gets here with one
 * (it is refused at the API); what a tool produced is stored with U+FFFD in its place.
 */
function textParams(params: unknown[]): unknown[] {
  let out: unknown[] | undefined;
  for (let i = 0; i < params.length; i++) {
    const v = params[i];
    if (typeof v === 'string') {
      if (storableText(v) !== v) (out ??= [...params])[i] = storableText(v);
    } else if (Array.isArray(v) && v.some((x: unknown) => typeof x === 'string' && storableText(x) !== x)) {
      (out ??= [...params])[i] = v.map((x: unknown) => (typeof x === 'string' ? storableText(x) : x));
    }
  }
  return out ?? params;
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

interface TxContext {
  client: pg.PoolClient;
  open: boolean;
  /** A statement inside the transaction, after the writes it has deferred. */
  query: (sql: string, params: unknown[]) => Promise<pg.QueryResult>;
}

export class PostgresStore extends StoreReads implements Store {
  readonly dialect = 'postgres' as const;
  readonly location: string;
  readonly vectors: PgVectorStore;
  readonly schedules: ScheduleStore = new ScheduleTable((sql, params) => this.rows(sql, params));
  readonly providerLimits: ProviderLimitStore;
  readonly pool: pg.Pool;
  readonly #listeners = new Set<(n: StoreNotification) => void>();
  readonly #migrations: Migration[];
  readonly #notifier: PgNotifier;
  readonly #maxTxAttempts: number;
  readonly #log: (line: string) => void;
  readonly #names = new Map<string, string>();
  /** The transaction the current async context runs in: store reads inside `transaction(fn)` use it. */
  readonly #als = new AsyncLocalStorage<TxContext>();
  #closed = false;
  /** Connections the pool reported as broken while idle (a restart shows up here first). */
  poolErrors = 0;
  /** Transactions run again after losing a race (by SQLSTATE: 40P01 deadlock, 23505 idempotency key ...). */
  readonly txRetries: Record<string, number> = {};

  constructor(opts: PostgresStoreOptions) {
    super();
    let url: URL;
    try {
      url = new URL(opts.url);
    } catch {
      // Not echoed: the URL may hold a password.
      throw new RunwardenError('CONFIG_INVALID', 'DATABASE_URL is not a valid URL (expected postgres://user:password@host:port/database)');
    }
    const poolParam = url.searchParams.get('pool_max');
    url.searchParams.delete('pool_max');
    this.location = redactUrl(url);
    this.#log = opts.log ?? (() => undefined);
    this.#maxTxAttempts = opts.maxTxAttempts ?? 8;
    const statementTimeout = opts.statementTimeoutMs ?? 30_000;
    const base: pg.ClientConfig = {
      connectionString: url.toString(),
      application_name: opts.applicationName ?? 'runwarden',
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
      statement_timeout: statementTimeout,
      // Client side: a server that stops answering (no RST) fails the query instead of hanging it.
      query_timeout: statementTimeout + 5000,
      idle_in_transaction_session_timeout: opts.idleInTransactionMs ?? 10_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      types: TYPES,
    };
    // pipeline: statements go out without waiting for the ones before them (see #engineTransaction).
    this.pool = new pg.Pool({ ...base, pipeline: true, max: opts.poolMax ?? (poolParam ? Number(poolParam) : 10), idleTimeoutMillis: 30_000 });
    // An idle connection the server closed (restart, pg_terminate_backend) is reported here; without
    // a listener it would crash the process. The pool has already discarded it.
    this.pool.on('error', (err) => {
      this.poolErrors++;
      this.#log(`postgres: idle connection lost: ${err.message}`);
    });
    this.#migrations = loadMigrations(MIGRATIONS_DIR);
    const channel = opts.channel ?? 'runwarden';
    this.#notifier = new PgNotifier({
      channel,
      newClient: () => new pg.Client({ ...base, application_name: `${base.application_name}-listen`, statement_timeout: 5000, query_timeout: 10_000 }),
      pool: this.pool,
      deliver: (n) => this.#deliver(n),
      log: this.#log,
    });
    this.vectors = new PgVectorStore({
      query: (sql, params) => this.#query(sql, params),
      transaction: (fn) => this.#withClient(async (client) => this.#inTransaction(client, () => fn((sql, params) => client.query(sql, textParams(params))))),
    });
    this.providerLimits = limitStore({
      write: (fn) =>
        this.#withClient((client) => this.#inTransaction(client, () => fn(async (sql, params) => (await client.query(sql, textParams(params))).rows as Record<string, unknown>[]))),
      read: (sql, params) => this.#rows(sql, params),
    });
  }

  /** Starts listening for other processes' notifications (idempotent; never throws: it retries). */
  listen(): Promise<void> {
    return this.#notifier.start();
  }

  /** Whether the LISTEN connection is up (for health checks and tests). */
  get listening(): boolean {
    return this.#notifier.listening;
  }

  get listenConnects(): number {
    return this.#notifier.connects;
  }

  #named(sql: string): string | undefined {
    let name = this.#names.get(sql);
    if (name === undefined && this.#names.size < 500) {
      name = `rw${this.#names.size}`;
      this.#names.set(sql, name);
    }
    return name;
  }

  /** One statement: on the current transaction's connection when inside one, else on the pool. */
  async #query(sql: string, params: unknown[]): Promise<pg.QueryResult> {
    const ctx = this.#als.getStore();
    if (ctx?.open) return ctx.query(sql, params);
    if (this.#closed) throw new Error('store is closed');
    try {
      return await this.pool.query({ text: sql, values: textParams(params), name: this.#named(sql) });
    } catch (err) {
      throw mapError(err, this.location);
    }
  }

  async #rows(sql: string, params: unknown[] = []): Promise<Record<string, unknown>[]> {
    return (await this.#query(sql, params)).rows as Record<string, unknown>[];
  }

  async #withClient<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('store is closed');
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      throw unavailable(err, this.location);
    }
    // A checked-out connection that breaks between two statements emits 'error' on the client;
    // the statement in flight (or the next one) fails and we discard the connection below.
    let broken: Error | undefined;
    const onError = (err: Error): void => {
      broken = err;
    };
    client.on('error', onError);
    try {
      const result = await fn(client);
      client.off('error', onError);
      client.release(broken);
      return result;
    } catch (err) {
      client.off('error', onError);
      // Never hand a connection back to the pool mid-transaction or broken: discard it instead.
      const discard = broken ?? (isConnectionError(err) || client.getTransactionStatus() !== 'I' ? asError(err) : undefined);
      client.release(discard);
      throw mapError(err, this.location);
    }
  }

  async #inTransaction<T>(client: pg.PoolClient, fn: () => Promise<T>): Promise<T> {
    await client.query('BEGIN');
    try {
      const result = await fn();
      await client.query('COMMIT');
      return result;
    } catch (err) {
      if (!isConnectionError(err)) {
        // If even this fails, the connection is discarded by #withClient (status not idle).
        await client.query('ROLLBACK').catch(() => undefined);
      }
      throw err;
    }
  }

  async migrate(): Promise<{ applied: number[] }> {
    const applied = await this.#withClient((client) => applyMigrations(client, this.#migrations, this.location));
    // A migrated store is a store about to be used: start listening for other processes.
    void this.listen();
    return { applied };
  }

  async migrationStatus(): Promise<MigrationStatus> {
    const exists = await this.#rows("SELECT to_regclass('schema_migrations') IS NOT NULL AS x");
    const done = exists[0]?.x === true ? new Set((await this.#rows('SELECT version FROM schema_migrations')).map((r) => Number(r.version))) : new Set<number>();
    const latest = this.#migrations.at(-1)?.version ?? 0;
    const pending = this.#migrations.filter((m) => !done.has(m.version)).map((m) => m.version);
    return { dialect: 'postgres', current: Math.max(0, ...done), latest, pending };
  }

  async transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#withClient((client) => this.#engineTransaction(client, fn));
      } catch (err) {
        if (attempt >= this.#maxTxAttempts || !isConflict(err)) throw err;
        const code = String((err as { code?: unknown }).code);
        this.txRetries[code] = (this.txRetries[code] ?? 0) + 1;
        // Lost a race the server broke for us: run the whole transaction again, after a short
        // jittered pause so the two contenders do not collide again.
        await new Promise((r) => setTimeout(r, Math.random() * 5 * attempt));
      }
    }
  }

  /**
   * One engine transaction on a pipelining connection: BEGIN, the inserts and the COMMIT go out
   * without waiting for the statements before them, so a transaction costs a round trip per
   * statement whose result the engine needs, not per statement (a claim: 3 waits instead of 6).
   */
  async #engineTransaction<T>(client: pg.PoolClient, fn: (tx: Tx) => Promise<T>): Promise<T> {
    const send = (sql: string, params: unknown[]): Promise<pg.QueryResult> =>
      sql === 'BEGIN' ? client.query(sql) : client.query({ text: sql, values: textParams(params), name: this.#named(sql) });
    const tx = new PgTx(send);
    const ctx: TxContext = { client, open: true, query: (sql, params) => tx.query(sql, params) };
    tx.begin();
    try {
      const result = await this.#als.run(ctx, () => fn(tx));
      ctx.open = false;
      await tx.flush();
      // COMMIT goes out behind the pipelined writes; it is answered ROLLBACK if one of them
      // failed, and then that failure (from settle) is the error to report.
      const commit: Promise<pg.QueryResult | Error> = client.query('COMMIT').then(
        (r) => r,
        (e: unknown) => (e instanceof Error ? e : new Error(String(e))),
      );
      let writeError: Error | undefined;
      await tx.settle().catch((e: unknown) => {
        writeError = e instanceof Error ? e : new Error(String(e));
      });
      const done = await commit;
      if (writeError) throw writeError;
      if (done instanceof Error) throw done;
      if (done.command !== 'COMMIT') throw new Error(`COMMIT was answered with ${done.command}`);
      return result;
    } catch (err) {
      ctx.open = false;
      if (!isConnectionError(err)) {
        // Pipelined statements may still be in flight (the transaction status is only known once
        // they are answered): let them land, then roll back whatever they did.
        await tx.settle().catch(() => undefined);
        await client.query('ROLLBACK').catch(() => undefined);
      }
      throw err;
    }
  }

  async probeWrite(): Promise<void> {
    // A transaction id is only assigned to a transaction that writes: taking one makes the commit
    // a real WAL record, without touching a table.
    await this.#withClient(async (client) => {
      await client.query('BEGIN');
      await client.query('SELECT pg_current_xact_id()');
      await client.query('COMMIT');
    });
  }

  protected rows(sql: string, params: unknown[]): Promise<Record<string, unknown>[]> {
    return this.#rows(sql, params);
  }

  async pruneRuns(o: PruneOptions): Promise<PruneCounts> {
    const counts = await this.#withClient((client) => this.#inTransaction(client, () => pruneBatch((sql, params) => client.query(sql, textParams(params)), o)));
    // Other processes see `deleted` move; this one's cache is dropped here as well.
    if (counts.vectors > 0) this.vectors.invalidate();
    return counts;
  }

  countPrunable(before: number): Promise<number> {
    return countPrunable((sql, params) => this.#query(sql, params), before);
  }

  spaceUsage(): Promise<SpaceUsage> {
    return spaceUsage((sql, params) => this.#query(sql, params));
  }

  /** PostgreSQL returns space with its own VACUUM: nothing to do here. */
  async reclaimSpace(): Promise<number> {
    return 0;
  }

  async vacuum(): Promise<void> {
    // VACUUM cannot run in a transaction block: one statement on the pool.
    await this.#query('VACUUM (ANALYZE) runs, run_plans, steps, attempts, events, artifacts, signals, vectors, vector_collections', []);
  }

  protected inTextList(column: string, param: string): string {
    return `${column} = ANY(${param}::text[])`;
  }

  protected list(values: readonly string[]): unknown {
    return values;
  }

  protected textContains(column: string, param: string): string {
    return `strpos(${column}::text, ${param}) > 0`;
  }

  publish(n: StoreNotification): void {
    this.#deliver(n);
    this.#notifier.send(n);
  }

  #deliver(n: StoreNotification): void {
    for (const fn of this.#listeners) {
      try {
        fn(n);
      } catch (err) {
        this.#log(`postgres: a notification subscriber threw: ${(err as Error).message}`);
      }
    }
  }

  subscribe(fn: (n: StoreNotification) => void): () => void {
    this.#listeners.add(fn);
    void this.listen();
    return () => this.#listeners.delete(fn);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#notifier.close();
    this.#closed = true;
    this.#listeners.clear();
    await this.pool.end();
  }
}

