/**
 * The claim's SQL on PostgreSQL (docs/flow-control.md). Two statements:
 *
 * 1. `LOCK_KEYS_SQL` takes a transaction-scoped advisory lock for each concurrency key among the
 *    ready steps, without waiting (`pg_try_advisory_xact_lock`): a key another claimer holds is
 *    left to that claimer this time. A claim that holds a key's lock is the only one taking steps
 *    of that key until it commits.
 * 2. `CLAIM_SQL` counts each locked key's running steps and claims in claim order, passing over
 *    steps of a full key and of keys it did not lock. It is a separate statement because
 *    PostgreSQL reads with the snapshot its statement started with: counted in the statement that
 *    took the lock, a claim committed just before the lock was taken would not be seen, and the
 *    key could go over its limit. Counted after, every claim of the key has committed (its lock
 *    was released at commit) or is this one. Steps that stop running meanwhile only make the count
 *    too high for a moment: a key never goes over its limit, it may fill a poll later.
 *
 * Ties in claim order go by run (ids are time-ordered) and plan order, as the index is.
 *
 * Neither statement waits on a lock (SKIP LOCKED, try-locks), so the claim still holds nothing
 * another transaction waits for while it queues for the run rows it locks at the end.
 */
import { CLAIM_RANK_SQL } from '../../domain/flow.ts';
import { RunBooks } from './run-books.ts';

/** $1 now. Returns one row: `keys`, the keys this transaction now holds. */
export const LOCK_KEYS_SQL = `
  SELECT coalesce(array_agg(k), '{}') AS keys FROM (
    SELECT DISTINCT concurrency_key AS k FROM steps
    WHERE status = 'queued' AND concurrency_key IS NOT NULL AND ready_at <= $1) ready_keys
  WHERE pg_try_advisory_xact_lock(hashtextextended('runwarden.concurrency:' || k, 0))`;

/**
 * $1 now, $2 limit, $3 worker id, $4 lease ms, $5 the locked keys (text[]). Each row is the claimed
 * step after the update plus `was_ready_at`, its `ready_at` before the update cleared it (RETURNING
 * sees only the new row; `picked` carries the old value through).
 */
export const CLAIM_SQL = `
  WITH running AS (
    SELECT concurrency_key AS k, count(*) AS n FROM steps
    WHERE status = 'running' AND concurrency_key = ANY($5::text[]) GROUP BY concurrency_key),
  candidates AS MATERIALIZED (
    SELECT s.run_id, s.name, s.idx, s.ready_at, s.concurrency_key AS k, s.concurrency_limit AS lim, ${CLAIM_RANK_SQL} AS rank FROM steps s
    WHERE s.status = 'queued' AND s.ready_at <= $1
      AND (s.concurrency_key IS NULL
        OR (s.concurrency_key = ANY($5::text[]) AND s.concurrency_limit > coalesce((SELECT n FROM running WHERE running.k = s.concurrency_key), 0)))
    ORDER BY ${CLAIM_RANK_SQL}, s.run_id, s.idx LIMIT $2 FOR UPDATE OF s SKIP LOCKED),
  picked AS (
    SELECT run_id, name, ready_at FROM (SELECT c.*, row_number() OVER (PARTITION BY k ORDER BY rank, run_id, idx) AS nth FROM candidates c) c
    WHERE k IS NULL OR nth + coalesce((SELECT n FROM running WHERE running.k = c.k), 0) <= lim),
  claimed AS (
    UPDATE steps s SET status = 'running', attempts = s.attempts + 1, worker_id = $3,
      lease_token = replace(gen_random_uuid()::text, '-', ''), lease_expires_at = $1 + $4::bigint,
      deadline_at = $1 + s.timeout_ms, started_at = coalesce(s.started_at, $1), attempt_started_at = $1, ready_at = NULL, key_wait_at = NULL
    FROM picked p WHERE s.run_id = p.run_id AND s.name = p.name
    RETURNING s.*, p.ready_at AS was_ready_at),
  books AS (${RunBooks.LOCK_SQL('id IN (SELECT run_id FROM claimed)')})
  SELECT c.*, CASE WHEN row_number() OVER (ORDER BY c.run_id, c.idx) = 1 THEN (SELECT json_agg(b) FROM books b) END AS books
  FROM claimed c ORDER BY c.run_id, c.idx`;
