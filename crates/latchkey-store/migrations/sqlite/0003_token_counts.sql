-- How many tokens each owner has, kept by triggers, so that the quota check on create is
-- one lookup instead of a count over the owner's tokens (which grew with every create and
-- ran on the single writer).
CREATE TABLE token_counts (
    owner_kind  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    n           INTEGER NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
) WITHOUT ROWID;

INSERT INTO token_counts (owner_kind, owner_id, n)
    SELECT owner_kind, owner_id, COUNT(*) FROM tokens GROUP BY owner_kind, owner_id;

CREATE TRIGGER tokens_counted_on_insert AFTER INSERT ON tokens BEGIN
    INSERT INTO token_counts (owner_kind, owner_id, n) VALUES (NEW.owner_kind, NEW.owner_id, 1)
        ON CONFLICT (owner_kind, owner_id) DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER tokens_counted_on_delete AFTER DELETE ON tokens BEGIN
    UPDATE token_counts SET n = n - 1
        WHERE owner_kind = OLD.owner_kind AND owner_id = OLD.owner_id;
END;
