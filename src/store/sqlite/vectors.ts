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
import { endianness } from 'node:os';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { RunwardenError } from '../../domain/errors.ts';
import type { VectorHit, VectorItem, VectorStore } from '../../domain/vectors.ts';

const LITTLE_ENDIAN = endianness() === 'LE';
/** Largest vector accepted (OpenAI's largest embeddings have 3072 dimensions). */
export const MAX_DIMS = 16_384;
/** Largest k a query may ask for. */
export const MAX_K = 1000;

interface Collection {
  dims: number;
  /** Row i of the matrix is `matrix.subarray(i * dims, (i + 1) * dims)`. Capacity grows by doubling. */
  matrix: Float32Array;
  ids: Float64Array;
  count: number;
  maxId: number;
}

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

  constructor(db: DatabaseSync) {
    this.db = db;
    let cache = CACHES.get(db);
    if (!cache) {
      cache = { collections: new Map(), stale: new Set(), dataVersion: -1 };
      CACHES.set(db, cache);
    }
    this.cache = cache;
  }

  async upsert(collection: string, items: VectorItem[]): Promise<number> {
    checkCollection(collection);
    if (items.length === 0) return 0;
    const dims = items[0]!.vector.length;
    const existing = this.collectionDims(collection);
    const rows = items.map((item, i) => {
      if (typeof item.text !== 'string') throw invalid(`item ${i}: text must be a string`);
      if (item.vector.length !== dims) {
        throw mismatch(`item ${i} has ${item.vector.length} dimensions, item 0 has ${dims}`, { collection, expected: dims, got: item.vector.length });
      }
      return { text: item.text, vector: normalise(item.vector, i), metadata: item.metadata === undefined ? null : JSON.stringify(item.metadata) };
    });
    if (dims === 0 || dims > MAX_DIMS) throw invalid(`vectors must have 1 to ${MAX_DIMS} dimensions, got ${dims}`);
    if (existing !== undefined && existing !== dims) {
      throw mismatch(`collection "${collection}" holds ${existing}-dimensional vectors; got ${dims}`, { collection, expected: existing, got: dims });
    }
    const insert = this.stmt('INSERT INTO vectors (collection, text, dims, vector, metadata, created_at) VALUES (?, ?, ?, ?, ?, ?)');
    const now = new Date().toISOString();
    const ids: number[] = [];
    const outer = this.db.isTransaction;
    // A savepoint works both on its own (it opens and commits a transaction) and inside a
    // transaction the caller already holds.
    this.db.exec('SAVEPOINT vectors_upsert');
    try {
      for (const r of rows) {
        const res = insert.run(collection, r.text, dims, toBlob(r.vector), r.metadata, now);
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

  async query(collection: string, vector: Float32Array | number[], k: number): Promise<VectorHit[]> {
    checkCollection(collection);
    if (!Number.isInteger(k) || k < 1 || k > MAX_K) throw invalid(`k must be an integer from 1 to ${MAX_K}, got ${k}`);
    const c = this.load(collection);
    if (!c) return [];
    if (vector.length !== c.dims) {
      throw mismatch(`collection "${collection}" holds ${c.dims}-dimensional vectors; the query has ${vector.length}`, {
        collection,
        expected: c.dims,
        got: vector.length,
      });
    }
    const q = normalise(vector, 0);
    const top = topK(c, q, Math.min(k, c.count));
    if (top.length === 0) return [];
    const placeholders = top.map(() => '?').join(',');
    const rows = this.db.prepare(`SELECT id, text, metadata FROM vectors WHERE id IN (${placeholders})`).all(...top.map((t) => t.id)) as Array<{
      id: number | bigint;
      text: string;
      metadata: string | null;
    }>;
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    const hits: VectorHit[] = [];
    for (const t of top) {
      const r = byId.get(t.id);
      if (!r) continue;
      hits.push({ text: r.text, score: t.score, metadata: r.metadata === null ? null : (JSON.parse(r.metadata) as Record<string, unknown>) });
    }
    return hits;
  }

  async count(collection: string): Promise<number> {
    checkCollection(collection);
    return this.stat(collection).count;
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
    reserve(c, c.count + rows.length);
    for (const r of rows) {
      const dims = Number(r.dims);
      if (dims !== c.dims || r.vector.byteLength !== dims * 4) {
        throw new RunwardenError('vectors.corrupt', `row ${Number(r.id)} of collection "${collection}" has ${dims} dims / ${r.vector.byteLength} bytes; expected ${c.dims}`, {
          data: { collection, id: Number(r.id) },
        });
      }
      writeRow(c, Number(r.id), r.vector);
    }
  }
}

function checkCollection(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw invalid('collection must be a non-empty string of at most 200 characters');
}

function invalid(message: string): RunwardenError {
  return new RunwardenError('vectors.invalid', message, { status: 400, retryable: false });
}

function mismatch(message: string, data: Record<string, unknown>): RunwardenError {
  return new RunwardenError('vectors.dimension_mismatch', message, { status: 400, retryable: false, data });
}

function normalise(v: Float32Array | number[], index: number): Float32Array {
  const out = new Float32Array(v.length);
  let sum = 0;
  for (let i = 0; i < v.length; i++) {
    const x = v[i]!;
    if (typeof x !== 'number' || !Number.isFinite(x)) throw invalid(`vector ${index} has a non-finite value at ${i}`);
    sum += x * x;
  }
  if (sum === 0) throw invalid(`vector ${index} is all zeros: it has no direction to compare`);
  const inv = 1 / Math.sqrt(sum);
  for (let i = 0; i < v.length; i++) out[i] = v[i]! * inv;
  return out;
}

function toBlob(v: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  const out = new Uint8Array(v.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < v.length; i++) view.setFloat32(i * 4, v[i]!, true);
  return out;
}

function reserve(c: Collection, rows: number): void {
  if (c.ids.length >= rows) return;
  const cap = Math.max(rows, c.ids.length * 2, 64);
  const matrix = new Float32Array(cap * c.dims);
  matrix.set(c.matrix.subarray(0, c.count * c.dims));
  const ids = new Float64Array(cap);
  ids.set(c.ids.subarray(0, c.count));
  c.matrix = matrix;
  c.ids = ids;
}

function writeRow(c: Collection, id: number, blob: Uint8Array): void {
  const offset = c.count * c.dims;
  if (LITTLE_ENDIAN) {
    new Uint8Array(c.matrix.buffer, c.matrix.byteOffset + offset * 4, c.dims * 4).set(blob);
  } else {
    const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    for (let i = 0; i < c.dims; i++) c.matrix[offset + i] = view.getFloat32(i * 4, true);
  }
  c.ids[c.count] = id;
  c.count++;
  if (id > c.maxId) c.maxId = id;
}

function append(c: Collection, id: number, v: Float32Array): void {
  reserve(c, c.count + 1);
  c.matrix.set(v, c.count * c.dims);
  c.ids[c.count] = id;
  c.count++;
  if (id > c.maxId) c.maxId = id;
}

/** Exact top-k by dot product; a sorted buffer of k is cheaper than a heap for the small k used. */
function topK(c: Collection, q: Float32Array, k: number): Array<{ id: number; score: number }> {
  const { matrix, dims, count } = c;
  const scores = new Float64Array(k).fill(-Infinity);
  const idx = new Int32Array(k).fill(-1);
  let floor = -Infinity;
  for (let row = 0, off = 0; row < count; row++, off += dims) {
    // Four independent accumulators let V8 overlap the multiply-adds: 18 ms instead of 25 ms for
    // 100k x 256 on this machine (test/llm/vectors-bench.ts; a single unrolled sum was no faster).
    let a = 0;
    let b = 0;
    let e = 0;
    let f = 0;
    let d = 0;
    for (; d + 3 < dims; d += 4) {
      a += matrix[off + d]! * q[d]!;
      b += matrix[off + d + 1]! * q[d + 1]!;
      e += matrix[off + d + 2]! * q[d + 2]!;
      f += matrix[off + d + 3]! * q[d + 3]!;
    }
    let dot = a + b + e + f;
    for (; d < dims; d++) dot += matrix[off + d]! * q[d]!;
    if (dot <= floor) continue;
    let pos = k - 1;
    while (pos > 0 && scores[pos - 1]! < dot) {
      scores[pos] = scores[pos - 1]!;
      idx[pos] = idx[pos - 1]!;
      pos--;
    }
    scores[pos] = dot;
    idx[pos] = row;
    floor = scores[k - 1]!;
  }
  const out: Array<{ id: number; score: number }> = [];
  for (let i = 0; i < k; i++) {
    const row = idx[i]!;
    if (row < 0) break;
    out.push({ id: c.ids[row]!, score: Math.max(-1, Math.min(1, scores[i]!)) });
  }
  return out;
}
