-- Waiting for capacity, shown and bounded (docs/flow-control.md#waiting-for-capacity). Append-only.
-- Mirrors src/store/sqlite/migrations/000009_capacity_waits.sql.
-- queue_timeout_ms: how long a step may wait for capacity (queued and ready, or at a provider's
--   gate inside its attempt) before it fails with QUEUE_TIMEOUT; NULL: no bound. The run's is the
--   default of the steps added to it.
-- waiting_for: what a running step's attempt waits for at a provider's gate, as its worker last
--   said (attempt, provider, limit, used, cap, retryAt, since); NULL when it waits for nothing.
-- Nullable columns without a default: adding them rewrites no row.
ALTER TABLE steps ADD COLUMN queue_timeout_ms bigint;
ALTER TABLE runs ADD COLUMN queue_timeout_ms bigint;
ALTER TABLE steps ADD COLUMN waiting_for json;
-- The reaper's look-up of queued steps past their queue timeout: only bounded queued steps are in it.
CREATE INDEX steps_queue_expiry ON steps ((ready_at + queue_timeout_ms)) WHERE status = 'queued' AND queue_timeout_ms IS NOT NULL;
-- The running steps that wait for capacity (doctor, /metrics): only those are in it.
CREATE INDEX steps_waiting ON steps (run_id) WHERE status = 'running' AND waiting_for IS NOT NULL;
