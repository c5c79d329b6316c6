-- Set (a JSON object: reported_on, source, url, reporter) when a token's secret was reported
-- leaked; the token is disabled until a roll clears it.
ALTER TABLE tokens ADD COLUMN exposure TEXT;
