-- Fewer rows and index entries per step (issue 16). Append-only: never edit a released migration.
-- Mirrors src/store/postgres/migrations/000005_fewer_rows.sql.
--
-- 1. An attempt's row is written once, when it ends. The attempt a running step is in lives in its
--    steps row: attempts (its number), worker_id, deadline_at and attempt_started_at (new here).
--    Rows of attempts still running move there and leave the attempts table.
ALTER TABLE steps ADD COLUMN attempt_started_at INTEGER;
UPDATE steps SET attempt_started_at = coalesce(
    (SELECT a.started_at FROM attempts a WHERE a.run_id = steps.run_id AND a.step_name = steps.name AND a.attempt = steps.attempts), started_at)
  WHERE status = 'running';
DELETE FROM attempts WHERE status = 'running';

-- 2. Leases are renewed by (run_id, name), the primary key, with the token checked on the row: the
--    token index cost an entry written and deleted per attempt. Runs are listed by status through
--    runs_created (newest first, the status checked on each row) and pruned oldest first the same
--    way: runs_status changed twice per run (queued -> running -> finished).
DROP INDEX steps_token;
DROP INDEX runs_status;

-- 3. Events are stored in batches: one row holds consecutive events of one run written by one
--    transaction (at most 64), seqs first_seq..last_seq in order. `body` is a JSON array of
--    {"ts", "type", "step"?, "attempt"?, "data"} (src/store/event-batches.ts). Readers find the
--    events after seq n with last_seq > n. The view `events` shows one row per event, as the table
--    of that name did, for ad-hoc queries.
CREATE TABLE event_batches (
  run_id    TEXT NOT NULL,
  last_seq  INTEGER NOT NULL,
  first_seq INTEGER NOT NULL,
  body      TEXT NOT NULL,
  PRIMARY KEY (run_id, last_seq)
) WITHOUT ROWID;
INSERT INTO event_batches (run_id, last_seq, first_seq, body)
  SELECT run_id, seq, seq, json_array(json_object('ts', ts, 'type', type, 'step', step_name, 'attempt', attempt, 'data', json(data)))
  FROM events;
DROP TABLE events;
CREATE VIEW events AS
  SELECT b.run_id AS run_id, b.first_seq + e.key AS seq, json_extract(e.value, '$.ts') AS ts, json_extract(e.value, '$.type') AS type,
         json_extract(e.value, '$.step') AS step_name, json_extract(e.value, '$.attempt') AS attempt, json_extract(e.value, '$.data') AS data
  FROM event_batches b, json_each(b.body) e;
