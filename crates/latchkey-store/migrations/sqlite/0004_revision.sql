-- Every update and roll increments revision; a change made from an older revision is
-- refused, so concurrent writers cannot silently overwrite each other.
ALTER TABLE tokens ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
