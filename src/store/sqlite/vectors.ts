/**
 * Vector collections in the `vectors` table: one row per text, the vector as a little-endian Float32
 * BLOB, normalised at insert so that cosine similarity is a dot product.
 *
 * Queries are exact (brute force) over a per-collection Float32Array matrix cached in memory, shared
 * by every SqliteVectorStore on the same connection. Freshness without a per-query count:
 * - rows this connection writes extend the cache directly;
 * - `PRAGMA data_version` (a few microseconds) changes when another connection or process commits,
 *   and then each collection is reconciled once against max(id) and count(*) (~4 ms at 100k rows);
 * - a write made inside a transaction someone else holds marks the collection for reconciliation,
 *   because that transaction may still roll back.
 * Writes to the table that bypass this class on the same connection are not seen: call
 * `invalidate()`. Measured numbers and where brute force stops being enough: docs/providers.md.
 */
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { UpsertOptions, VectorHit, VectorItem, VectorStore } from '../../domain/vectors.ts';
import { append, appendRows, assembleHits, checkCollection, checkK, MAX_DIMS, MAX_K, prepareItems, queryVector, toBlob, topK, upsertMismatch, type Collection } from '../vector-matrix.ts';

export { MAX_DIMS, MAX_K };

interface ConnectionCache {
  collections: Map<string, Collection>;
  /** Collections to reconcile against the table before their next query. */
  stale: Set<string>;
  dataVersion: number;
}

const CACHES = new WeakMap<DatabaseSync, ConnectionCache>();

export class SqliteVectorStore implements VectorStore {
  private readonly db: DatabaseSync;
  private readonly cache: ConnectionCache;
  private readonly stmts = new Map<string, StatementSync>();
  /** Where each operation runs: the store passes its "outside another transaction" section. */
  private readonly run: <T>(fn: () => T) => Promise<T>;

  /** @param run how to run an operation on the connection; by default at once. */
  constructor(db: DatabaseSync, run: <T>(fn: () => T) => Promise<T> = async (fn) => fn()) {
    this.db = db;
    this.run = run;
    let cache = CACHES.get(db);
    if (!cache) {
      cache = { collections: new Map(), stale: new Set(), dataVersion: -1 };
      CACHES.set(db, cache);
    }
    this.cache = cache;
  }

  upsert(collection: string, items: VectorItem[], opts: UpsertOptions = {}): Promise<number> {
    return this.run(() => this.upsertNow(collection, items, opts.runId ?? null));
  }

  query(collection: string, vector: Float32Array | number[], k: number): Promise<VectorHit[]> {
    return this.run(() => this.queryNow(collection, vector, k));
  }

  count(collection: string): Promise<number> {
    return this.run(() => {
      checkCollection(collection);
      return this.stat(collection).count;
    });
  }

  private upsertNow(collection: string, items: VectorItem[], runId: string | null): number {
    checkCollection(collection);
    if (items.length === 0) return 0;
    const { dims, rows } = prepareItems(collection, items);
    const existing = this.collectionDims(collection);
    if (existing !== undefined && existing !== dims) throw upsertMismatch(collection, existing, dims);
    const insert = this.stmt('INSERT INTO vectors (collection, text, dims, vector, metadata, created_at, run_id) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const now = new Date().toISOString();
    const ids: number[] = [];
    const outer = this.db.isTransaction;
    // A savepoint works both on its own (it opens and commits a transaction) and inside a
    // transaction the caller already holds.
    this.db.exec('SAVEPOINT vectors_upsert');
    try {
      for (const r of rows) {
        const res = insert.run(collection, r.text, dims, toBlob(r.vector), r.metadata, now, runId);
        ids.push(Number(res.lastInsertRowid));
      }
      this.db.exec('RELEASE vectors_upsert');
    } catch (err) {
      this.db.exec('ROLLBACK TO vectors_upsert');
      this.db.exec('RELEASE vectors_upsert');
      throw err;
    }
    const cached = this.cache.collections.get(collection);
    if (cached) {
      if (outer || this.cache.stale.has(collection)) this.cache.stale.add(collection);
      else for (let i = 0; i < rows.length; i++) append(cached, ids[i]!, rows[i]!.vector);
    }
    return rows.length;
  }

  private queryNow(collection: string, vector: Float32Array | number[], k: number): VectorHit[] {
    checkCollection(collection);
    checkK(k);
    const c = this.load(collection);
    if (!c) return [];
    const top = topK(c, queryVector(collection, c, vector), Math.min(k, c.count));
    if (top.length === 0) return [];
    const placeholders = top.map(() => '?').join(',');
    const rows = this.db.prepare(`SELECT id, text, metadata FROM vectors WHERE id IN (${placeholders})`).all(...top.map((t) => t.id)) as Array<{
      id: number | bigint;
      text: string;
      metadata: string | null;
    }>;
    return assembleHits(top, rows);
  }

  /** Drop the in-memory copy of one collection (or all). */
  invalidate(collection?: string): void {
    if (collection === undefined) this.cache.collections.clear();
    else this.cache.collections.delete(collection);
  }

  private stmt(sql: string): StatementSync {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  private stat(collection: string): { count: number; maxId: number } {
    const r = this.stmt('SELECT count(*) AS n, max(id) AS m FROM vectors WHERE collection = ?').get(collection) as { n: number | bigint; m: number | bigint | null };
    return { count: Number(r.n), maxId: r.m === null ? 0 : Number(r.m) };
  }

  private collectionDims(collection: string): number | undefined {
    const cached = this.cache.collections.get(collection);
    if (cached) return cached.dims;
    const r = this.stmt('SELECT dims FROM vectors WHERE collection = ? ORDER BY id LIMIT 1').get(collection) as { dims: number | bigint } | undefined;
    return r === undefined ? undefined : Number(r.dims);
  }

  /** The cached collection, brought up to date with the table; undefined when it has no rows. */
  private load(collection: string): Collection | undefined {
    const cache = this.cache;
    const version = Number((this.stmt('PRAGMA data_version').get() as { data_version: number | bigint }).data_version);
    if (version !== cache.dataVersion) {
      cache.dataVersion = version;
      for (const name of cache.collections.keys()) cache.stale.add(name);
    }
    let c = cache.collections.get(collection);
    if (c && !cache.stale.has(collection)) return c;
    cache.stale.delete(collection);
    const s = this.stat(collection);
    if (s.count === 0) {
      cache.collections.delete(collection);
      return undefined;
    }
    if (c && c.count === s.count && c.maxId === s.maxId) return c;
    if (c && s.count > c.count && s.maxId > c.maxId) {
      // Rows were appended elsewhere: read only those.
      this.readRows(c, collection);
      if (c.count === s.count) return c;
    }
    // Missing, or rows vanished (a rolled-back transaction, a manual delete), or rows appeared
    // below our max id: rebuild.
    cache.collections.delete(collection);
    const dims = this.collectionDims(collection);
    if (dims === undefined) return undefined;
    c = { dims, matrix: new Float32Array(0), ids: new Float64Array(0), count: 0, maxId: 0 };
    this.readRows(c, collection);
    cache.collections.set(collection, c);
    return c;
  }

  private readRows(c: Collection, collection: string): void {
    const rows = this.stmt('SELECT id, dims, vector FROM vectors WHERE collection = ? AND id > ? ORDER BY id').all(collection, c.maxId) as Array<{
      id: number | bigint;
      dims: number | bigint;
      vector: Uint8Array;
    }>;
    appendRows(c, collection, rows);
  }
}
