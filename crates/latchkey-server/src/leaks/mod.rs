//! Leak response: a secret found in the open is reported (by GitHub's secret scanning, see
//! [`github`], or by anyone who holds it, through `POST /latchkey/v1/leaks`), and its token
//! is disabled at once and marked exposed.
//!
//! What a report does, for both endpoints ([`report`]): a secret that parses as latchkey's
//! (prefix and checksum) is latchkey's whether or not a token still has it (a rolled or
//! deleted token's old secret is still a true positive); if a token has it, the token is
//! disabled and carries an [`Exposure`] in one transaction with its `token_exposed` audit
//! entry, the local cache forgets it, and on PostgreSQL the other nodes' caches hear of it
//! through the change feed like any other update. An exposed token cannot be re-enabled by an
//! update; a roll issues a new secret, clears the exposure and makes it active again.

pub mod github;

use latchkey_core::{AuditAction, AuditEvent, Exposure, Owner, Reporter, Secret, Status};
use latchkey_store::StoreError;
use lettre::message::Mailbox;
use serde_json::json;

use crate::mail::Mailer;
use crate::state::AppState;

/// Where a report came from and what it says about where the secrets were found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Who reported.
    pub reporter: Reporter,
    /// Where the secret was found, as the reporter says.
    pub source: String,
    /// A link to where it was found.
    pub url: String,
    /// The reporter's address (recorded in the audit entry).
    pub client_ip: std::net::IpAddr,
}

/// What latchkey made of one reported secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Not a latchkey secret (no prefix, or a wrong checksum).
    NotOurs,
    /// A latchkey secret that no token has (any more): nothing to do.
    NoToken,
    /// A latchkey secret whose token this report disabled.
    Revoked,
    /// A latchkey secret whose token was already marked exposed.
    AlreadyExposed,
}

impl Verdict {
    /// Whether the secret is latchkey's (GitHub's `true_positive`).
    pub fn is_ours(self) -> bool {
        self != Verdict::NotOurs
    }
}

/// Emails the people who manage `token` (its user; for an account token, the account's
/// members) that its secret was reported leaked and the token disabled: which token, where it
/// was found and how to roll it. Never the secret.
async fn tell_owner(state: AppState, mailer: std::sync::Arc<Mailer>, token: latchkey_core::Token) {
    let Some(exposure) = &token.exposure else {
        return;
    };
    let people = match token.owner {
        Owner::User(id) => state
            .store
            .user(id)
            .await
            .map(|user| user.into_iter().collect()),
        Owner::Account(id) => state.store.list_members(id).await,
    };
    let owner = match token.owner {
        Owner::User(_) => "your user".to_owned(),
        Owner::Account(id) => match state.store.account(id).await {
            Ok(Some(account)) => format!("the account {} ({id})", account.name),
            _ => format!("the account {id}"),
        },
    };
    let people = match people {
        Ok(people) => people,
        Err(error) => {
            tracing::warn!(%error, token_id = %token.id, "the owner of an exposed token could not be looked up to be told");
            crate::metrics::email("failed");
            return;
        }
    };
    let to: Vec<Mailbox> = people
        .iter()
        .filter_map(|user| user.email.parse().ok())
        .collect();
    let (api, cli) = match token.owner {
        Owner::User(_) => (
            format!("PUT /client/v4/user/tokens/{}/value", token.id),
            format!("latchkey tokens roll {}", token.id),
        ),
        Owner::Account(account) => (
            format!(
                "PUT /client/v4/accounts/{account}/tokens/{}/value",
                token.id
            ),
            format!("latchkey tokens roll {} --account {account}", token.id),
        ),
    };
    let reporter = match exposure.reporter {
        Reporter::Github => "GitHub's secret scanning",
        Reporter::Report => "a leak report to latchkey",
    };
    let when = exposure
        .reported_on
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let subject = format!(
        "latchkey: the token \"{}\" was exposed and is disabled",
        token.name
    );
    let body = format!(
        "The API token \"{name}\" (id {id}) of {owner} was found in the open, and latchkey \
         disabled it at once: its secret no longer works.\n\n\
         Found at: {url}\n\
         Where: {source}\n\
         Reported by: {reporter}, on {when}\n\n\
         To give the token a new secret and make it active again, roll it: in the dashboard \
         (\"Roll now\" on the token), with the command line ({cli}), or with the API ({api}). \
         Then put the new secret wherever the old one was used, and remove the old one from \
         where it was found.\n\n\
         This message never holds a secret.\n",
        name = token.name,
        id = token.id,
        url = if exposure.url.is_empty() {
            "(no link given)"
        } else {
            &exposure.url
        },
        source = if exposure.source.is_empty() {
            "(not said)"
        } else {
            &exposure.source
        },
    );
    mailer.send_later(to, subject, body);
}

/// Handles one reported secret: see the module documentation.
pub async fn report(
    state: &AppState,
    secret: &str,
    report: &Report,
) -> Result<Verdict, StoreError> {
    let Ok((secret, _)) = Secret::parse(secret.trim()) else {
        return Ok(Verdict::NotOurs);
    };
    let hash = secret.hash();
    // A concurrent update can move the token's revision between the read and the write;
    // read it again then (a few times at most: each retry follows someone else's commit).
    for _ in 0..5 {
        let Some(stored) = state.store.token_by_hash(&hash).await? else {
            return Ok(Verdict::NoToken);
        };
        let mut token = stored.token;
        if token.exposure.is_some() {
            return Ok(Verdict::AlreadyExposed);
        }
        let now = state.clock.now();
        token.exposure = Some(Exposure {
            reported_on: now,
            source: report.source.clone(),
            url: report.url.clone(),
            reporter: report.reporter,
        });
        let before = token.status;
        token.status = Status::Disabled;
        token.modified_on = now;
        let mut event = AuditEvent::new(AuditAction::TokenExposed, now);
        event.owner = Some(token.owner);
        event.target = Some(token.id);
        event.client_ip = Some(report.client_ip);
        event.details = json!({
            "name": token.name,
            "status": {"before": before.as_str(), "after": "disabled"},
            "reporter": match report.reporter {
                Reporter::Github => "github",
                Reporter::Report => "report",
            },
            "source": report.source,
            "url": report.url,
        })
        .to_string();
        match state.store.update_token(&token, &event).await {
            Ok(()) => {
                state.cache.forget(token.id);
                crate::metrics::token_exposed();
                if let Some(mailer) = &state.mailer {
                    tokio::spawn(tell_owner(state.clone(), mailer.clone(), token.clone()));
                }
                tracing::warn!(
                    token_id = %token.id,
                    reporter = ?report.reporter,
                    source = %report.source,
                    "leaked secret reported: token disabled and marked exposed"
                );
                return Ok(Verdict::Revoked);
            }
            Err(StoreError::Changed) => continue,
            Err(StoreError::NotFound) => return Ok(Verdict::NoToken),
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Changed)
}
