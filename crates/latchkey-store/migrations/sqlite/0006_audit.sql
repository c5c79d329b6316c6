-- The audit log: one row per token lifecycle event, hash-chained (latchkey_core::audit).
-- audit_head holds the last entry's seq and hash; every append updates it in the same
-- transaction as the write it records, so appends are serialized and the chain has no gaps.
CREATE TABLE audit_log (
    seq          INTEGER PRIMARY KEY,
    id           TEXT NOT NULL UNIQUE,
    at           INTEGER NOT NULL,
    action       TEXT NOT NULL,
    actor_token  TEXT,
    owner_kind   TEXT,
    owner_id     TEXT,
    target       TEXT,
    client_ip    TEXT,
    details      TEXT NOT NULL,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL
);
CREATE INDEX audit_log_by_owner ON audit_log (owner_kind, owner_id, seq);

CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  BLOB NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, zeroblob(32));
