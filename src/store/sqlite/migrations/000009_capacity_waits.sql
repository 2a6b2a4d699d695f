-- Waiting for capacity, shown and bounded (docs/flow-control.md#waiting-for-capacity). Append-only.
-- queue_timeout_ms: how long a step may wait for capacity (queued and ready, or at a provider's
--   gate inside its attempt) before it fails with QUEUE_TIMEOUT; NULL: no bound. The run's is the
--   default of the steps added to it.
-- waiting_for: what a running step's attempt waits for at a provider's gate, as its worker last
--   said (JSON: attempt, provider, limit, used, cap, retryAt, since); NULL when it waits for nothing.
ALTER TABLE steps ADD COLUMN queue_timeout_ms INTEGER;
ALTER TABLE runs ADD COLUMN queue_timeout_ms INTEGER;
ALTER TABLE steps ADD COLUMN waiting_for TEXT;
-- The reaper's look-up of queued steps past their queue timeout: only bounded queued steps are in it.
CREATE INDEX steps_queue_expiry ON steps ((ready_at + queue_timeout_ms)) WHERE status = 'queued' AND queue_timeout_ms IS NOT NULL;
-- The running steps that wait for capacity (doctor, /metrics): only those are in it.
CREATE INDEX steps_waiting ON steps (run_id) WHERE status = 'running' AND waiting_for IS NOT NULL;
