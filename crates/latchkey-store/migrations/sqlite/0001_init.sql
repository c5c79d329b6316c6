-- Users, accounts, memberships and tokens. Times are Unix seconds (UTC).
CREATE TABLE users (
    id          TEXT PRIMARY KEY NOT NULL,
    email       TEXT NOT NULL UNIQUE,
    created_on  INTEGER NOT NULL
);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY NOT NULL,
    name        TEXT NOT NULL,
    created_on  INTEGER NOT NULL
);

CREATE TABLE memberships (
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    user_id     TEXT NOT NULL REFERENCES users (id),
    created_on  INTEGER NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
CREATE INDEX memberships_by_user ON memberships (user_id);

-- seq is the issue order (the stable tie-break of lists); id is the public identifier.
-- secret_hash is SHA-256 of the secret: the secret itself is never stored.
CREATE TABLE tokens (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT NOT NULL UNIQUE,
    owner_kind    TEXT NOT NULL CHECK (owner_kind IN ('user', 'account')),
    owner_id      TEXT NOT NULL,
    name          TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled', 'expired')),
    secret_hash   BLOB NOT NULL UNIQUE,
    issued_on     INTEGER NOT NULL,
    modified_on   INTEGER NOT NULL,
    last_used_on  INTEGER,
    not_before    INTEGER,
    expires_on    INTEGER,
    policies      TEXT NOT NULL,
    condition     TEXT NOT NULL
);
CREATE INDEX tokens_by_owner ON tokens (owner_kind, owner_id, issued_on, seq);
