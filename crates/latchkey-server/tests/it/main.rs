//! Integration tests of the latchkey server: the real router in-process (every operation
//! and every error row), a real listener, the `latchkey` binary, and several nodes on one
//! PostgreSQL.

mod accounts;
mod arbitrary_input;
mod audit;
mod auth;
mod authorize;
mod binary;
mod cache;
mod connections;
mod crash;
mod dashboard;
mod docs;
mod identity;
mod kit;
mod leaks;
mod listener;
mod lists;
mod nodes;
mod observability;
mod openapi;
mod permission_groups;
mod process;
mod rate_limits;
mod remote;
mod secrets;
mod shapes;
mod tokens;
mod transfer;
mod validation;
mod verify;
