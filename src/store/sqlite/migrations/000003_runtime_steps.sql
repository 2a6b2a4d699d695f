-- Steps added at runtime (docs/dynamic-runs.md). Append-only: never edit a released migration.
-- added_by: the step whose tool added this one (NULL for a step of the plan).
-- outputs_from: the added step whose outputs this step takes once it ends (the step waits, pending).
-- max_steps: the most steps the run may reach by adding steps (NULL: the engine's default, 1,000).
ALTER TABLE steps ADD COLUMN added_by TEXT;
ALTER TABLE steps ADD COLUMN outputs_from TEXT;
ALTER TABLE runs ADD COLUMN max_steps INTEGER;
