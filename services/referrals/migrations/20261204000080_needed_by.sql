-- The day a search's children need a place by, as the sender gave it (optional).
ALTER TABLE searches ADD COLUMN needed_by DATE;
