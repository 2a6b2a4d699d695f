/**
 * Query time of SqliteVectorStore (exact cosine top-k over the in-memory cache).
 * Not part of `npm test`. Run: node_modules/.bin/node bench/vectors.ts [sizes...] [--dims=256]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { loadMigrations } from '../src/store/migrations.ts';
import { SqliteVectorStore } from '../src/store/sqlite/vectors.ts';

/** The real schema, every migration applied (the vectors table is what is measured). */
function applySqliteSchema(db: DatabaseSync): void {
  for (const m of loadMigrations(join(import.meta.dirname, '../src/store/sqlite/migrations'))) db.exec(m.sql);
}

const args = process.argv.slice(2);
const dims = Number(args.find((a) => a.startsWith('--dims='))?.slice(7) ?? 256);
const sizes = args.filter((a) => !a.startsWith('--')).map(Number);
if (sizes.length === 0) sizes.push(10_000, 100_000);

let s = 12345;
const rand = (): number => {
  s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
  return s / 2 ** 32 - 0.5;
};

const dir = mkdtempSync(join(tmpdir(), 'rw-vbench-'));
try {
  console.log(`node ${process.version}, ${dims} dims, k=4, 50 warm queries per size`);
  console.log('| vectors | insert | first query (loads cache) | warm p50 | warm p95 | cache MB |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const n of sizes) {
    const db = new DatabaseSync(join(dir, `b${n}.db`));
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL');
    applySqliteSchema(db);
    const writer = new SqliteVectorStore(db);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 5000) {
      const batch = Array.from({ length: Math.min(5000, n - i) }, (_, j) => ({ text: `doc ${i + j}`, vector: Float32Array.from({ length: dims }, rand) }));
      await writer.upsert('bench', batch);
    }
    const insertMs = performance.now() - t0;
    // A fresh store: the first query pays for loading the collection from SQLite.
    const store = new SqliteVectorStore(db);
    const q = (): Float32Array => Float32Array.from({ length: dims }, rand);
    const t1 = performance.now();
    await store.query('bench', q(), 4);
    const firstMs = performance.now() - t1;
    const times: number[] = [];
    for (let i = 0; i < 50; i++) {
      const v = q();
      const t = performance.now();
      await store.query('bench', v, 4);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const p = (x: number): string => times[Math.min(times.length - 1, Math.floor(x * times.length))]!.toFixed(1);
    const mb = ((n * dims * 4) / 1e6).toFixed(0);
    console.log(`| ${n.toLocaleString('en')} | ${(insertMs / 1000).toFixed(2)} s | ${firstMs.toFixed(0)} ms | ${p(0.5)} ms | ${p(0.95)} ms | ${mb} |`);
    db.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
