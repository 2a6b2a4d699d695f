-- Waits for signals and reruns (docs/waits-and-reruns.md). Append-only: never edit a released migration.
-- awaiting_signal / awaiting_since: the signal a `wait` step waits (or waited) for, and since when;
--   while it waits the step is `pending` with no lease, and deadline_at is the end of its wait.
-- reused_from: a step of a rerun that was not run again: the run whose attempt produced its outputs.
-- rerun_of: the run this one reruns (POST /runs/:id/rerun).
ALTER TABLE steps ADD COLUMN awaiting_signal TEXT;
ALTER TABLE steps ADD COLUMN awaiting_since INTEGER;
ALTER TABLE steps ADD COLUMN reused_from TEXT;
ALTER TABLE runs ADD COLUMN rerun_of TEXT;
-- The reaper's look-up of waits past their deadline: only steps waiting right now are in it.
CREATE INDEX steps_awaiting ON steps (deadline_at) WHERE status = 'pending' AND awaiting_signal IS NOT NULL;
-- One row per signal name and run: written by the first of "a step waits for it" (awaited_at) and
-- "it is sent" (sent_at, payload); the other fills in its half. The shared row is what orders a send
-- and a wait that happen at the same time.
CREATE TABLE signals (
  run_id     TEXT NOT NULL,
  name       TEXT NOT NULL,
  payload    TEXT,
  sent_at    INTEGER,
  awaited_at INTEGER,
  PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
