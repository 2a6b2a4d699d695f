-- Fewer rows and index entries per step (issue 16). Append-only: never edit a released migration.
-- Mirrors src/store/sqlite/migrations/000005_fewer_rows.sql; what differs is said here.
--
-- 1. An attempt's row is written once, when it ends. The attempt a running step is in lives in its
--    steps row: attempts (its number), worker_id, deadline_at and attempt_started_at (new here).
--    Rows of attempts still running move there and leave the attempts table.
ALTER TABLE steps ADD COLUMN attempt_started_at bigint;
UPDATE steps s SET attempt_started_at = coalesce(
    (SELECT a.started_at FROM attempts a WHERE a.run_id = s.run_id AND a.step_name = s.name AND a.attempt = s.attempts), s.started_at)
  WHERE s.status = 'running';
DELETE FROM attempts WHERE status = 'running';

-- 2. Leases are renewed by (run_id, name), the primary key, with the token checked on the row.
--    Runs are listed by status through runs_created and pruned oldest first the same way. Without
--    an index on status, the updates of a run row (counters, seq, status) stay HOT: no index entry
--    is written for them. The idempotency key is indexed only where there is one (a NULL key took
--    an entry per run); the index keeps the constraint's name, which errors.ts recognises.
DROP INDEX steps_token;
DROP INDEX runs_status;
ALTER TABLE runs DROP CONSTRAINT runs_idempotency_key;
CREATE UNIQUE INDEX runs_idempotency_key ON runs (idempotency_key) WHERE idempotency_key IS NOT NULL;

-- 3. Events are stored in batches: one row holds consecutive events of one run written by one
--    transaction (at most 64), seqs first_seq..last_seq in order. `body` is a json array of
--    {"ts", "type", "step"?, "attempt"?, "data"} (src/store/event-batches.ts). Readers find the
--    events after seq n with last_seq > n. The view `events` shows one row per event, as the table
--    of that name did, for ad-hoc queries.
CREATE TABLE event_batches (
  run_id    text NOT NULL,
  last_seq  bigint NOT NULL,
  first_seq bigint NOT NULL,
  body      json NOT NULL,
  PRIMARY KEY (run_id, last_seq)
);
INSERT INTO event_batches (run_id, last_seq, first_seq, body)
  SELECT run_id, seq, seq, json_build_array(json_build_object('ts', ts, 'type', type, 'step', step_name, 'attempt', attempt, 'data', data))
  FROM events;
DROP TABLE events;
CREATE VIEW events AS
  SELECT b.run_id, b.first_seq + e.ord - 1 AS seq, (e.v->>'ts')::bigint AS ts, e.v->>'type' AS type, e.v->>'step' AS step_name,
         (e.v->>'attempt')::integer AS attempt, e.v->'data' AS data
  FROM event_batches b, json_array_elements(b.body) WITH ORDINALITY AS e(v, ord);
