import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, before, describe, it } from 'node:test';
import { RunwardenError } from '../../src/domain/errors.ts';
import { SqliteVectorStore } from '../../src/store/sqlite/vectors.ts';
import { applySqliteSchema } from './helpers.ts';



let dir: string;
let file: string;
let db: DatabaseSync;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'rw-vectors-'));
  file = join(dir, 'v.db');
  db = new DatabaseSync(file);
  db.exec('PRAGMA journal_mode = WAL');
  applySqliteSchema(db);
});
after(() => {
  db.close();
  rmSync(dir, { recursive: true, force: true });
});

function isCode(code: string) {
  return (err: unknown) => err instanceof RunwardenError && err.code === code;
}

/** Deterministic pseudo-random vectors. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  };
}

describe('SqliteVectorStore', () => {
  it('stores normalised little-endian Float32 blobs and returns exact top-k by cosine', async () => {
    const store = new SqliteVectorStore(db);
    assert.equal(
      await store.upsert('basic', [
        { text: 'x axis', vector: [3, 0, 0], metadata: { axis: 'x' } },
        { text: 'y axis', vector: [0, 2, 0] },
        { text: 'xy diagonal', vector: [1, 1, 0] },
      ]),
      3,
    );
    const row = db.prepare("SELECT dims, vector, metadata FROM vectors WHERE collection = 'basic' ORDER BY id LIMIT 1").get() as {
      dims: number;
      vector: Uint8Array;
      metadata: string;
    };
    assert.equal(row.dims, 3);
    assert.equal(row.vector.byteLength, 12);
    const view = new DataView(row.vector.buffer, row.vector.byteOffset, row.vector.byteLength);
    assert.deepEqual([view.getFloat32(0, true), view.getFloat32(4, true), view.getFloat32(8, true)], [1, 0, 0]);

    const hits = await store.query('basic', [10, 1, 0], 2);
    assert.deepEqual(
      hits.map((h) => h.text),
      ['x axis', 'xy diagonal'],
    );
    assert.ok(hits[0]!.score > hits[1]!.score && hits[0]!.score <= 1);
    assert.deepEqual(hits[0]!.metadata, { axis: 'x' });
    assert.equal(hits[1]!.metadata, null);
    const scaled = await store.query('basic', [100, 10, 0], 2);
    assert.deepEqual(scaled, hits, 'the query is normalised too');
    const opposite = await store.query('basic', [-1, 0, 0], 3);
    assert.ok(Math.abs(opposite.at(-1)!.score + 1) < 1e-6);
    assert.equal(await store.count('basic'), 3);
  });

  it('k larger than the collection returns everything; unknown collections are empty', async () => {
    const store = new SqliteVectorStore(db);
    assert.equal((await store.query('basic', [1, 0, 0], 50)).length, 3);
    assert.deepEqual(await store.query('nope', [1, 0, 0], 1), []);
    assert.equal(await store.count('nope'), 0);
  });

  it('rejects mismatched dimensions with a typed error', async () => {
    const store = new SqliteVectorStore(db);
    await assert.rejects(store.upsert('basic', [{ text: 't', vector: [1, 2] }]), isCode('VECTOR_DIMENSION_MISMATCH'));
    await assert.rejects(store.query('basic', [1, 2, 3, 4], 1), isCode('VECTOR_DIMENSION_MISMATCH'));
    await assert.rejects(
      store.upsert('fresh', [
        { text: 'a', vector: [1, 2] },
        { text: 'b', vector: [1, 2, 3] },
      ]),
      isCode('VECTOR_DIMENSION_MISMATCH'),
    );
    assert.equal(await store.count('fresh'), 0, 'nothing stored from a rejected batch');
  });

  it('rejects zero and non-finite vectors and bad k', async () => {
    const store = new SqliteVectorStore(db);
    await assert.rejects(store.upsert('z', [{ text: 'zero', vector: [0, 0] }]), isCode('VECTOR_INVALID'));
    await assert.rejects(store.upsert('z', [{ text: 'nan', vector: [Number.NaN, 1] }]), isCode('VECTOR_INVALID'));
    await assert.rejects(store.query('basic', [1, 0, 0], 0), isCode('VECTOR_INVALID'));
  });

  it('extends its cache on upsert and sees rows written by another connection', async () => {
    const store = new SqliteVectorStore(db);
    await store.upsert('shared', [{ text: 'first', vector: [1, 0] }]);
    assert.equal((await store.query('shared', [1, 0], 5)).length, 1);
    await store.upsert('shared', [{ text: 'second', vector: [0, 1] }]);
    assert.deepEqual(
      (await store.query('shared', [0, 1], 1)).map((h) => h.text),
      ['second'],
    );
    const other = new DatabaseSync(file);
    try {
      await new SqliteVectorStore(other).upsert('shared', [{ text: 'from elsewhere', vector: [-1, 0] }]);
    } finally {
      other.close();
    }
    assert.deepEqual(
      (await store.query('shared', [-1, 0], 1)).map((h) => h.text),
      ['from elsewhere'],
    );
  });

  it('joins a surrounding transaction and recovers when it rolls back', async () => {
    const store = new SqliteVectorStore(db);
    await store.upsert('tx', [{ text: 'kept', vector: [1, 0] }]);
    await store.query('tx', [1, 0], 1);
    db.exec('BEGIN');
    await store.upsert('tx', [{ text: 'rolled back', vector: [0, 1] }]);
    db.exec('ROLLBACK');
    assert.deepEqual(
      (await store.query('tx', [0, 1], 5)).map((h) => h.text),
      ['kept'],
    );
  });

  // How fast it answers is measured by bench/vectors.ts, not asserted here.
  it('finds the exact nearest of 10k x 256, from the cache it loaded', async () => {
    const store = new SqliteVectorStore(db);
    const next = rng(7);
    const n = 10_000;
    const dims = 256;
    const items = Array.from({ length: n }, (_, i) => ({ text: `doc ${i}`, vector: Array.from({ length: dims }, next) }));
    await store.upsert('perf', items);
    const target = items[1234]!.vector;
    await store.query('perf', target, 4); // loads the cache
    const hits = await store.query('perf', target, 4);
    assert.equal(hits[0]!.text, 'doc 1234');
    assert.ok(Math.abs(hits[0]!.score - 1) < 1e-5);
    assert.equal(hits.length, 4);
    assert.ok(hits.every((h, i) => i === 0 || h.score <= (hits[i - 1]?.score ?? Infinity)), 'nearest first');
  });
});
