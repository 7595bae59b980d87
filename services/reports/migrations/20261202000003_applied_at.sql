-- When each step reached the read model: its lag behind the step itself is how stale the figures are.
ALTER TABLE steps ADD COLUMN applied_at TIMESTAMPTZ NOT NULL DEFAULT now();
