//! A client configured from environment variables.

use std::env::VarError;

use crate::Client;

const URL: &str = "LATCHKEY_URL";
const TOKEN: &str = "LATCHKEY_TOKEN";
const CLOUDFLARE_TOKEN: &str = "CLOUDFLARE_API_TOKEN";

/// Why [`Client::from_env`] could not make a client. Its message names the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// Neither `LATCHKEY_TOKEN` nor `CLOUDFLARE_API_TOKEN` is set (or both are empty).
    #[error("{TOKEN} is not set (nor {CLOUDFLARE_TOKEN})")]
    MissingToken,
    /// `LATCHKEY_TOKEN` is set but `LATCHKEY_URL` is not: a latchkey token is not sent to
    /// Cloudflare's API, the default base URL.
    #[error("{URL} is not set (needed with {TOKEN})")]
    MissingUrl,
    /// The variable is set to something that is not Unicode.
    #[error("{variable} is not valid Unicode")]
    NotUnicode {
        /// Its name.
        variable: &'static str,
    },
}

impl EnvError {
    /// The variable to set or fix.
    pub fn variable(&self) -> &'static str {
        match self {
            EnvError::MissingToken => TOKEN,
            EnvError::MissingUrl => URL,
            EnvError::NotUnicode { variable } => variable,
        }
    }
}

impl Client {
    /// A client configured by the environment:
    ///
    /// * `LATCHKEY_URL`: the base URL, such as `http://127.0.0.1:8787/client/v4`;
    /// * `LATCHKEY_TOKEN`: the token, or else `CLOUDFLARE_API_TOKEN`.
    ///
    /// Without `LATCHKEY_URL` the base URL is Cloudflare's, but only with
    /// `CLOUDFLARE_API_TOKEN`: a `LATCHKEY_TOKEN` without `LATCHKEY_URL` is an error rather
    /// than a secret sent to a third party. Empty variables count as unset.
    ///
    /// ```no_run
    /// use latchkey_client::Client;
    ///
    /// let client = Client::from_env().unwrap_or_else(|e| panic!("{e}"));
    /// # let _ = client;
    /// ```
    pub fn from_env() -> Result<Client, EnvError> {
        Client::from_lookup(std::env::var)
    }

    fn from_lookup(
        lookup: impl Fn(&'static str) -> Result<String, VarError>,
    ) -> Result<Client, EnvError> {
        let read = |variable: &'static str| match lookup(variable) {
            Ok(value) if !value.is_empty() => Ok(Some(value)),
            Ok(_) | Err(VarError::NotPresent) => Ok(None),
            Err(VarError::NotUnicode(_)) => Err(EnvError::NotUnicode { variable }),
        };
        let url = read(URL)?;
        let client = match (read(TOKEN)?, url.is_some()) {
            (Some(_), false) => return Err(EnvError::MissingUrl),
            (Some(token), true) => Client::new(token),
            (None, _) => Client::new(read(CLOUDFLARE_TOKEN)?.ok_or(EnvError::MissingToken)?),
        };
        Ok(match url {
            Some(url) => client.with_base_url(url),
            None => client,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CLOUDFLARE_BASE_URL;

    fn from(vars: &[(&str, &str)]) -> Result<Client, EnvError> {
        Client::from_lookup(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_string())
                .ok_or(VarError::NotPresent)
        })
    }

    #[test]
    fn reads_url_and_token() {
        let client = from(&[
            (URL, "http://h/client/v4/"),
            (TOKEN, "lk"),
            (CLOUDFLARE_TOKEN, "cf"),
        ])
        .unwrap();
        assert_eq!(
            (client.base_url(), client.token.as_str()),
            ("http://h/client/v4", "lk")
        );
    }

    #[test]
    fn falls_back_to_the_cloudflare_token() {
        let client = from(&[
            (URL, "http://h/client/v4"),
            (TOKEN, ""),
            (CLOUDFLARE_TOKEN, "cf"),
        ])
        .unwrap();
        assert_eq!(
            (client.base_url(), client.token.as_str()),
            ("http://h/client/v4", "cf")
        );
        let client = from(&[(CLOUDFLARE_TOKEN, "cf")]).unwrap();
        assert_eq!(client.base_url(), CLOUDFLARE_BASE_URL);
    }

    #[test]
    fn names_what_is_missing_without_showing_the_token() {
        let error = from(&[(URL, "http://h/client/v4")]).unwrap_err();
        assert_eq!(
            (error.clone(), error.variable()),
            (EnvError::MissingToken, TOKEN)
        );
        assert!(error.to_string().contains(TOKEN) && error.to_string().contains(CLOUDFLARE_TOKEN));
        let error = from(&[(TOKEN, "lk_secret")]).unwrap_err();
        assert_eq!(
            (error.clone(), error.variable()),
            (EnvError::MissingUrl, URL)
        );
        assert!(!error.to_string().contains("lk_secret"));
    }
}
