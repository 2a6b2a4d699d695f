-- Provider limits shared by every worker (docs/flow-control.md#provider-limits). Append-only.
-- provider_limits: one row per provider that was limited or paused; paused_until (epoch ms) is
-- when a 429/529's retry-after lets calls go again. Claims of a slot serialize on this row.
-- provider_slots: the calls granted: when (at), the tokens charged (an estimate, corrected from the
-- answer's usage), and until when a call in flight holds a concurrency slot (NULL once it ended).
CREATE TABLE provider_limits (
  name         TEXT PRIMARY KEY,
  paused_until INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE provider_slots (
  id     TEXT PRIMARY KEY,
  name   TEXT NOT NULL,
  at     INTEGER NOT NULL,
  tokens INTEGER NOT NULL,
  until  INTEGER
);
CREATE INDEX provider_slots_name ON provider_slots (name, at);
