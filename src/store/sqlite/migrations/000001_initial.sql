-- runwarden schema v1 (SQLite). Append-only: never edit a released migration, add the next number.
-- Times are INTEGER epoch milliseconds. JSON columns are TEXT. State lists mirror src/domain/states.ts.

CREATE TABLE runs (
  id               TEXT PRIMARY KEY,
  status           TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
  goal             TEXT,
  labels           TEXT NOT NULL DEFAULT '{}',
  idempotency_key  TEXT UNIQUE,
  created_at       INTEGER NOT NULL,
  started_at       INTEGER,
  finished_at      INTEGER,
  steps_total      INTEGER NOT NULL,
  steps_done       INTEGER NOT NULL DEFAULT 0,
  steps_failed     INTEGER NOT NULL DEFAULT 0,
  last_seq         INTEGER NOT NULL DEFAULT 0,
  input_tokens     INTEGER NOT NULL DEFAULT 0,
  output_tokens    INTEGER NOT NULL DEFAULT 0,
  llm_calls        INTEGER NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  error            TEXT
);
-- The submitted plan lives apart from the run row: the row is updated several times per step
-- (counters, seq), and SQLite rewrites the whole row on every UPDATE.
CREATE TABLE run_plans (
  run_id TEXT PRIMARY KEY REFERENCES runs (id),
  plan   TEXT NOT NULL
);

CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC);

CREATE TABLE steps (
  run_id           TEXT NOT NULL REFERENCES runs (id),
  name             TEXT NOT NULL,
  idx              INTEGER NOT NULL,
  tool             TEXT NOT NULL,
  status           TEXT NOT NULL CHECK (status IN ('pending','queued','running','succeeded','failed','timed_out','cancelled','skipped')),
  depends_on       TEXT NOT NULL,
  dependents       TEXT NOT NULL,
  pending_deps     INTEGER NOT NULL,
  inputs           TEXT NOT NULL,
  resolved_inputs  TEXT,
  outputs          TEXT,
  error            TEXT,
  timeout_ms       INTEGER NOT NULL,
  retries          TEXT NOT NULL,
  attempts         INTEGER NOT NULL DEFAULT 0,
  lost_attempts    INTEGER NOT NULL DEFAULT 0,
  ready_at         INTEGER,
  started_at       INTEGER,
  finished_at      INTEGER,
  worker_id        TEXT,
  lease_token      TEXT,
  lease_expires_at INTEGER,
  deadline_at      INTEGER,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (run_id, name)
);
-- The claim scans only queued steps in ready order; the reaper only running ones by lease expiry.
CREATE INDEX steps_ready ON steps (ready_at) WHERE status = 'queued';
CREATE INDEX steps_lease ON steps (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX steps_token ON steps (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE attempts (
  run_id      TEXT NOT NULL,
  step_name   TEXT NOT NULL,
  attempt     INTEGER NOT NULL,
  status      TEXT NOT NULL CHECK (status IN ('running','succeeded','failed','timed_out','lost','cancelled')),
  worker_id   TEXT NOT NULL,
  started_at  INTEGER NOT NULL,
  finished_at INTEGER,
  deadline_at INTEGER NOT NULL,
  error       TEXT,
  hang_report TEXT,
  PRIMARY KEY (run_id, step_name, attempt)
);

CREATE TABLE events (
  run_id    TEXT NOT NULL,
  seq       INTEGER NOT NULL,
  ts        INTEGER NOT NULL,
  type      TEXT NOT NULL,
  step_name TEXT,
  attempt   INTEGER,
  data      TEXT NOT NULL,
  PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

CREATE TABLE artifacts (
  id         TEXT PRIMARY KEY,
  run_id     TEXT NOT NULL,
  step_name  TEXT NOT NULL,
  attempt    INTEGER NOT NULL,
  name       TEXT NOT NULL,
  mime       TEXT NOT NULL,
  size       INTEGER NOT NULL,
  content    BLOB NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, created_at);

CREATE TABLE workers (
  id                TEXT PRIMARY KEY,
  pid               INTEGER NOT NULL,
  host              TEXT NOT NULL,
  state             TEXT NOT NULL,
  started_at        INTEGER NOT NULL,
  last_heartbeat_at INTEGER NOT NULL,
  info              TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE vectors (
  id         INTEGER PRIMARY KEY,
  collection TEXT NOT NULL,
  text       TEXT NOT NULL,
  dims       INTEGER NOT NULL,
  vector     BLOB NOT NULL,
  metadata   TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX vectors_collection ON vectors (collection, id);
