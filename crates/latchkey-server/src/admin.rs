//! Admin tokens: the first one on an empty database, `latchkey bootstrap`, and
//! `latchkey recover` (a new admin token for an existing user who is locked out).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
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

/// The policies of an admin token: "API Tokens Write" on its user and "Account API Tokens
/// Write" on each of the user's accounts.
fn admin_policies(user: Id, accounts: impl IntoIterator<Item = Id>) -> Vec<Policy> {
    let mut policies = vec![allow(
        API_TOKENS_WRITE,
        ResourceKey::specific(ResourceKind::User, user.to_string()),
    )];
    policies.extend(accounts.into_iter().map(|account| {
        allow(
            ACCOUNT_API_TOKENS_WRITE,
            ResourceKey::specific(ResourceKind::Account, account.to_string()),
        )
    }));
    policies
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
    token.policies = admin_policies(user.id, [account.id]);
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

/// Name of the file `latchkey recover` writes by default, in the working directory.
pub const RECOVERY_TOKEN_FILE: &str = "latchkey-recovery-token";

/// How long a recovery token lives: long enough to sign in and repair, short enough that a
/// forgotten one does not linger.
pub const RECOVERY_LIFETIME: time::Duration = time::Duration::days(1);

/// What `recover` made. The secret is in the file, not here.
#[derive(Debug)]
pub struct Recovered {
    /// The user the token belongs to.
    pub user_id: Id,
    /// The new token.
    pub token_id: Id,
    /// The accounts it may manage tokens of.
    pub account_ids: Vec<Id>,
    /// When it stops working.
    pub expires_on: OffsetDateTime,
}

/// `latchkey recover`: for the existing user with `email`, a new admin token (see
/// [`admin_policies`], over every account the user is a member of) that expires after
/// [`RECOVERY_LIFETIME`], with its secret in a new file at `path` (see
/// [`commit_with_secret_file`]) and an audit entry saying it was an operator's recovery. The
/// owner's token quota does not apply: a user at its quota must still be able to get back in.
pub async fn recover(
    store: &dyn Store,
    email: &str,
    path: &Path,
    now: OffsetDateTime,
) -> anyhow::Result<Recovered> {
    let user = store.user_by_email(email).await?.with_context(|| {
        format!("no user has the email {email}; `latchkey users list` shows who exists")
    })?;
    let accounts: Vec<Id> = store
        .accounts_of(user.id)
        .await?
        .into_iter()
        .map(|account| account.id)
        .collect();
    let mut token = Token::new(Owner::User(user.id), "latchkey recovery", now);
    token.policies = admin_policies(user.id, accounts.iter().copied());
    token.expires_on = Some(now + RECOVERY_LIFETIME);
    let secret = Secret::generate(token.owner.secret_kind());
    let mut event = AuditEvent::new(AuditAction::TokenCreate, now);
    event.owner = Some(token.owner);
    event.target = Some(token.id);
    event.details = serde_json::json!({"name": token.name, "via": "operator recovery"}).to_string();
    commit_with_secret_file(
        path,
        "--output",
        &secret,
        store.insert_token(&token, &secret.hash(), u64::MAX, &event),
    )
    .await?;
    Ok(Recovered {
        user_id: user.id,
        token_id: token.id,
        account_ids: accounts,
        expires_on: now + RECOVERY_LIFETIME,
    })
}

/// Fails, naming `path` and how to choose another file (`flag`), if something is at `path`.
pub fn refuse_existing(path: &Path, flag: &str) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok() {
        anyhow::bail!(
            "{} already exists (another database's token?); latchkey never overwrites a token \
             file: move it away, or choose another file with {flag}",
            path.display()
        );
    }
    Ok(())
}

/// Commits a new token and leaves its secret in a new file at `path`, so that a committed
/// secret is never lost and no existing file is ever replaced: the secret is first written
/// (0600, synced) to a pending file of an unpredictable name beside `path`, then `commit`
/// runs, and only after it succeeds is the pending file linked to `path` (a hard link, which
/// fails rather than replace a file that appeared meanwhile). If `commit` fails, the pending
/// file is removed and the store's error returned (as an [`anyhow::Error`] holding the
/// [`StoreError`]). `flag` is the option that names another file, for the message when
/// `path` exists.
pub async fn commit_with_secret_file(
    path: &Path,
    flag: &str,
    secret: &Secret,
    commit: impl std::future::Future<Output = Result<(), StoreError>>,
) -> anyhow::Result<()> {
    refuse_existing(path, flag)?;
    let mut pending = path.as_os_str().to_owned();
    pending.push(format!(".{}.pending", Id::random()));
    let pending = PathBuf::from(pending);
    write_secret_file(&pending, secret)
        .with_context(|| format!("writing the token's secret to {}", pending.display()))?;
    if let Err(e) = commit.await {
        std::fs::remove_file(&pending).ok();
        return Err(e.into());
    }
    std::fs::hard_link(&pending, path).with_context(|| {
        format!(
            "the token is committed and its secret is in {}, but it could not be moved to {}",
            pending.display(),
            path.display()
        )
    })?;
    std::fs::remove_file(&pending).ok();
    Ok(())
}
