/**
 * Vector collections on PostgreSQL, with the same contract as the SQLite store: rows in `vectors`
 * (little-endian Float32 bytea, normalised at insert so cosine similarity is a dot product), exact
 * top-k over an in-memory copy of each collection.
 *
 * Freshness across processes without scanning: `vector_collections` holds each collection's row
 * count and how many rows were ever deleted from it (pruned runs). A writer locks that row for the
 * length of its insert, so ids within a collection are allocated in commit order; a reader compares
 * its cached count and deletions with the row (one primary-key read), reads only `id > maxId` when
 * only inserts happened since, and rebuilds otherwise.
 */
import type pg from 'pg';
import type { UpsertOptions, VectorHit, VectorItem, VectorStore } from '../../domain/vectors.ts';
import { appendRows, assembleHits, checkCollection, checkK, MAX_DIMS, MAX_K, prepareItems, queryVector, toBlob, topK, upsertMismatch, type Collection } from '../vector-matrix.ts';

export { MAX_DIMS, MAX_K };

export interface VectorDb {
  /** Runs `fn` in a transaction on one connection. */
  transaction<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  query: Queryable;
}

export type Queryable = (sql: string, params: unknown[]) => Promise<pg.QueryResult>;

export class PgVectorStore implements VectorStore {
  readonly #db: VectorDb;
  readonly #cache = new Map<string, Collection>();
  /** `vector_collections.deleted` as each cached copy saw it. */
  readonly #deletedSeen = new Map<string, number>();

  constructor(db: VectorDb) {
    this.#db = db;
  }

  async upsert(collection: string, items: VectorItem[], opts: UpsertOptions = {}): Promise<number> {
    checkCollection(collection);
    if (items.length === 0) return 0;
    const { dims, rows } = prepareItems(collection, items);
    const now = new Date().toISOString();
    await this.#db.transaction(async (q) => {
      await q('INSERT INTO vector_collections (collection, dims) VALUES ($1, $2) ON CONFLICT (collection) DO NOTHING', [collection, dims]);
      // The lock that orders writers of one collection (see the header).
      const locked = await q('SELECT dims FROM vector_collections WHERE collection = $1 FOR UPDATE', [collection]);
      const existing = Number((locked.rows[0] as { dims: number }).dims);
      if (existing !== dims) throw upsertMismatch(collection, existing, dims);
      await q(
        `INSERT INTO vectors (collection, text, dims, vector, metadata, created_at, run_id)
         SELECT $1, t, $2, v, m, $3, $7 FROM unnest($4::text[], $5::bytea[], $6::json[]) AS u(t, v, m)`,
        [collection, dims, now, rows.map((r) => r.text), rows.map((r) => asBuffer(toBlob(r.vector))), rows.map((r) => r.metadata), opts.runId ?? null],
      );
      await q('UPDATE vector_collections SET rows = rows + $2 WHERE collection = $1', [collection, rows.length]);
    });
    return rows.length;
  }

  async query(collection: string, vector: Float32Array | number[], k: number): Promise<VectorHit[]> {
    checkCollection(collection);
    checkK(k);
    const c = await this.#load(collection);
    if (!c) return [];
    const top = topK(c, queryVector(collection, c, vector), Math.min(k, c.count));
    if (top.length === 0) return [];
    const res = await this.#db.query('SELECT id, text, metadata FROM vectors WHERE id = ANY($1::bigint[])', [top.map((t) => t.id)]);
    return assembleHits(top, res.rows as Array<{ id: number; text: string; metadata: string | null }>);
  }

  async count(collection: string): Promise<number> {
    checkCollection(collection);
    const r = await this.#db.query('SELECT rows FROM vector_collections WHERE collection = $1', [collection]);
    return r.rows.length === 0 ? 0 : Number((r.rows[0] as { rows: number }).rows);
  }

  /** Drops the in-memory copy of one collection (or all). */
  invalidate(collection?: string): void {
    if (collection === undefined) {
      this.#cache.clear();
      this.#deletedSeen.clear();
    } else {
      this.#cache.delete(collection);
      this.#deletedSeen.delete(collection);
    }
  }

  async #load(collection: string): Promise<Collection | undefined> {
    const meta = await this.#db.query('SELECT dims, rows, deleted FROM vector_collections WHERE collection = $1', [collection]);
    const row = meta.rows[0] as { dims: number; rows: number; deleted: number } | undefined;
    const rows = row ? Number(row.rows) : 0;
    if (!row || rows === 0) {
      this.#cache.delete(collection);
      return undefined;
    }
    const deleted = Number(row.deleted);
    let c = this.#cache.get(collection);
    if (c && c.dims === Number(row.dims) && this.#deletedSeen.get(collection) === deleted) {
      if (c.count === rows) return c;
      if (c.count < rows) {
        await this.#readRows(c, collection);
        if (c.count === rows) return c;
      }
    }
    // Missing, rows deleted since (a pruned run), or the numbers disagree (a restore): rebuild.
    c = { dims: Number(row.dims), matrix: new Float32Array(0), ids: new Float64Array(0), count: 0, maxId: 0 };
    await this.#readRows(c, collection);
    this.#cache.set(collection, c);
    this.#deletedSeen.set(collection, deleted);
    return c;
  }

  async #readRows(c: Collection, collection: string): Promise<void> {
    const res = await this.#db.query('SELECT id, dims, vector FROM vectors WHERE collection = $1 AND id > $2 ORDER BY id', [collection, c.maxId]);
    appendRows(c, collection, res.rows as Array<{ id: number; dims: number; vector: Buffer }>);
  }
}

/** node-postgres sends a Buffer as bytea; a bare Uint8Array would be serialised as text. */
function asBuffer(b: Uint8Array): Buffer {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}
