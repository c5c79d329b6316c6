-- Lists filter on status and expires_on: carry them in the owner index so that counting
-- and paging an owner's tokens never visits the table.
DROP INDEX tokens_by_owner;
CREATE INDEX tokens_by_owner ON tokens (owner_kind, owner_id, issued_on, seq, status, expires_on);
