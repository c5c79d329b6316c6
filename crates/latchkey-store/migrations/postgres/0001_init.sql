-- latchkey on PostgreSQL: the same tables as on SQLite. Times are Unix seconds (UTC).
CREATE TABLE users (
    id          TEXT PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE,
    created_on  BIGINT NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_on  BIGINT NOT NULL,
    seq         BIGINT GENERATED ALWAYS AS IDENTITY
);

CREATE TABLE memberships (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_on  BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- seq is the issue order (the stable tie-break of lists); id is the public identifier.
-- secret_hash is SHA-256 of the secret: the secret itself is never stored.
-- revision counts updates and rolls; a change made from an older revision is refused.
CREATE TABLE tokens (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            TEXT NOT NULL UNIQUE,
    owner_kind    TEXT NOT NULL CHECK (owner_kind IN ('user', 'account')),
    owner_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'expired')),
    secret_hash   BYTEA NOT NULL UNIQUE,
    issued_on     BIGINT NOT NULL,
    modified_on   BIGINT NOT NULL,
    last_used_on  BIGINT,
    not_before    BIGINT,
    expires_on    BIGINT,
    policies      TEXT NOT NULL,
    condition     TEXT NOT NULL,
    revision      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_by_owner ON tokens (owner_kind, owner_id, issued_on, seq)
    INCLUDE (status, expires_on);

-- How many tokens each owner has, kept by a trigger. An insert locks its owner's row
-- here until commit, so concurrent creates for one owner (on any node) are counted one
-- after the other and the quota check after the insert is exact.
CREATE TABLE token_counts (
    owner_kind  TEXT NOT NULL,
    owner_id    TEXT NOT NULL,
    n           BIGINT NOT NULL,
    PRIMARY KEY (owner_kind, owner_id)
);

CREATE FUNCTION latchkey_count_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO token_counts (owner_kind, owner_id, n) VALUES (NEW.owner_kind, NEW.owner_id, 1)
            ON CONFLICT (owner_kind, owner_id) DO UPDATE SET n = token_counts.n + 1;
    ELSE
        UPDATE token_counts SET n = n - 1
            WHERE owner_kind = OLD.owner_kind AND owner_id = OLD.owner_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER tokens_counted AFTER INSERT OR DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION latchkey_count_tokens();

-- Cache invalidation for every node: a committed update, roll or delete of a token, or a
-- membership change, is announced on the channel latchkey_changes. (last_used_on updates
-- leave revision alone and announce nothing.)
CREATE FUNCTION latchkey_announce_token() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('latchkey_changes', 't:' || OLD.id);
    RETURN NULL;
END $$;

CREATE TRIGGER tokens_announced_on_update AFTER UPDATE ON tokens
    FOR EACH ROW WHEN (OLD.revision <> NEW.revision OR OLD.secret_hash <> NEW.secret_hash)
    EXECUTE FUNCTION latchkey_announce_token();
CREATE TRIGGER tokens_announced_on_delete AFTER DELETE ON tokens
    FOR EACH ROW EXECUTE FUNCTION latchkey_announce_token();

CREATE FUNCTION latchkey_announce_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('latchkey_changes', 'm:' || OLD.account_id || ':' || OLD.user_id);
    ELSE
        PERFORM pg_notify('latchkey_changes', 'm:' || NEW.account_id || ':' || NEW.user_id);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER memberships_announced AFTER INSERT OR DELETE ON memberships
    FOR EACH ROW EXECUTE FUNCTION latchkey_announce_membership();
