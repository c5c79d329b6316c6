-- Memberships are changed by the CLI, another process than `serve`. A counter bumped by
-- every membership change lets a running node notice (it polls it) and drop its cached
-- membership answers.
CREATE TABLE change_counts (
    what  TEXT PRIMARY KEY NOT NULL,
    n     INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO change_counts (what, n) VALUES ('memberships', 0);

CREATE TRIGGER memberships_counted_on_insert AFTER INSERT ON memberships BEGIN
    UPDATE change_counts SET n = n + 1 WHERE what = 'memberships';
END;

CREATE TRIGGER memberships_counted_on_delete AFTER DELETE ON memberships BEGIN
    UPDATE change_counts SET n = n + 1 WHERE what = 'memberships';
END;
