-- runwarden schema v2 (PostgreSQL): each vector records the run that stored it, so pruning a run
-- removes the vectors its `embed` steps stored. Rows from before this migration keep run_id NULL:
-- they belong to no run and are never pruned.
ALTER TABLE vectors ADD COLUMN run_id text;
CREATE INDEX vectors_run ON vectors (run_id) WHERE run_id IS NOT NULL;
-- Rows deleted from a collection so far. A reader's cached copy is current when both `rows` and
-- `deleted` are what it saw (src/store/postgres/vectors.ts): a delete followed by as many inserts
-- leaves `rows` unchanged, `deleted` not.
ALTER TABLE vector_collections ADD COLUMN deleted bigint NOT NULL DEFAULT 0;
