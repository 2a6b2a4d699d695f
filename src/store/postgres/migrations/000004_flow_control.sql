-- Flow control (docs/flow-control.md). Append-only: never edit a released migration.
-- Mirrors src/store/sqlite/migrations/000004_flow_control.sql.
-- priority: claims take higher first; ready_at - priority * 1000 is the claim order (src/domain/flow.ts).
-- concurrency_key / concurrency_limit: at most that many steps with the key run at once; a claim
-- takes a transaction-scoped advisory lock per key and counts the key's running steps
-- (steps_running_key) before it takes more (src/store/postgres/claim.ts).
-- A column with a constant default rewrites no row.
ALTER TABLE steps ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE steps ADD COLUMN concurrency_key text;
ALTER TABLE steps ADD COLUMN concurrency_limit integer;
ALTER TABLE runs ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN concurrency_key text;
ALTER TABLE runs ADD COLUMN concurrency_limit integer;
-- Ties in claim order go by run and plan order (run ids are time-ordered).
CREATE INDEX steps_claim_rank ON steps ((ready_at - priority * 1000), run_id, idx) WHERE status = 'queued';
CREATE INDEX steps_running_key ON steps (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
-- The claim's first statement looks for keys among queued steps without reading the unkeyed ones.
CREATE INDEX steps_queued_key ON steps (concurrency_key) WHERE status = 'queued' AND concurrency_key IS NOT NULL;
