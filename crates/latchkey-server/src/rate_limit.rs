//! Two limits on request rates, kept in memory by each node:
//!
//! - **Per owner** (`--rate-limit`, default 1200 per 5 minutes, as Cloudflare's API): every
//!   authenticated token-API or verify request counts against its token's owner (the user,
//!   or the account of an account token). Answers carry `x-ratelimit-limit`,
//!   `x-ratelimit-remaining` and `x-ratelimit-reset` (seconds until the allowance is whole
//!   again); past it, 429 with code 971 and `Retry-After`. The allowance refills steadily
//!   (GCRA, from the `governor` crate): one request every 250 ms at the default, rather than
//!   all at once at the end of a fixed window. The authorize endpoints are not counted:
//!   they answer for your own API's traffic, not for calls to latchkey's API.
//! - **Failed authentication per client address** (`--auth-failure-limit`, default 20 per
//!   10 s). A request that presents a credential latchkey refuses (unknown, malformed,
//!   disabled, expired, from a refused address) counts against its address. Once the
//!   allowance is used up, *every* request from that address is 429 with code 1016 and
//!   `Retry-After`, before its credential is even looked at, until the next failure is
//!   allowed: a right guess is then no quicker to find than a wrong one. Other addresses are
//!   not affected.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::{NoOpMiddleware, StateInformationMiddleware};
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};
use latchkey_core::Owner;

use crate::error::ApiError;

/// The period of `--rate-limit`.
pub const OWNER_PERIOD: Duration = Duration::from_secs(300);
/// The period of `--auth-failure-limit`.
pub const FAILURE_PERIOD: Duration = Duration::from_secs(10);

type Keyed<K, MW> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, MW>;

/// An owner's allowance, as its answers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// Requests per period.
    pub limit: u32,
    /// Requests left now.
    pub remaining: u32,
    /// Seconds until the allowance is whole again (until the next request, when none is left).
    pub reset_secs: u64,
}

impl Allowance {
    /// Writes the `x-ratelimit-*` headers.
    pub fn write(&self, headers: &mut HeaderMap) {
        const LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
        const REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
        const RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");
        headers.insert(LIMIT, HeaderValue::from(self.limit));
        headers.insert(REMAINING, HeaderValue::from(self.remaining));
        headers.insert(RESET, HeaderValue::from(self.reset_secs));
    }
}

struct OwnerLimit {
    limiter: Keyed<Owner, StateInformationMiddleware>,
    limit: u32,
    /// How long one request of the allowance takes to come back.
    refill: Duration,
}

/// Addresses newly refused, waiting to be written to the audit log (at most
/// [`MAX_PENDING_BURSTS`]; beyond that only counted).
#[derive(Debug, Default)]
pub struct Bursts {
    /// The addresses, in the order they were refused.
    pub addresses: Vec<IpAddr>,
    /// How many more were refused than `addresses` holds.
    pub unlisted: u64,
}

/// Most refused addresses kept between two audit writes.
pub const MAX_PENDING_BURSTS: usize = 1000;

struct FailureLimit {
    limiter: Keyed<IpAddr, NoOpMiddleware<<DefaultClock as Clock>::Instant>>,
    bursts: std::sync::Mutex<Bursts>,
    /// Addresses refused until the given instant.
    blocked: DashMap<IpAddr, Instant>,
    /// Whether `blocked` may hold an entry: the common case, nobody blocked, costs one load.
    any_blocked: AtomicBool,
}

/// Both limits (either may be off).
pub struct RateLimits {
    clock: DefaultClock,
    owners: Option<OwnerLimit>,
    failures: Option<FailureLimit>,
}

fn whole_seconds(duration: Duration) -> u64 {
    duration.as_secs() + u64::from(duration.subsec_nanos() > 0)
}

fn quota(limit: NonZeroU32, period: Duration) -> Quota {
    let refill = period / limit.get();
    Quota::with_period(refill.max(Duration::from_nanos(1)))
        .expect("a positive period")
        .allow_burst(limit)
}

impl RateLimits {
    /// `per_owner` requests per owner per [`OWNER_PERIOD`] and `failures` failed
    /// authentications per address per [`FAILURE_PERIOD`]; 0 turns a limit off.
    pub fn new(per_owner: u32, failures: u32) -> Self {
        let clock = DefaultClock::default();
        let owners = NonZeroU32::new(per_owner).map(|limit| {
            let quota = quota(limit, OWNER_PERIOD);
            OwnerLimit {
                limiter: RateLimiter::dashmap_with_clock(quota, clock.clone())
                    .with_middleware::<StateInformationMiddleware>(),
                limit: limit.get(),
                refill: quota.replenish_interval(),
            }
        });
        let failures = NonZeroU32::new(failures).map(|limit| FailureLimit {
            limiter: RateLimiter::dashmap_with_clock(quota(limit, FAILURE_PERIOD), clock.clone()),
            blocked: DashMap::new(),
            any_blocked: AtomicBool::new(false),
            bursts: std::sync::Mutex::default(),
        });
        RateLimits {
            clock,
            owners,
            failures,
        }
    }

    /// Counts one request against `owner`: its allowance after this request, or 429 971.
    pub fn check_owner(&self, owner: Owner) -> Result<Option<Allowance>, ApiError> {
        let Some(owners) = &self.owners else {
            return Ok(None);
        };
        match owners.limiter.check_key(&owner) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Ok(Some(Allowance {
                    limit: owners.limit,
                    remaining,
                    reset_secs: whole_seconds(owners.refill * (owners.limit - remaining)),
                }))
            }
            Err(not_until) => {
                let wait = whole_seconds(not_until.wait_time_from(self.clock.now())).max(1);
                crate::metrics::rate_limited("owner");
                Err(ApiError::rate_limited(Allowance {
                    limit: owners.limit,
                    remaining: 0,
                    reset_secs: wait,
                }))
            }
        }
    }

    /// 429 1016 if `ip` has used up its failed authentications.
    pub fn refuse_if_blocked(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        if !failures.any_blocked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(until) = failures.blocked.get(&ip).map(|entry| *entry) else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            crate::metrics::rate_limited("auth_failures");
            return Err(ApiError::authentication_throttled(whole_seconds(
                until - now,
            )));
        }
        failures.blocked.remove_if(&ip, |_, until| *until <= now);
        Ok(())
    }

    /// Counts a failed authentication from `ip`; 429 1016 when it is one too many. The
    /// first refusal of a burst is logged (by address, never by credential).
    pub fn record_failure(&self, ip: IpAddr) -> Result<(), ApiError> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        let Err(not_until) = failures.limiter.check_key(&ip) else {
            return Ok(());
        };
        let wait = not_until
            .wait_time_from(self.clock.now())
            .max(Duration::from_millis(1));
        let first = failures.blocked.insert(ip, Instant::now() + wait).is_none();
        failures.any_blocked.store(true, Ordering::SeqCst);
        if first {
            tracing::warn!(client_ip = %ip, "too many failed authentications; refusing this address for now");
            let mut bursts = failures.bursts.lock().unwrap_or_else(|e| e.into_inner());
            if bursts.addresses.len() < MAX_PENDING_BURSTS {
                bursts.addresses.push(ip);
            } else {
                bursts.unlisted += 1;
            }
        }
        crate::metrics::rate_limited("auth_failures");
        Err(ApiError::authentication_throttled(whole_seconds(wait)))
    }

    /// The addresses refused since the last call, for the audit log.
    pub fn take_bursts(&self) -> Bursts {
        match &self.failures {
            Some(failures) => {
                std::mem::take(&mut *failures.bursts.lock().unwrap_or_else(|e| e.into_inner()))
            }
            None => Bursts::default(),
        }
    }

    /// Forgets owners and addresses idle for a whole period, so that memory follows the
    /// active clients rather than every client ever seen.
    pub fn forget_idle(&self) {
        if let Some(owners) = &self.owners {
            owners.limiter.retain_recent();
            owners.limiter.shrink_to_fit();
        }
        if let Some(failures) = &self.failures {
            failures.limiter.retain_recent();
            failures.limiter.shrink_to_fit();
            let now = Instant::now();
            failures.any_blocked.store(false, Ordering::SeqCst);
            failures.blocked.retain(|_, until| *until > now);
            if !failures.blocked.is_empty() {
                failures.any_blocked.store(true, Ordering::SeqCst);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use latchkey_core::Id;

    #[test]
    fn an_owner_gets_its_allowance_then_429_with_retry_after() {
        let limits = RateLimits::new(3, 0);
        let owner = Owner::User(Id::random());
        let seen: Vec<u32> = (0..3)
            .map(|_| limits.check_owner(owner).unwrap().unwrap().remaining)
            .collect();
        assert_eq!(seen, [2, 1, 0]);
        let refused = limits.check_owner(owner).unwrap_err();
        assert_eq!(refused.status().as_u16(), 429);
        // 300 s / 3: the next request comes back within 100 s.
        assert!((1..=100).contains(&refused.retry_after().unwrap()));
        // Another owner is not affected.
        let other = Owner::Account(Id::random());
        assert_eq!(limits.check_owner(other).unwrap().unwrap().remaining, 2);
    }

    #[test]
    fn off_means_off() {
        let limits = RateLimits::new(0, 0);
        let owner = Owner::User(Id::random());
        for _ in 0..10_000 {
            assert_eq!(limits.check_owner(owner).unwrap(), None);
            limits.record_failure("192.0.2.1".parse().unwrap()).unwrap();
        }
    }

    #[test]
    fn an_address_over_its_failures_is_refused_and_others_are_not() {
        let limits = RateLimits::new(0, 2);
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let good: IpAddr = "192.0.2.2".parse().unwrap();
        limits.refuse_if_blocked(bad).unwrap();
        limits.record_failure(bad).unwrap();
        limits.record_failure(bad).unwrap();
        let refused = limits.record_failure(bad).unwrap_err();
        assert_eq!(refused.status().as_u16(), 429);
        // 10 s / 2: within 5 s.
        assert!((1..=5).contains(&refused.retry_after().unwrap()));
        assert!(limits.refuse_if_blocked(bad).is_err());
        limits.refuse_if_blocked(good).unwrap();
        limits.record_failure(good).unwrap();
        limits.forget_idle();
        assert!(limits.refuse_if_blocked(bad).is_err(), "still blocked");
    }
}
