/**
 * Retention on PostgreSQL: deleting finished runs with everything they own, one transaction per
 * batch. The batch's runs are locked `FOR UPDATE SKIP LOCKED`, so two API processes pruning at once
 * take different runs and neither waits on the other. Deleted rows' space is made reusable by
 * autovacuum; it goes back to the file system only with `VACUUM FULL` (which locks the tables) or a
 * tool such as pg_repack (docs/operations.md).
 */
import type pg from 'pg';
import { RUN_TERMINAL } from '../../domain/states.ts';
import { EVENTS_IN_BATCH } from '../event-batches.ts';
import type { PruneCounts, PruneOptions, SpaceUsage } from '../store.ts';

type Query = (sql: string, params: unknown[]) => Promise<pg.QueryResult>;

const TERMINAL = [...RUN_TERMINAL];

/** One batch, inside a transaction whose statements `q` runs. */
export async function pruneBatch(q: Query, o: PruneOptions): Promise<PruneCounts> {
  const picked = await q(
    `SELECT id FROM runs WHERE status = ANY($1::text[]) AND created_at < $2 AND finished_at < $2
     ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
    [TERMINAL, o.before, o.limit],
  );
  const ids = (picked.rows as Array<{ id: string }>).map((r) => r.id);
  const counts: PruneCounts = { runs: 0, steps: 0, attempts: 0, events: 0, artifacts: 0, vectors: 0, signals: 0 };
  if (ids.length === 0) return counts;
  const del = async (sql: string): Promise<number> => (await q(sql, [ids])).rowCount ?? 0;
  counts.events = Number((await q(`WITH d AS (DELETE FROM event_batches WHERE run_id = ANY($1::text[]) RETURNING ${EVENTS_IN_BATCH} AS n) SELECT coalesce(sum(n), 0)::bigint AS n FROM d`, [ids])).rows[0]?.n ?? 0);
  counts.attempts = await del('DELETE FROM attempts WHERE run_id = ANY($1::text[])');
  counts.artifacts = await del('DELETE FROM artifacts WHERE run_id = ANY($1::text[])');
  counts.signals = await del('DELETE FROM signals WHERE run_id = ANY($1::text[])');
  if (!o.keepVectors) counts.vectors = await deleteVectors(q, ids);
  counts.steps = await del('DELETE FROM steps WHERE run_id = ANY($1::text[])');
  await del('DELETE FROM run_plans WHERE run_id = ANY($1::text[])');
  counts.runs = await del('DELETE FROM runs WHERE id = ANY($1::text[])');
  return counts;
}

/**
 * The runs' vectors, and each collection's counts (src/store/postgres/vectors.ts: readers rebuild
 * their copy when `deleted` moved). A collection left empty loses its row, so it can be created
 * again with other dimensions. Updating the collection rows locks them in name order, as writers
 * lock them one at a time: a writer and a prune never wait on each other in a cycle.
 */
async function deleteVectors(q: Query, runIds: string[]): Promise<number> {
  const gone = await q(
    `WITH d AS (DELETE FROM vectors WHERE run_id = ANY($1::text[]) RETURNING collection)
     SELECT collection, count(*)::bigint AS n FROM d GROUP BY collection ORDER BY collection`,
    [runIds],
  );
  const rows = gone.rows as Array<{ collection: string; n: string | number }>;
  if (rows.length === 0) return 0;
  await q(
    `UPDATE vector_collections c SET rows = c.rows - u.n, deleted = c.deleted + u.n
     FROM unnest($1::text[], $2::bigint[]) AS u(collection, n) WHERE c.collection = u.collection`,
    [rows.map((r) => r.collection), rows.map((r) => Number(r.n))],
  );
  await q('DELETE FROM vector_collections WHERE collection = ANY($1::text[]) AND rows <= 0', [rows.map((r) => r.collection)]);
  return rows.reduce((sum, r) => sum + Number(r.n), 0);
}

export async function countPrunable(q: Query, before: number): Promise<number> {
  const r = await q('SELECT count(*)::bigint AS n FROM runs WHERE status = ANY($1::text[]) AND created_at < $2 AND finished_at < $2', [TERMINAL, before]);
  return Number((r.rows[0] as { n: string | number }).n);
}

const TABLES = ['runs', 'run_plans', 'steps', 'attempts', 'events', 'artifacts', 'signals', 'workers', 'vectors', 'vector_collections'];

export async function spaceUsage(q: Query): Promise<SpaceUsage> {
  const r = await q(`SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0)::bigint AS bytes FROM unnest($1::text[]) AS t`, [TABLES]);
  return { bytes: Number((r.rows[0] as { bytes: string | number }).bytes), freeBytes: 0, reclaim: 'server' };
}
