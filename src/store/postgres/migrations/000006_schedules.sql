-- Schedules (docs/schedules.md). Append-only: never edit a released migration.
-- Mirrors src/store/sqlite/migrations/000006_schedules.sql.
-- request: the POST body as given (plan, labels, maxSteps), shown back by GET /schedules.
-- run: that request as validated when the schedule was created (steps with their timeouts, retries
--   and dependents); every tick inserts it, so any process can fire a tick without the tools.
-- next_tick_at: the tick to fire next (NULL: the expression matches no later time). A tick is fired
--   by the transaction that moves next_tick_at on from the value it read (a compare-and-set) and
--   inserts the run, whose idempotency key is 'schedule:<id>:<tick>': one run per (schedule, tick)
--   however many processes fire it.
-- last_tick_at, last_run_id, runs_created: what the last fired tick did, for GET /schedules.
CREATE TABLE schedules (
  id           text PRIMARY KEY,
  cron         text NOT NULL,
  timezone     text NOT NULL,
  request      json NOT NULL,
  run          json NOT NULL,
  labels       json NOT NULL DEFAULT '{}',
  created_at   bigint NOT NULL,
  next_tick_at bigint,
  last_tick_at bigint,
  last_run_id  text,
  runs_created bigint NOT NULL DEFAULT 0
);
CREATE INDEX schedules_due ON schedules (next_tick_at) WHERE next_tick_at IS NOT NULL;
