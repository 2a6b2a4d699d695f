-- Flow control (docs/flow-control.md). Append-only: never edit a released migration.
-- priority: claims take higher first; ready_at - priority * 1000 is the claim order (src/domain/flow.ts).
-- concurrency_key / concurrency_limit: at most that many steps with the key run at once; a claim
-- counts the key's running steps (steps_running_key) before it takes more.
-- The run's fields are the default of its steps and of the steps added to it.
ALTER TABLE steps ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN concurrency_key TEXT;
ALTER TABLE steps ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE runs ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN concurrency_key TEXT;
ALTER TABLE runs ADD COLUMN concurrency_limit INTEGER;
CREATE INDEX steps_claim_rank ON steps ((ready_at - priority * 1000)) WHERE status = 'queued';
CREATE INDEX steps_running_key ON steps (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
