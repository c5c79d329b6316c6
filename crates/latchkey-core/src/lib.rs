//! latchkey's domain, free of any I/O: identifiers, the secret format and its hashing,
//! tokens and their policies, the built-in permission-group catalogue, and the evaluator
//! that answers "may this token do X on resource Y from this address, now?".
//!
//! Nothing here knows about HTTP or databases; the store and the server build on it.

pub mod audit;
pub mod catalogue;
pub mod clock;
pub mod condition;
pub mod delegation;
pub mod evaluator;
pub mod id;
pub mod policy;
pub mod resource;
pub mod secret;
pub mod token;

pub use audit::{AuditAction, AuditEntry, AuditEvent, ChainBreak};
pub use catalogue::{Catalogue, CatalogueError, PermissionGroup, Scope};
pub use clock::{Clock, ManualClock, SystemClock};
pub use condition::{Condition, IpCondition, Wider};
pub use evaluator::{evaluate, evaluate_policies, Decision, Reason, Request};
pub use id::Id;
pub use policy::{Effect, GrantedGroup, Policy, ResourceValue, Resources};
pub use resource::{ResourceId, ResourceKey, ResourceKind};
pub use secret::{Secret, SecretHash, SecretKind};
pub use token::{Exposure, Owner, Reporter, Status, Token, Unusable};
