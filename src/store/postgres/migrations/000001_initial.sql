-- runwarden schema v1 (PostgreSQL). Append-only: never edit a released migration, add the next number.
-- Mirrors src/store/sqlite/migrations/000001_initial.sql so that both dialects return identical
-- records: times are bigint epoch milliseconds (no timezone conversions between processes),
-- payloads are `json` (stored as written: key order and numbers come back exactly as the engine
-- wrote them; jsonb would reorder keys and reject \u0000), artifacts and vectors are bytea.
-- State lists mirror src/domain/states.ts.

CREATE TABLE runs (
  id               text PRIMARY KEY,
  status           text NOT NULL CHECK (status IN ('queued','running','succeeded','failed','cancelled')),
  goal             text,
  labels           json NOT NULL DEFAULT '{}',
  idempotency_key  text CONSTRAINT runs_idempotency_key UNIQUE,
  created_at       bigint NOT NULL,
  started_at       bigint,
  finished_at      bigint,
  steps_total      integer NOT NULL,
  steps_done       integer NOT NULL DEFAULT 0,
  steps_failed     integer NOT NULL DEFAULT 0,
  -- The run row is the per-run lock: advanceRun/finishRun reserve seq numbers here and hold the
  -- row lock to commit, so events of one run commit in seq order (see src/store/postgres/tx.ts).
  last_seq         bigint NOT NULL DEFAULT 0,
  input_tokens     bigint NOT NULL DEFAULT 0,
  output_tokens    bigint NOT NULL DEFAULT 0,
  llm_calls        integer NOT NULL DEFAULT 0,
  cancel_requested boolean NOT NULL DEFAULT false,
  error            json
) WITH (fillfactor = 80);
-- fillfactor 80: the run row is updated once per transaction touching the run; free space on the
-- page lets PostgreSQL keep those updates HOT (no index writes).

-- The plan lives apart from the hot, often-updated run row.
CREATE TABLE run_plans (
  run_id text PRIMARY KEY REFERENCES runs (id),
  plan   json NOT NULL
);

CREATE INDEX runs_created ON runs (created_at DESC, id DESC);
CREATE INDEX runs_status ON runs (status, created_at DESC, id DESC);

CREATE TABLE steps (
  run_id           text NOT NULL REFERENCES runs (id),
  name             text NOT NULL,
  idx              integer NOT NULL,
  tool             text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending','queued','running','succeeded','failed','timed_out','cancelled','skipped')),
  depends_on       json NOT NULL,
  dependents       json NOT NULL,
  pending_deps     integer NOT NULL,
  inputs           json NOT NULL,
  resolved_inputs  json,
  outputs          json,
  error            json,
  timeout_ms       bigint NOT NULL,
  retries          json NOT NULL,
  attempts         integer NOT NULL DEFAULT 0,
  lost_attempts    integer NOT NULL DEFAULT 0,
  ready_at         bigint,
  started_at       bigint,
  finished_at      bigint,
  worker_id        text,
  lease_token      text,
  lease_expires_at bigint,
  deadline_at      bigint,
  cancel_requested boolean NOT NULL DEFAULT false,
  PRIMARY KEY (run_id, name)
) WITH (fillfactor = 80);
-- The claim scans only queued steps in ready order; the reaper only running ones by lease expiry.
CREATE INDEX steps_ready ON steps (ready_at) WHERE status = 'queued';
CREATE INDEX steps_lease ON steps (lease_expires_at) WHERE status = 'running';
CREATE UNIQUE INDEX steps_token ON steps (lease_token) WHERE lease_token IS NOT NULL;

CREATE TABLE attempts (
  run_id      text NOT NULL,
  step_name   text NOT NULL,
  attempt     integer NOT NULL,
  status      text NOT NULL CHECK (status IN ('running','succeeded','failed','timed_out','lost','cancelled')),
  worker_id   text NOT NULL,
  started_at  bigint NOT NULL,
  finished_at bigint,
  deadline_at bigint NOT NULL,
  error       json,
  hang_report json,
  PRIMARY KEY (run_id, step_name, attempt)
);

CREATE TABLE events (
  run_id    text NOT NULL,
  seq       bigint NOT NULL,
  ts        bigint NOT NULL,
  type      text NOT NULL,
  step_name text,
  attempt   integer,
  data      json NOT NULL,
  PRIMARY KEY (run_id, seq)
);

CREATE TABLE artifacts (
  id         text PRIMARY KEY,
  run_id     text NOT NULL,
  step_name  text NOT NULL,
  attempt    integer NOT NULL,
  name       text NOT NULL,
  mime       text NOT NULL,
  size       bigint NOT NULL,
  content    bytea NOT NULL,
  created_at bigint NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, created_at);

CREATE TABLE workers (
  id                text PRIMARY KEY,
  pid               integer NOT NULL,
  host              text NOT NULL,
  state             text NOT NULL,
  started_at        bigint NOT NULL,
  last_heartbeat_at bigint NOT NULL,
  info              json NOT NULL DEFAULT '{}'
);

-- Vectors are little-endian float32 bytea, normalised at insert (cosine = dot product); queries
-- are exact, over an in-memory copy of the collection (src/store/postgres/vectors.ts). One row per
-- collection holds its dimensions and row count: writers lock it, so ids within a collection are
-- allocated in commit order, and readers check their copy is current with one primary-key read.
CREATE TABLE vector_collections (
  collection text PRIMARY KEY,
  dims       integer NOT NULL,
  rows       bigint NOT NULL DEFAULT 0
);

CREATE TABLE vectors (
  id         bigserial PRIMARY KEY,
  collection text NOT NULL,
  text       text NOT NULL,
  dims       integer NOT NULL,
  vector     bytea NOT NULL,
  metadata   json,
  created_at text NOT NULL
);
CREATE INDEX vectors_collection ON vectors (collection, id);
