-- A queued step held back by its concurrency key is announced once per wait (docs/flow-control.md#never-silent). Append-only.
-- key_wait_at: when the reaper found the step ready but its key full and wrote its step.waiting
--   event; NULL while it was not (yet) announced. The claim clears it, so a step queued again after
--   a retry is announced again when it waits again.
ALTER TABLE steps ADD COLUMN key_wait_at INTEGER;
-- The reaper's look-up of held steps not announced yet: only those are in it, by key.
CREATE INDEX steps_key_unannounced ON steps (concurrency_key) WHERE status = 'queued' AND concurrency_key IS NOT NULL AND key_wait_at IS NULL;
