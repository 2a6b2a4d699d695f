-- Provider limits shared by every worker (docs/flow-control.md#provider-limits). Append-only.
-- Mirrors src/store/sqlite/migrations/000008_provider_limits.sql: provider_limits holds the pause
-- of a provider and is the row slot claims lock (an upsert) to take turns; provider_slots the
-- calls granted, their tokens and the concurrency lease of those in flight.
CREATE TABLE provider_limits (
  name         text PRIMARY KEY,
  paused_until bigint NOT NULL DEFAULT 0
);
CREATE TABLE provider_slots (
  id     text PRIMARY KEY,
  name   text NOT NULL,
  at     bigint NOT NULL,
  tokens integer NOT NULL,
  until  bigint
);
CREATE INDEX provider_slots_name ON provider_slots (name, at);
