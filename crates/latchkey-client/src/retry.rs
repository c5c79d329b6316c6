//! When a failed request is sent again, and how long to wait first.

use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;

/// How a client retries requests that failed for a reason that may pass: an answer 429
/// (too many requests) or 5xx (server error), or a connection failure.
///
/// * `GET`, `PUT` and `DELETE` (and latchkey's authorize question, which changes nothing)
///   are retried on 429, on any 5xx and on transport errors: repeating them is harmless.
/// * `POST` (creating a token) is retried only on 429 and 503, answers that refuse the
///   request without applying it; never on a transport error or another 5xx, after which
///   the token may have been created.
///
/// The wait before retry *n* (from 0) is `initial_backoff * 2^n`, at most `max_backoff`,
/// with jitter (a random half to all of it), or exactly the answer's `Retry-After` (in
/// seconds) when it has one. When `Retry-After` asks for longer than `max_backoff`, the
/// error is returned at once instead, with [`Error::retry_after`](crate::Error::retry_after)
/// set, so the caller can decide.
///
/// ```
/// use std::time::Duration;
/// use latchkey_client::{Client, RetryPolicy};
///
/// let patient = Client::new("cfut_...").with_retry_policy(RetryPolicy {
///     max_retries: 5,
///     initial_backoff: Duration::from_secs(1),
///     max_backoff: Duration::from_secs(60),
/// });
/// let impatient = Client::new("cfut_...").with_retry_policy(RetryPolicy::none());
/// # let _ = (patient, impatient);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 never retries.
    pub max_retries: u32,
    /// Wait before the first retry (before jitter).
    pub initial_backoff: Duration,
    /// Longest wait before a retry, including one asked for by `Retry-After`.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 retries, waiting about 0.5 s, 1 s and 2 s, and at most 30 s.
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// Never retries: every failure is returned as it happens.
    pub const fn none() -> Self {
        RetryPolicy {
            max_retries: 0,
            initial_backoff: Duration::ZERO,
            max_backoff: Duration::ZERO,
        }
    }

    /// The wait before retry `retry` (from 0), or `None` to give up.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if retry >= self.max_retries {
            return None;
        }
        if let Some(asked) = retry_after {
            return (asked <= self.max_backoff).then_some(asked);
        }
        let factor = 2u32.saturating_pow(retry);
        let backoff = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        Some(backoff.mul_f64(rand::rng().random_range(0.5..=1.0)))
    }
}

/// Whether repeating a request could apply it twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Repeating is harmless: retry on 429, 5xx and transport errors.
    Safe,
    /// Retry only when the server refused the request (429, 503).
    WhenRefused,
}

impl Replay {
    /// `Safe` for `GET`, `PUT`, `DELETE` and the like; `WhenRefused` for `POST` and `PATCH`.
    pub(crate) fn of(method: &reqwest::Method) -> Self {
        if method.is_idempotent() {
            Replay::Safe
        } else {
            Replay::WhenRefused
        }
    }

    pub(crate) fn after_status(self, status: StatusCode) -> bool {
        match self {
            Replay::Safe => status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error(),
            Replay::WhenRefused => {
                status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    pub(crate) fn after_transport_error(self) -> bool {
        self == Replay::Safe
    }
}

/// `Retry-After` in seconds; the HTTP-date form is ignored (the backoff applies).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?;
    text.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;
    use reqwest::Method;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_retries: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(500),
        };
        for _ in 0..100 {
            for (retry, full) in [(0, 100), (1, 200), (2, 400), (3, 500), (9, 500)] {
                let wait = policy.delay(retry, None).unwrap();
                let full = Duration::from_millis(full);
                assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?}");
            }
        }
        assert_eq!(policy.delay(10, None), None);
        assert_eq!(RetryPolicy::none().delay(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_unless_longer_than_the_cap() {
        let policy = RetryPolicy::default();
        let asked = Some(Duration::from_secs(7));
        assert_eq!(policy.delay(0, asked), asked);
        assert_eq!(policy.delay(0, Some(Duration::from_secs(31))), None);
        assert_eq!(policy.delay(3, asked), None);
    }

    #[test]
    fn reads_retry_after_in_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("12"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(12)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn post_is_replayed_only_when_refused() {
        let post = Replay::of(&Method::POST);
        assert!(!post.after_transport_error());
        assert!(post.after_status(StatusCode::TOO_MANY_REQUESTS));
        assert!(post.after_status(StatusCode::SERVICE_UNAVAILABLE));
        assert!(!post.after_status(StatusCode::INTERNAL_SERVER_ERROR));
        assert!(!post.after_status(StatusCode::BAD_GATEWAY));
        for method in [Method::GET, Method::PUT, Method::DELETE] {
            let replay = Replay::of(&method);
            assert!(replay.after_transport_error());
            assert!(replay.after_status(StatusCode::BAD_GATEWAY));
            assert!(!replay.after_status(StatusCode::NOT_FOUND));
        }
    }
}
