-- runwarden schema v2 (SQLite): each vector records the run that stored it, so pruning a run
-- removes the vectors its `embed` steps stored. Rows from before this migration get run_id NULL:
-- they belong to no run and are never pruned.
--
-- The table is rebuilt with AUTOINCREMENT: once rows can be deleted, a plain INTEGER PRIMARY KEY
-- would hand a deleted maximum id to the next insert, and a reader's cached copy of a collection
-- (checked against count and max id, src/store/sqlite/vectors.ts) could not tell the new row from
-- the deleted one. With AUTOINCREMENT an id is never used twice.
CREATE TABLE vectors_v2 (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  collection TEXT NOT NULL,
  text       TEXT NOT NULL,
  dims       INTEGER NOT NULL,
  vector     BLOB NOT NULL,
  metadata   TEXT,
  created_at TEXT NOT NULL,
  run_id     TEXT
);
INSERT INTO vectors_v2 (id, collection, text, dims, vector, metadata, created_at)
  SELECT id, collection, text, dims, vector, metadata, created_at FROM vectors;
DROP TABLE vectors;
ALTER TABLE vectors_v2 RENAME TO vectors;
CREATE INDEX vectors_collection ON vectors (collection, id);
CREATE INDEX vectors_run ON vectors (run_id) WHERE run_id IS NOT NULL;
