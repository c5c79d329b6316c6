//! Email to people: today, telling a token's owner that its secret was reported leaked
//! ([`crate::leaks`]). Sent through an SMTP server (`--smtp-url`, `--smtp-from`) with lettre:
//! `smtps://host[:port]` is TLS from the first byte, `smtp://host[:port]?tls=required`
//! STARTTLS, plain `smtp://host[:port]` neither (for a relay on this machine). The user name
//! may be in the URL; the password never is (a command line is visible to every user of the
//! machine): it comes from `LATCHKEY_SMTP_PASSWORD` or the file `--smtp-password-file`.
//!
//! A message is sent in the background, tried three times (at once, after 1 s, after 5 s); a
//! failure is logged and counted, and never undoes what caused the message.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// How to reach the SMTP server.
#[derive(Clone, Default)]
pub struct SmtpSettings {
    /// `smtp://` or `smtps://` URL, without a password.
    pub url: Option<String>,
    /// The sender, e.g. `latchkey <latchkey@example.com>`.
    pub from: Option<String>,
    /// A file holding the password (else `LATCHKEY_SMTP_PASSWORD`).
    pub password_file: Option<PathBuf>,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("url", &self.url)
            .field("from", &self.from)
            .field("password_file", &self.password_file)
            .finish()
    }
}

/// Delays before the second and third attempt.
const RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];

/// Sends messages through one SMTP server.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `settings`, or `None` when no SMTP server is set. Fails, saying which
    /// setting is wrong, on a bad URL or sender, a password in the URL, or an unreadable
    /// password file.
    pub fn new(settings: &SmtpSettings) -> anyhow::Result<Option<Mailer>> {
        let (url, from) = match (&settings.url, &settings.from) {
            (None, None) => return Ok(None),
            (Some(url), Some(from)) => (url, from),
            _ => bail!("--smtp-url and --smtp-from go together: give both, or neither"),
        };
        let parsed = url::Url::parse(url).context("--smtp-url is not a URL")?;
        if !matches!(parsed.scheme(), "smtp" | "smtps") {
            bail!("--smtp-url must start with smtp:// or smtps://");
        }
        if parsed.password().is_some() {
            bail!(
                "--smtp-url holds a password, which every user of the machine could read; \
                 put it in LATCHKEY_SMTP_PASSWORD or in a file named by --smtp-password-file"
            );
        }
        let from: Mailbox = from
            .parse()
            .with_context(|| format!("--smtp-from {from:?} is not an email address"))?;
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("--smtp-url is not an SMTP URL lettre understands")?
            .timeout(Some(Duration::from_secs(10)));
        let password = match &settings.password_file {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading --smtp-password-file {}", path.display()))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => std::env::var("LATCHKEY_SMTP_PASSWORD")
                .ok()
                .filter(|p| !p.is_empty()),
        };
        if let Some(password) = password {
            let user = percent_encoding::percent_decode_str(parsed.username())
                .decode_utf8_lossy()
                .into_owned();
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Some(Mailer {
            transport: builder.build(),
            from,
        }))
    }

    /// Sends `body` to `to` in the background (see the module documentation).
    pub fn send_later(
        self: &std::sync::Arc<Self>,
        to: Vec<Mailbox>,
        subject: String,
        body: String,
    ) {
        if to.is_empty() {
            return;
        }
        let mailer = std::sync::Arc::clone(self);
        tokio::spawn(async move { mailer.send(to, &subject, body).await });
    }

    async fn send(&self, to: Vec<Mailbox>, subject: &str, body: String) {
        let mut message = Message::builder().from(self.from.clone()).subject(subject);
        for mailbox in &to {
            message = message.to(mailbox.clone());
        }
        let message = match message.body(body) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "an email could not be built");
                crate::metrics::email("failed");
                return;
            }
        };
        let mut delays = RETRIES.iter();
        loop {
            match self.transport.send(message.clone()).await {
                Ok(_) => {
                    crate::metrics::email("sent");
                    return;
                }
                Err(error) => match delays.next() {
                    Some(delay) => {
                        tracing::info!(%error, "an email was not accepted; trying again");
                        tokio::time::sleep(*delay).await;
                    }
                    None => {
                        tracing::warn!(%error, recipients = to.len(), "an email could not be sent");
                        crate::metrics::email("failed");
                        return;
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(url: &str, from: &str) -> SmtpSettings {
        SmtpSettings {
            url: Some(url.into()),
            from: Some(from.into()),
            password_file: None,
        }
    }

    #[test]
    fn settings_are_checked_and_say_what_is_wrong() {
        assert!(Mailer::new(&SmtpSettings::default()).unwrap().is_none());
        let only_url = SmtpSettings {
            url: Some("smtp://localhost".into()),
            ..SmtpSettings::default()
        };
        assert!(Mailer::new(&only_url)
            .unwrap_err()
            .to_string()
            .contains("go together"));
        let password = Mailer::new(&settings("smtp://me:hunter2@localhost", "a@example.com"));
        let message = password.unwrap_err().to_string();
        assert!(message.contains("LATCHKEY_SMTP_PASSWORD") && !message.contains("hunter2"));
        let scheme = Mailer::new(&settings("http://localhost", "a@example.com"));
        assert!(scheme.unwrap_err().to_string().contains("smtp://"));
        let from = Mailer::new(&settings("smtp://localhost", "not an address"));
        assert!(from.unwrap_err().to_string().contains("--smtp-from"));
    }

    #[tokio::test]
    async fn good_settings_make_a_mailer() {
        for url in [
            "smtp://localhost:2525",
            "smtps://mail.example.com",
            "smtp://me@mail.example.com:587?tls=required",
        ] {
            assert!(
                Mailer::new(&settings(url, "latchkey <latchkey@example.com>"))
                    .unwrap()
                    .is_some(),
                "{url}"
            );
        }
    }
}
