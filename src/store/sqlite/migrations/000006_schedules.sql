-- Schedules (docs/schedules.md). Append-only: never edit a released migration.
-- request: the POST body as given (plan, labels, maxSteps), shown back by GET /schedules.
-- run: that request as validated when the schedule was created (steps with their timeouts, retries
--   and dependents); every tick inserts it, so any process can fire a tick without the tools.
-- next_tick_at: the tick to fire next (NULL: the expression matches no later time). A tick is fired
--   by the transaction that moves next_tick_at on from the value it read (a compare-and-set) and
--   inserts the run, whose idempotency key is 'schedule:<id>:<tick>': one run per (schedule, tick)
--   however many processes fire it.
-- last_tick_at, last_run_id, runs_created: what the last fired tick did, for GET /schedules.
CREATE TABLE schedules (
  id           TEXT PRIMARY KEY,
  cron         TEXT NOT NULL,
  timezone     TEXT NOT NULL,
  request      TEXT NOT NULL,
  run          TEXT NOT NULL,
  labels       TEXT NOT NULL DEFAULT '{}',
  created_at   INTEGER NOT NULL,
  next_tick_at INTEGER,
  last_tick_at INTEGER,
  last_run_id  TEXT,
  runs_created INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX schedules_due ON schedules (next_tick_at) WHERE next_tick_at IS NOT NULL;
