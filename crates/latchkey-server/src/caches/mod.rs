//! What `serve` keeps in memory in front of the store: the token cache, the membership cache,
//! and the last-use times waiting to be written in a batch.

pub mod last_used;
pub mod memberships;
pub mod tokens;
