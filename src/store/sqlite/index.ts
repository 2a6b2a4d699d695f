/**
 * The embedded default: one SQLite file (WAL) through node:sqlite. Statements are synchronous, so a
 * transaction is atomic as long as the function inside awaits nothing but this store; a promise
 * chain serialises transactions so two never interleave on the one connection.
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import type { ArtifactMeta, AttemptRecord, EventRecord, WorkerRecord } from '../../domain/records.ts';
import { RUN_STATES, STEP_STATES, type RunState, type StepState } from '../../domain/states.ts';
import type { VectorStore } from '../../domain/vectors.ts';
import { labelNeedles } from '../label-match.ts';
import { loadMigrations, type Migration } from '../migrations.ts';
import type { ListRunsFilter, MigrationStatus, RunRow, StepRow, Store, StoreNotification, Tx } from '../store.ts';
import { toArtifact, toAttempt, toEvent, toRun, toStep, toWorker } from '../rows.ts';
import { SqliteTx } from './tx.ts';
import { SqliteVectorStore } from './vectors.ts';

const MIGRATIONS_DIR = join(import.meta.dirname, 'migrations');

export interface SqliteStoreOptions {
  /** File path, or ':memory:'. */
  path: string;
  /** How long a writer waits for another process's lock before failing. @default 5000 */
  busyTimeoutMs?: number;
}

export class SqliteStore implements Store {
  readonly dialect = 'sqlite' as const;
  readonly location: string;
  readonly vectors: VectorStore;
  readonly db: DatabaseSync;
  readonly #stmts = new Map<string, StatementSync>();
  readonly #listeners = new Set<(n: StoreNotification) => void>();
  readonly #migrations: Migration[];
  #chain: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(opts: SqliteStoreOptions) {
    this.location = opts.path;
    if (opts.path !== ':memory:') mkdirSync(dirname(opts.path), { recursive: true });
    this.db = new DatabaseSync(opts.path, { timeout: opts.busyTimeoutMs ?? 5000 });
    // WAL lets readers (API, CLI `db status`, other processes) proceed while a writer commits;
    // synchronous=NORMAL is durable across process crashes in WAL mode (only an OS crash can
    // lose the last commits), which is the failure model a run engine on one machine has.
    // Checkpoints every 10,000 WAL pages (~40 MB) instead of SQLite's 1,000: a busy worker rewrites
    // the same index and run pages commit after commit, and a checkpoint copies each page once
    // however often it changed (about 4 % more no-op steps/s measured with bench/sqlite-engine.ts).
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000;');
    this.#migrations = loadMigrations(MIGRATIONS_DIR);
    this.vectors = new SqliteVectorStore(this.db);
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
    const exists = this.get("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
    const done = exists ? new Set(this.all('SELECT version FROM schema_migrations').map((r) => Number(r.version))) : new Set<number>();
    const latest = this.#migrations.at(-1)?.version ?? 0;
    const pending = this.#migrations.filter((m) => !done.has(m.version)).map((m) => m.version);
    return { dialect: 'sqlite', current: Math.max(0, ...done), latest, pending };
  }

  transaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    return this.#exclusive(async () => {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(new SqliteTx(this));
        this.db.exec('COMMIT');
        return result;
      } catch (err) {
        if (this.db.isTransaction) this.db.exec('ROLLBACK');
        throw err;
      }
    });
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

  async getRun(id: string): Promise<RunRow | null> {
    const r = this.get('SELECT * FROM runs WHERE id = ?', id);
    return r ? toRun(r) : null;
  }

  async findRunByIdempotencyKey(key: string): Promise<RunRow | null> {
    const r = this.get('SELECT * FROM runs WHERE idempotency_key = ?', key);
    return r ? toRun(r) : null;
  }

  async listRuns(f: ListRunsFilter): Promise<RunRow[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (f.status) {
      where.push('status = ?');
      params.push(f.status);
    }
    if (f.label) {
      where.push('(instr(labels, ?) > 0 OR instr(labels, ?) > 0 OR instr(labels, ?) > 0 OR instr(labels, ?) > 0)');
      params.push(...labelNeedles(f.label.key, f.label.value));
    }
    if (f.createdAfter !== undefined) {
      where.push('created_at >= ?');
      params.push(f.createdAfter);
    }
    if (f.createdBefore !== undefined) {
      where.push('created_at < ?');
      params.push(f.createdBefore);
    }
    if (f.goal !== undefined) {
      where.push('instr(lower(goal), lower(?)) > 0');
      params.push(f.goal);
    }
    if (f.tool !== undefined) {
      where.push('EXISTS (SELECT 1 FROM steps s WHERE s.run_id = runs.id AND s.tool = ?)');
      params.push(f.tool);
    }
    if (f.before) {
      where.push('(created_at, id) < (?, ?)');
      params.push(f.before.createdAt, f.before.id);
    }
    const sql = `SELECT * FROM runs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at DESC, id DESC LIMIT ?`;
    return this.all(sql, ...params, f.limit).map(toRun);
  }

  async getRunSteps(runId: string): Promise<StepRow[]> {
    return this.all('SELECT * FROM steps WHERE run_id = ? ORDER BY idx', runId).map(toStep);
  }

  async getStep(runId: string, name: string): Promise<StepRow | null> {
    const r = this.get('SELECT * FROM steps WHERE run_id = ? AND name = ?', runId, name);
    return r ? toStep(r) : null;
  }

  async listAttempts(runId: string, stepName: string): Promise<AttemptRecord[]> {
    return this.all('SELECT * FROM attempts WHERE run_id = ? AND step_name = ? ORDER BY attempt', runId, stepName).map(toAttempt);
  }

  async listEvents(runId: string, afterSeq: number, limit: number): Promise<EventRecord[]> {
    return this.all('SELECT * FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?', runId, afterSeq, limit).map(toEvent);
  }

  async listArtifacts(runId: string): Promise<ArtifactMeta[]> {
    return this.all(
      'SELECT id, run_id, step_name, attempt, name, mime, size, created_at FROM artifacts WHERE run_id = ? ORDER BY created_at, id',
      runId,
    ).map(toArtifact);
  }

  async getArtifact(id: string): Promise<{ meta: ArtifactMeta; content: Buffer } | null> {
    const r = this.get('SELECT * FROM artifacts WHERE id = ?', id);
    if (!r) return null;
    const content = r.content as Uint8Array;
    return { meta: toArtifact(r), content: Buffer.from(content.buffer, content.byteOffset, content.byteLength) };
  }

  async stuckSteps(now: number): Promise<StepRow[]> {
    return this.all(
      "SELECT * FROM steps WHERE status = 'running' AND (lease_expires_at < ? OR deadline_at < ?) ORDER BY deadline_at LIMIT 1000",
      now,
      now,
    ).map(toStep);
  }

  async stepCounts(): Promise<Record<StepState, number>> {
    const out = Object.fromEntries(STEP_STATES.map((s) => [s, 0])) as Record<StepState, number>;
    for (const r of this.all('SELECT status, count(*) AS n FROM steps GROUP BY status')) out[r.status as StepState] = Number(r.n);
    return out;
  }

  async runCounts(): Promise<Record<RunState, number>> {
    const out = Object.fromEntries(RUN_STATES.map((s) => [s, 0])) as Record<RunState, number>;
    for (const r of this.all('SELECT status, count(*) AS n FROM runs GROUP BY status')) out[r.status as RunState] = Number(r.n);
    return out;
  }

  async nextReadyAt(): Promise<number | null> {
    const r = this.get("SELECT min(ready_at) AS t FROM steps WHERE status = 'queued'");
    return r?.t === null || r?.t === undefined ? null : Number(r.t);
  }

  async upsertWorker(w: WorkerRecord): Promise<void> {
    this.stmt(
      `INSERT INTO workers (id, pid, host, state, started_at, last_heartbeat_at, info) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET state = excluded.state, last_heartbeat_at = excluded.last_heartbeat_at, info = excluded.info`,
    ).run(w.id, w.pid, w.host, w.state, Date.parse(w.startedAt), Date.parse(w.lastHeartbeatAt), JSON.stringify(w.info));
  }

  async listWorkers(): Promise<WorkerRecord[]> {
    return this.all('SELECT * FROM workers ORDER BY started_at').map(toWorker);
  }

  async deleteWorker(id: string): Promise<void> {
    this.stmt('DELETE FROM workers WHERE id = ?').run(id);
  }

  async ping(): Promise<number> {
    const t0 = performance.now();
    this.get('SELECT 1 AS ok');
    return performance.now() - t0;
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
