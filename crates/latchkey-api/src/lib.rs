//! The wire types of Cloudflare's API v4 token endpoints: the response envelope, tokens,
//! policies, permission groups, request bodies, and the user and accounts a token acts
//! for. The server and the client both use these, so the two cannot drift apart.
//!
//! Request types are lenient on purpose (strings for resource keys and CIDRs): the server
//! validates them and names the offending field in its error.

pub mod audit;
pub mod authorize;
pub mod envelope;
pub mod identity;
pub mod leaks;
pub mod permission_groups;
pub mod timestamp;
pub mod tokens;

pub use audit::{
    AuditLogAction, AuditLogActor, AuditLogChain, AuditLogEntry, AuditLogOwner, AuditLogResource,
};
pub use authorize::{AuthorizeRequest, AuthorizeResult};
pub use envelope::{Envelope, ErrorDetail, ErrorSource, Message, ResultInfo};
pub use identity::{Account, User};
pub use leaks::{GithubFeedback, GithubMatch, LeakReceipt, LeakReport};
pub use permission_groups::PermissionGroup;
pub use tokens::{
    Condition, CreateTokenRequest, DeletedToken, Effect, Exposure, GroupMeta, GroupRef, IpRanges,
    Policy, ResourceValue, SecretValue, Token, TokenStatus, UpdateTokenRequest, VerifiedToken,
};
