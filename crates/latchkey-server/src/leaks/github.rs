//! GitHub's secret scanning partner program: the key list GitHub signs its alerts with, and
//! the check of an alert's signature.
//!
//! GitHub sends `GITHUB-PUBLIC-KEY-IDENTIFIER` and `GITHUB-PUBLIC-KEY-SIGNATURE` (an ECDSA
//! P-256 / SHA-256 signature, base64 DER, over the exact body). The keys come from a list in
//! GitHub's format, `{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`, read
//! from a URL or a file (`--github-scanning-keys`); only current keys are accepted. The list
//! is kept for 24 hours and read again sooner when a key id arrives that it does not hold,
//! at most once a minute (an unknown id cannot make latchkey fetch on every request).

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

// tokio's clock, so that tests can move it.
use tokio::time::Instant;

use base64::Engine;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{DerSignature, VerifyingKey};
use p256::pkcs8::DecodePublicKey;
use serde::Deserialize;

/// GitHub's key list for secret scanning alerts.
pub const GITHUB_KEYS_URL: &str = "https://api.github.com/meta/public_keys/secret_scanning";

/// How long a key list is trusted before it is read again.
const KEEP_FOR: Duration = Duration::from_secs(24 * 3600);
/// The shortest time between two reads of the key list.
const AT_MOST_EVERY: Duration = Duration::from_secs(60);

/// Where the key list is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// An `http://` or `https://` URL (GitHub's is [`GITHUB_KEYS_URL`]).
    Url(String),
    /// A file in the same format.
    File(PathBuf),
}

impl std::str::FromStr for KeySource {
    type Err = std::convert::Infallible;

    /// A URL when it starts with `http://` or `https://`, else a file path.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(
            if text.starts_with("https://") || text.starts_with("http://") {
                KeySource::Url(text.to_owned())
            } else {
                KeySource::File(PathBuf::from(text))
            },
        )
    }
}

impl Default for KeySource {
    fn default() -> Self {
        KeySource::Url(GITHUB_KEYS_URL.to_owned())
    }
}

/// Why an alert was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// A header is missing or not what it should be.
    #[error("{0}")]
    Malformed(String),
    /// No current key of the list has this id.
    #[error("no current GitHub key has the id {0:?}")]
    UnknownKey(String),
    /// The signature does not match the body and key.
    #[error("the signature does not match the body")]
    BadSignature,
    /// The key list could not be read.
    #[error("GitHub's key list could not be read from {source_name}: {reason}")]
    KeysUnavailable {
        /// The URL or file.
        source_name: String,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
struct KeyList {
    public_keys: Vec<ListedKey>,
}

#[derive(Deserialize)]
struct ListedKey {
    key_identifier: String,
    key: String,
    #[serde(default)]
    is_current: bool,
}

#[derive(Default)]
struct Cache {
    keys: HashMap<String, VerifyingKey>,
    read_at: Option<Instant>,
    tried_at: Option<Instant>,
}

/// The key list, read when needed (see the module documentation).
pub struct GithubKeys {
    source: KeySource,
    http: reqwest::Client,
    cache: parking_lot::Mutex<Cache>,
}

impl std::fmt::Debug for GithubKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubKeys")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl GithubKeys {
    /// Keys from `source`, read on first use.
    pub fn new(source: KeySource) -> Self {
        GithubKeys {
            source,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .user_agent(concat!("latchkey/", env!("CARGO_PKG_VERSION")))
                .build()
                .expect("a client with a timeout builds"),
            cache: parking_lot::Mutex::new(Cache::default()),
        }
    }

    /// Checks that `signature` (base64 DER) by key `key_id` signs `body`.
    pub async fn verify(
        &self,
        key_id: &str,
        signature: &str,
        body: &[u8],
    ) -> Result<(), SignatureError> {
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| {
                SignatureError::Malformed("GITHUB-PUBLIC-KEY-SIGNATURE is not base64".to_owned())
            })?;
        let signature = DerSignature::try_from(der.as_slice()).map_err(|_| {
            SignatureError::Malformed(
                "GITHUB-PUBLIC-KEY-SIGNATURE is not a DER-encoded ECDSA signature".to_owned(),
            )
        })?;
        let key = self.key(key_id).await?;
        key.verify(body, &signature)
            .map_err(|_| SignatureError::BadSignature)
    }

    /// The current key `id`: from the list as kept, or from a fresh read when the list is
    /// older than a day or does not hold `id` (at most one read a minute).
    async fn key(&self, id: &str) -> Result<VerifyingKey, SignatureError> {
        let now = Instant::now();
        let read = {
            let mut cache = self.cache.lock();
            let fresh = cache.read_at.is_some_and(|at| now - at < KEEP_FOR);
            if let (true, Some(key)) = (fresh, cache.keys.get(id)) {
                return Ok(*key);
            }
            let may_read = cache.tried_at.is_none_or(|at| now - at >= AT_MOST_EVERY);
            if may_read {
                cache.tried_at = Some(now);
            }
            may_read
        };
        if read {
            match self.read().await {
                Ok(keys) => {
                    let mut cache = self.cache.lock();
                    cache.keys = keys;
                    cache.read_at = Some(Instant::now());
                }
                Err(reason) => {
                    let source_name = match &self.source {
                        KeySource::Url(url) => url.clone(),
                        KeySource::File(path) => path.display().to_string(),
                    };
                    tracing::warn!(source = %source_name, %reason, "GitHub's key list could not be read");
                    // A list read before still serves the ids it holds.
                    if let Some(key) = self.cache.lock().keys.get(id) {
                        return Ok(*key);
                    }
                    return Err(SignatureError::KeysUnavailable {
                        source_name,
                        reason,
                    });
                }
            }
        }
        self.cache
            .lock()
            .keys
            .get(id)
            .copied()
            .ok_or_else(|| SignatureError::UnknownKey(id.to_owned()))
    }

    /// Reads and parses the list: its current keys by id.
    async fn read(&self) -> Result<HashMap<String, VerifyingKey>, String> {
        let bytes = match &self.source {
            KeySource::Url(url) => {
                let response = self
                    .http
                    .get(url)
                    .send()
                    .await
                    .map_err(|e| e.without_url().to_string())?;
                if !response.status().is_success() {
                    return Err(format!("HTTP {}", response.status().as_u16()));
                }
                response.bytes().await.map_err(|e| e.to_string())?.to_vec()
            }
            KeySource::File(path) => tokio::fs::read(path).await.map_err(|e| e.to_string())?,
        };
        parse_key_list(&bytes)
    }
}

/// The current keys of a list in GitHub's format, by id.
pub fn parse_key_list(bytes: &[u8]) -> Result<HashMap<String, VerifyingKey>, String> {
    let list: KeyList = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a key list ({{\"public_keys\": [...]}}): {e}"))?;
    list.public_keys
        .into_iter()
        .filter(|k| k.is_current)
        .map(|k| {
            VerifyingKey::from_public_key_pem(&k.key)
                .map(|key| (k.key_identifier.clone(), key))
                .map_err(|e| {
                    format!(
                        "key {:?} is not a P-256 public key in PEM: {e}",
                        k.key_identifier
                    )
                })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use p256::ecdsa::signature::Signer;
    use p256::ecdsa::SigningKey;
    use p256::pkcs8::{EncodePublicKey, LineEnding};

    /// A new P-256 key.
    pub(crate) fn signing_key() -> SigningKey {
        loop {
            let bytes: [u8; 32] = rand::random();
            if let Ok(key) = SigningKey::from_slice(&bytes) {
                return key;
            }
        }
    }

    /// A key list in GitHub's format: (id, key, is_current).
    pub(crate) fn key_list(keys: &[(&str, &SigningKey, bool)]) -> String {
        let keys: Vec<_> = keys
            .iter()
            .map(|(id, key, current)| {
                serde_json::json!({
                    "key_identifier": id,
                    "key": key.verifying_key().to_public_key_pem(LineEnding::LF).unwrap(),
                    "is_current": current,
                })
            })
            .collect();
        serde_json::json!({ "public_keys": keys }).to_string()
    }

    /// base64 of `key`'s DER signature over `body`.
    pub(crate) fn sign(key: &SigningKey, body: &[u8]) -> String {
        let signature: p256::ecdsa::Signature = key.sign(body);
        base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
    }

    #[tokio::test(start_paused = true)]
    async fn the_list_is_read_again_for_an_unknown_id_at_most_once_a_minute_and_after_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let (one, two) = (signing_key(), signing_key());
        std::fs::write(&path, key_list(&[("one", &one, true)])).unwrap();
        let keys = GithubKeys::new(KeySource::File(path.clone()));
        let body = b"[]";
        keys.verify("one", &sign(&one, body), body).await.unwrap();

        // A new key appears: not read again within the minute, then read.
        std::fs::write(&path, key_list(&[("one", &one, true), ("two", &two, true)])).unwrap();
        let refused = keys.verify("two", &sign(&two, body), body).await;
        assert!(
            matches!(refused, Err(SignatureError::UnknownKey(_))),
            "{refused:?}"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        keys.verify("two", &sign(&two, body), body).await.unwrap();

        // A key that stops being current is still trusted until the list is a day old.
        std::fs::write(
            &path,
            key_list(&[("one", &one, false), ("two", &two, true)]),
        )
        .unwrap();
        keys.verify("one", &sign(&one, body), body).await.unwrap();
        tokio::time::advance(Duration::from_secs(24 * 3600)).await;
        let refused = keys.verify("one", &sign(&one, body), body).await;
        assert!(
            matches!(refused, Err(SignatureError::UnknownKey(_))),
            "{refused:?}"
        );

        // A signature by another key, or over another body, does not verify.
        let wrong = keys.verify("two", &sign(&one, body), body).await;
        assert!(
            matches!(wrong, Err(SignatureError::BadSignature)),
            "{wrong:?}"
        );
        let wrong = keys.verify("two", &sign(&two, b"[{}]"), body).await;
        assert!(
            matches!(wrong, Err(SignatureError::BadSignature)),
            "{wrong:?}"
        );
        let wrong = keys.verify("two", "not base64!", body).await;
        assert!(
            matches!(wrong, Err(SignatureError::Malformed(_))),
            "{wrong:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_list_is_unavailable_but_a_list_read_before_still_serves() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let key = signing_key();
        let keys = GithubKeys::new(KeySource::File(path.clone()));
        let body = b"[]";
        let missing = keys.verify("one", &sign(&key, body), body).await;
        assert!(
            matches!(missing, Err(SignatureError::KeysUnavailable { .. })),
            "{missing:?}"
        );
        std::fs::write(&path, key_list(&[("one", &key, true)])).unwrap();
        tokio::time::advance(Duration::from_secs(61)).await;
        keys.verify("one", &sign(&key, body), body).await.unwrap();
        std::fs::write(&path, "not json").unwrap();
        tokio::time::advance(Duration::from_secs(25 * 3600)).await;
        keys.verify("one", &sign(&key, body), body).await.unwrap();
        assert!(parse_key_list(b"not json")
            .unwrap_err()
            .contains("public_keys"));
    }

    #[test]
    fn a_source_is_a_url_or_a_file() {
        assert_eq!(
            "https://example.com/k".parse::<KeySource>().unwrap(),
            KeySource::Url("https://example.com/k".into())
        );
        assert_eq!(
            "/etc/latchkey/keys.json".parse::<KeySource>().unwrap(),
            KeySource::File("/etc/latchkey/keys.json".into())
        );
    }
}
