/**
 * Retention on SQLite: deleting finished runs with everything they own, and giving the freed pages
 * back to the file system.
 *
 * A prune batch is one write transaction; between batches the caller yields, so workers writing at
 * the same time wait at most one batch for the lock (~20-60 ms for 500 runs of a few steps each,
 * measured with bench/prune.ts). The runs are picked oldest first through the `runs_created` index:
 * a run that finished before the cutoff was created before it, so each batch reads only rows older
 * than the cutoff (and skips those of them still running).
 *
 * Freed pages go on SQLite's freelist; the file shrinks only when they are moved to its end and cut
 * off. A database created with `auto_vacuum = INCREMENTAL` (every database this version creates)
 * does that with `PRAGMA incremental_vacuum(n)`, n pages per short write. An older database needs
 * one full VACUUM to switch (`runwarden db vacuum`).
 */
import type { DatabaseSync } from 'node:sqlite';
import { RUN_TERMINAL } from '../../domain/states.ts';
import { EVENTS_IN_BATCH } from '../event-batches.ts';
import type { PruneCounts, PruneOptions, SpaceUsage } from '../store.ts';

const TERMINAL = [...RUN_TERMINAL].map((s) => `'${s}'`).join(', ');

/** The prune batch, inside a transaction the caller holds. */
export function pruneBatch(db: DatabaseSync, o: PruneOptions): PruneCounts {
  const ids = (
    db.prepare(`SELECT id FROM runs WHERE status IN (${TERMINAL}) AND created_at < ?1 AND finished_at < ?1 ORDER BY created_at LIMIT ?2`).all(o.before, o.limit) as Array<{ id: string }>
  ).map((r) => r.id);
  const counts: PruneCounts = { runs: 0, steps: 0, attempts: 0, events: 0, artifacts: 0, vectors: 0, signals: 0 };
  if (ids.length === 0) return counts;
  const list = JSON.stringify(ids);
  const del = (sql: string): number => Number(db.prepare(sql).run(list).changes);
  const inList = 'IN (SELECT value FROM json_each(?))';
  counts.events = Number((db.prepare(`DELETE FROM event_batches WHERE run_id ${inList} RETURNING ${EVENTS_IN_BATCH} AS n`).all(list) as Array<{ n: number | bigint }>).reduce((sum, r) => sum + Number(r.n), 0));
  counts.attempts = del(`DELETE FROM attempts WHERE run_id ${inList}`);
  counts.artifacts = del(`DELETE FROM artifacts WHERE run_id ${inList}`);
  counts.signals = del(`DELETE FROM signals WHERE run_id ${inList}`);
  if (!o.keepVectors) counts.vectors = del(`DELETE FROM vectors WHERE run_id ${inList}`);
  // Children before parents: steps and run_plans reference runs (foreign keys are on).
  counts.steps = del(`DELETE FROM steps WHERE run_id ${inList}`);
  del(`DELETE FROM run_plans WHERE run_id ${inList}`);
  counts.runs = del(`DELETE FROM runs WHERE id ${inList}`);
  return counts;
}

export function countPrunable(db: DatabaseSync, before: number): number {
  const r = db.prepare(`SELECT count(*) AS n FROM runs WHERE status IN (${TERMINAL}) AND created_at < ?1 AND finished_at < ?1`).get(before) as { n: number | bigint };
  return Number(r.n);
}

export function spaceUsage(db: DatabaseSync): SpaceUsage {
  const num = (pragma: string): number => Number(Object.values(db.prepare(`PRAGMA ${pragma}`).get() ?? {})[0] ?? 0);
  const pageSize = num('page_size');
  return { bytes: num('page_count') * pageSize, freeBytes: num('freelist_count') * pageSize, reclaim: num('auto_vacuum') === 2 ? 'incremental' : 'vacuum' };
}

/** One `incremental_vacuum` of at most `maxPages` pages, in the write transaction the caller holds; returns how many went. */
export function reclaimPages(db: DatabaseSync, maxPages: number): number {
  const free = (): number => Number((db.prepare('PRAGMA freelist_count').get() as { freelist_count: number | bigint }).freelist_count);
  const auto = Number((db.prepare('PRAGMA auto_vacuum').get() as { auto_vacuum: number | bigint }).auto_vacuum);
  if (auto !== 2) return 0;
  const before = free();
  if (before === 0) return 0;
  db.exec(`PRAGMA incremental_vacuum(${Math.max(1, Math.floor(maxPages))})`);
  return before - free();
}
