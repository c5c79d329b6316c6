//! Token secrets: their format, generation, parsing and hashing.
//!
//! A secret is `cfut_` (user token) or `cfat_` (account token), then 40 random base62
//! characters, then a 6-character base62 CRC32 of those 40, so that a scanner can tell a
//! real token from noise offline and a typo is refused before any lookup. Only the
//! SHA-256 of the whole secret is ever stored.

use std::fmt;

use rand::distr::{Alphanumeric, SampleString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

const RANDOM_LEN: usize = 40;
const CHECKSUM_LEN: usize = 6;
const PREFIX_LEN: usize = 5;
/// Length of every secret latchkey issues.
pub const SECRET_LEN: usize = PREFIX_LEN + RANDOM_LEN + CHECKSUM_LEN;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Which family a secret belongs to; it decides the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// `cfut_`: a user token.
    User,
    /// `cfat_`: an account-owned token.
    Account,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            SecretKind::User => "cfut_",
            SecretKind::Account => "cfat_",
        }
    }
}

/// A token secret in clear. Its `Debug` output is redacted; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

/// The presented text is not a secret latchkey could have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a latchkey secret (wrong prefix, length, alphabet or checksum)")]
pub struct MalformedSecret;

impl Secret {
    /// A new random secret of the given family.
    pub fn generate(kind: SecretKind) -> Self {
        let random = Alphanumeric.sample_string(&mut rand::rng(), RANDOM_LEN);
        let mut text = String::with_capacity(SECRET_LEN);
        text.push_str(kind.prefix());
        text.push_str(&random);
        text.push_str(&checksum(random.as_bytes()));
        Secret(text)
    }

    /// Checks prefix, length, alphabet and checksum; does not look anything up.
    pub fn parse(text: &str) -> Result<(Self, SecretKind), MalformedSecret> {
        let kind = if text.starts_with("cfut_") {
            SecretKind::User
        } else if text.starts_with("cfat_") {
            SecretKind::Account
        } else {
            return Err(MalformedSecret);
        };
        if text.len() != SECRET_LEN || !text.is_ascii() {
            return Err(MalformedSecret);
        }
        let (random, sum) = text[PREFIX_LEN..].split_at(RANDOM_LEN);
        let random = random.as_bytes();
        if !random.iter().all(u8::is_ascii_alphanumeric) || checksum(random) != sum {
            return Err(MalformedSecret);
        }
        Ok((Secret(text.to_owned()), kind))
    }

    /// The secret in clear, to hand to its owner exactly once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the secret: the only form that is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({}[REDACTED])", &self.0[..PREFIX_LEN])
    }
}

/// CRC32 of the random part, written as 6 base62 digits (62^6 > 2^32).
fn checksum(random: &[u8]) -> String {
    let mut n = crc32fast::hash(random);
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(n % 62) as usize];
        n /= 62;
    }
    digits.iter().map(|&b| b as char).collect()
}

/// SHA-256 of a secret. Compared in constant time.
#[derive(Clone, Copy, Eq)]
pub struct SecretHash(pub [u8; 32]);

impl SecretHash {
    /// The 32 raw bytes, as stored.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SecretHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::hash::Hash for SecretHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretHash({}…)", hex::encode(&self.0[..4]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_secrets_parse_back_to_their_kind() {
        for kind in [SecretKind::User, SecretKind::Account] {
            let secret = Secret::generate(kind);
            assert_eq!(secret.expose().len(), SECRET_LEN);
            assert!((40..=80).contains(&SECRET_LEN));
            let (parsed, parsed_kind) = Secret::parse(secret.expose()).unwrap();
            assert_eq!(parsed, secret);
            assert_eq!(parsed_kind, kind);
            assert_eq!(parsed.hash(), secret.hash());
        }
        assert!(Secret::generate(SecretKind::User)
            .expose()
            .starts_with("cfut_"));
        assert!(Secret::generate(SecretKind::Account)
            .expose()
            .starts_with("cfat_"));
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let secret = Secret::generate(SecretKind::User);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(&secret.expose()[PREFIX_LEN..]), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn a_changed_character_breaks_the_checksum() {
        let secret = Secret::generate(SecretKind::Account);
        let mut bytes = secret.expose().as_bytes().to_vec();
        bytes[10] = if bytes[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(
            Secret::parse(std::str::from_utf8(&bytes).unwrap()),
            Err(MalformedSecret)
        );
    }

    #[test]
    fn refuses_other_shapes() {
        let good = Secret::generate(SecretKind::User);
        let text = good.expose();
        for bad in [
            "",
            "cfut_",
            &text[..SECRET_LEN - 1],
            &format!("{text}0"),
            &text.replace("cfut_", "cfxt_"),
            "8M7wS6hCpXVc-DoRnPPY_UCWPgy8aea4Wy6kCe5T",
        ] {
            assert_eq!(Secret::parse(bad), Err(MalformedSecret), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,80}") {
            let _ = Secret::parse(&text);
        }

        #[test]
        fn random_text_in_the_right_shape_is_almost_never_accepted(random in "[A-Za-z0-9]{40}", sum in "[A-Za-z0-9]{6}") {
            let text = format!("cfut_{random}{sum}");
            prop_assert_eq!(Secret::parse(&text).is_ok(), checksum(random.as_bytes()) == sum);
        }
    }
}
