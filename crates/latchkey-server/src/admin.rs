//! Admin tokens: the first one on an empty database, and `latchkey bootstrap`.

use std::io::Write;
use std::path::{Path, PathBuf};

use latchkey_core::catalogue::{ACCOUNT_API_TOKENS_WRITE, API_TOKENS_WRITE};
use latchkey_core::{
    AuditAction, AuditEvent, Id, Owner, Policy, ResourceKey, ResourceKind, Secret, Token,
};
use latchkey_store::{Account, NewAdmin, Store, StoreError, User};
use time::OffsetDateTime;

/// Name of the admin-token file written beside the SQLite database.
pub const ADMIN_TOKEN_FILE: &str = "latchkey-admin-token";

/// What `create_admin` made. The secret is shown to the operator once.
#[derive(Debug)]
pub struct CreatedAdmin {
    /// The new user.
    pub user_id: Id,
    /// The new account.
    pub account_id: Id,
    /// The admin token.
    pub token_id: Id,
    /// Its secret.
    pub secret: Secret,
}

fn allow(group: &str, key: ResourceKey) -> Policy {
    Policy::allow_one(group.parse().expect("built-in id"), key)
}

/// Prepares a user, an account, a membership and a user token holding "API Tokens Write"
/// on the user and "Account API Tokens Write" on the account.
pub fn new_admin(email: &str, account_name: &str, now: OffsetDateTime) -> (NewAdmin, CreatedAdmin) {
    let user = User {
        id: Id::random(),
        email: email.to_owned(),
        created_on: now,
    };
    let account = Account {
        id: Id::random(),
        name: account_name.to_owned(),
        created_on: now,
    };
    let mut token = Token::new(Owner::User(user.id), "latchkey admin", now);
    token.policies = vec![
        allow(
            API_TOKENS_WRITE,
            ResourceKey::specific(ResourceKind::User, user.id.to_string()),
        ),
        allow(
            ACCOUNT_API_TOKENS_WRITE,
            ResourceKey::specific(ResourceKind::Account, account.id.to_string()),
        ),
    ];
    let secret = Secret::generate(token.owner.secret_kind());
    let created = CreatedAdmin {
        user_id: user.id,
        account_id: account.id,
        token_id: token.id,
        secret: secret.clone(),
    };
    let admin = NewAdmin {
        user,
        account,
        token,
        hash: secret.hash(),
    };
    (admin, created)
}

/// The audit entry of an admin's creation: a token created from the command line.
pub fn audit_event(admin: &NewAdmin) -> AuditEvent {
    let mut event = AuditEvent::new(AuditAction::TokenCreate, admin.token.issued_on);
    event.owner = Some(admin.token.owner);
    event.target = Some(admin.token.id);
    event.details = serde_json::json!({"name": admin.token.name, "via": "bootstrap"}).to_string();
    event
}

/// Creates an admin (see [`new_admin`]) in one transaction.
pub async fn create_admin(
    store: &dyn Store,
    email: &str,
    account_name: &str,
    now: OffsetDateTime,
) -> Result<CreatedAdmin, StoreError> {
    let (admin, created) = new_admin(email, account_name, now);
    store.create_admin(&admin, &audit_event(&admin)).await?;
    Ok(created)
}

/// Where the first admin token goes by default: beside the SQLite file, or in the working
/// directory for other databases.
pub fn default_token_file(database_url: &str) -> PathBuf {
    latchkey_store::sqlite_file(database_url)
        .and_then(|db| db.parent().map(|dir| dir.join(ADMIN_TOKEN_FILE)))
        .unwrap_or_else(|| PathBuf::from(ADMIN_TOKEN_FILE))
}

/// Writes `secret` to a new file at `path`, readable by its owner only, and syncs it. The
/// file must not exist: it is created exclusively (`O_CREAT | O_EXCL`, which also refuses a
/// symbolic link planted at `path`) and opened with `O_NOFOLLOW`, so a secret never lands in
/// a file, or behind a link, that someone else prepared.
pub fn write_secret_file(path: &Path, secret: &Secret) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    writeln!(file, "{}", secret.expose())?;
    file.sync_all()
}
