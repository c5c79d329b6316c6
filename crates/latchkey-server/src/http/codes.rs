//! Every code latchkey answers with, named once: Cloudflare's own where Cloudflare's behaviour
//! is known, latchkey's (1003 and up) where it is not. [`ALL`] lists each with its HTTP
//! status; a test checks that the error table of `docs/compatibility.md` says the same.

/// Declares each code as a constant and lists them all in [`ALL`].
macro_rules! codes {
    ($($(#[doc = $doc:literal])* $name:ident = $code:literal, $status:literal;)*) => {
        $($(#[doc = $doc])* pub const $name: u32 = $code;)*
        /// Every code with its HTTP status (200 for the verify message's code).
        pub const ALL: &[(&str, u32, u16)] = &[$((stringify!($name), $code, $status)),*];
    };
}

codes! {
    /// Cloudflare's: no credentials (with [`MISSING_AUTH_KEY`]).
    MISSING_AUTH_EMAIL = 9106, 403;
    /// Cloudflare's: no credentials (with [`MISSING_AUTH_EMAIL`]).
    MISSING_AUTH_KEY = 9107, 403;
    /// Cloudflare's: Global API Key headers, which latchkey does not accept.
    UNKNOWN_GLOBAL_KEY = 9103, 403;
    /// Cloudflare's: invalid request headers (with [`MALFORMED_AUTHORIZATION`] in its chain).
    INVALID_HEADERS = 6003, 400;
    /// Cloudflare's: an `Authorization` header that is not `Bearer <token68>`.
    MALFORMED_AUTHORIZATION = 6111, 400;
    /// Cloudflare's: an unusable token, a refused address, or a missing right.
    UNAUTHORIZED = 9109, 403;
    /// Cloudflare's: any refusal on a verify or authorize endpoint.
    INVALID_API_TOKEN = 1000, 401;
    /// Cloudflare's: no such route, or no such object.
    NO_ROUTE = 7003, 404;
    /// Cloudflare's: the message of a successful verify.
    TOKEN_VALID = 10000, 200;
    /// latchkey's: the message (in `messages`, beside 9106 and 9107) that says how to send a
    /// token.
    SEND_BEARER_TOKEN = 10001, 403;
    /// Cloudflare's: the owner's request allowance is used up.
    RATE_LIMITED = 971, 429;
    /// A body field is missing or has the wrong type.
    INVALID_FIELD = 1003, 400;
    /// A query parameter is invalid.
    INVALID_QUERY = 1004, 400;
    /// `name` is empty or too long.
    INVALID_NAME = 1005, 400;
    /// Unknown permission group.
    UNKNOWN_PERMISSION_GROUP = 1006, 400;
    /// Malformed resource key or value.
    INVALID_RESOURCE = 1007, 400;
    /// A permission group's scope fits none of the policy's resources.
    SCOPE_MISMATCH = 1008, 400;
    /// Malformed CIDR.
    INVALID_CIDR = 1009, 400;
    /// Malformed or inconsistent timestamps.
    INVALID_TIMESTAMP = 1010, 400;
    /// Token quota reached.
    QUOTA_EXCEEDED = 1011, 400;
    /// Body too large.
    BODY_TOO_LARGE = 1012, 413;
    /// Internal error.
    INTERNAL = 1013, 500;
    /// The token changed between read and write.
    CHANGED_CONCURRENTLY = 1014, 409;
    /// The database cannot be reached.
    UNAVAILABLE = 1015, 503;
    /// Too many failed authentications from this address.
    AUTHENTICATION_THROTTLED = 1016, 429;
    /// A list or text over its documented limit (see `wire::limits`).
    OVER_LIMIT = 1017, 400;
    /// The request body did not arrive within `--body-timeout`.
    BODY_TIMEOUT = 1018, 408;
    /// An object with that id (or secret) exists already.
    ALREADY_EXISTS = 1019, 409;
    /// A GitHub secret scanning alert without a valid signature by a current GitHub key.
    INVALID_SIGNATURE = 1020, 400;
    /// An exposed token cannot be re-enabled: roll it.
    TOKEN_EXPOSED = 1021, 400;
    /// Something latchkey relies on outside itself (GitHub's key list) cannot be reached.
    UPSTREAM_UNAVAILABLE = 1022, 503;
    /// Malformed JSON.
    MALFORMED_JSON = 6007, 400;
    /// Method not allowed.
    METHOD_NOT_ALLOWED = 7001, 405;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The (code, HTTP status) pairs of the "Contract decisions" table of docs/compatibility.md.
    fn documented() -> Vec<(u32, u16)> {
        let doc = include_str!("../../../../docs/compatibility.md");
        let table = doc
            .split("## Contract decisions")
            .nth(1)
            .expect("docs/compatibility.md has a Contract decisions section");
        let mut pairs = Vec::new();
        for row in table.lines().skip_while(|l| !l.starts_with('|')) {
            if !row.starts_with('|') {
                break;
            }
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let (Some(status), Some(errors)) = (cells.get(2), cells.get(3)) else {
                continue;
            };
            let Ok(status) = status.parse::<u16>() else {
                continue; // the header and its rule
            };
            for word in errors.split(|c: char| !c.is_ascii_digit()) {
                if (3..=5).contains(&word.len()) {
                    pairs.push((word.parse().unwrap(), status));
                }
            }
        }
        pairs
    }

    #[test]
    fn the_documented_code_table_matches_the_codes() {
        let documented = documented();
        assert!(
            documented.len() > 20,
            "the table was not found: {documented:?}"
        );
        for (code, status) in &documented {
            assert!(
                ALL.iter().any(|(_, c, s)| c == code && s == status),
                "docs/compatibility.md answers {code} with HTTP {status}; codes.rs does not"
            );
        }
        for (name, code, status) in ALL {
            if *code == TOKEN_VALID {
                continue; // a message's code, in the verify paragraph below the table
            }
            assert!(
                documented.contains(&(*code, *status)),
                "{name} ({code}, HTTP {status}) is not in the table of docs/compatibility.md"
            );
        }
        let doc = include_str!("../../../../docs/compatibility.md");
        assert!(doc.contains(&format!("\"code\":{TOKEN_VALID}")));
    }
}
