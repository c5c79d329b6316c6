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
//!   not affected. An IPv6 client is counted by its /64 (one host usually holds a whole
//!   /64, so counting per /128 would give it 2^64 allowances).
//! - A refused address's **burst** (refusals with no quiet [`FAILURE_PERIOD`] between them)
//!   is logged once as a warning when it starts and written to the audit log once when it
//!   ends, with its count ([`BurstRecord`]); a burst still going after [`LONGEST_BURST`] is
//!   written then and goes on as a new one. At most [`BURST_ROWS_PER_MINUTE`] bursts a minute
//!   get a row (and a warning) of their own; the rest of that minute's are summed in one row,
//!   so any number of addresses adds a bounded number of rows.

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

/// The period of `--rate-limit`.
pub const OWNER_PERIOD: Duration = Duration::from_secs(300);
/// The period of `--auth-failure-limit`.
pub const FAILURE_PERIOD: Duration = Duration::from_secs(10);

type Keyed<K, MW> = RateLimiter<K, DashMapStateStore<K>, DefaultClock, MW>;

/// A request refused by a limit (the HTTP layer answers it with 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The owner's allowance is used up (429 971); it is whole again in `reset_secs`.
    Owner(Allowance),
    /// The address has failed to authenticate too often (429 1016); retry in `retry_after` s.
    AuthFailures {
        /// Whole seconds until the address is admitted again.
        retry_after: u64,
    },
}

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

/// A burst is written to the audit log after this long even if it goes on.
pub const LONGEST_BURST: Duration = Duration::from_secs(600);
/// Bursts written (and warned about) one by one per minute; the rest are summed.
pub const BURST_ROWS_PER_MINUTE: u32 = 30;
/// Bursts followed at once; more are only counted.
pub const MAX_ACTIVE_BURSTS: usize = 10_000;

/// A burst of refusals from one address (an IPv6 /64), as the audit log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BurstRecord {
    /// The address (for IPv6, the first address of its /64).
    pub address: IpAddr,
    /// Requests refused with 429 1016 during the burst.
    pub refused: u64,
    /// From its first refusal to its last.
    pub lasted: Duration,
}

/// What [`RateLimits::take_bursts`] hands to the audit log.
#[derive(Debug, Default)]
pub struct Bursts {
    /// Bursts that ended, each for a row of its own.
    pub ended: Vec<BurstRecord>,
    /// Bursts of this minute over [`BURST_ROWS_PER_MINUTE`] (or over
    /// [`MAX_ACTIVE_BURSTS`]), for one summing row: how many, and their refusals.
    pub unlisted: u64,
    /// Refusals of the unlisted bursts.
    pub unlisted_refused: u64,
}

#[derive(Debug, Clone, Copy)]
struct Active {
    started: Instant,
    last: Instant,
    refused: u64,
    /// Whether it has a row (and a warning) of its own, or is summed.
    listed: bool,
}

#[derive(Debug)]
struct BurstLog {
    active: std::collections::HashMap<IpAddr, Active>,
    /// Start of the current minute of [`BURST_ROWS_PER_MINUTE`], and bursts listed in it.
    minute: Instant,
    listed: u32,
    /// Listed bursts that ended, not yet taken.
    closed: Vec<BurstRecord>,
    /// Summed bursts of the current minute, and their refusals, not yet taken.
    unlisted: u64,
    unlisted_refused: u64,
}

impl BurstLog {
    fn new() -> Self {
        BurstLog {
            active: std::collections::HashMap::new(),
            minute: Instant::now(),
            listed: 0,
            closed: Vec::new(),
            unlisted: 0,
            unlisted_refused: 0,
        }
    }

    /// Counts one refusal of `key` at `now`; whether it started a listed burst.
    fn refused(&mut self, key: IpAddr, now: Instant) -> bool {
        if let Some(burst) = self.active.get_mut(&key) {
            if now.saturating_duration_since(burst.last) < FAILURE_PERIOD {
                burst.last = now;
                burst.refused += 1;
                return false;
            }
        }
        if self.active.len() >= MAX_ACTIVE_BURSTS && !self.active.contains_key(&key) {
            // Not followed: only its refusals are summed.
            self.unlisted_refused += 1;
            return false;
        }
        if now.saturating_duration_since(self.minute) >= Duration::from_secs(60) {
            self.minute = now;
            self.listed = 0;
        }
        let listed = self.listed < BURST_ROWS_PER_MINUTE;
        if listed {
            self.listed += 1;
        } else {
            self.unlisted += 1;
        }
        let fresh = Active {
            started: now,
            last: now,
            refused: 1,
            listed,
        };
        // A quiet period ended the key's previous burst.
        if let Some(previous) = self.active.insert(key, fresh) {
            self.close(key, previous);
        }
        listed
    }

    fn close(&mut self, address: IpAddr, burst: Active) {
        if burst.listed {
            self.closed.push(BurstRecord {
                address,
                refused: burst.refused,
                lasted: burst.last - burst.started,
            });
        } else {
            self.unlisted_refused += burst.refused;
        }
    }

    fn take(&mut self, now: Instant, all: bool) -> Bursts {
        let over: Vec<IpAddr> = self
            .active
            .iter()
            .filter(|(_, b)| {
                all || now.saturating_duration_since(b.last) >= FAILURE_PERIOD
                    || now.saturating_duration_since(b.started) >= LONGEST_BURST
            })
            .map(|(key, _)| *key)
            .collect();
        for key in over {
            if let Some(burst) = self.active.remove(&key) {
                self.close(key, burst);
            }
        }
        let ended = std::mem::take(&mut self.closed);
        let minute_over = now.saturating_duration_since(self.minute) >= Duration::from_secs(60);
        let (unlisted, unlisted_refused) = if all || minute_over {
            (
                std::mem::take(&mut self.unlisted),
                std::mem::take(&mut self.unlisted_refused),
            )
        } else {
            (0, 0)
        };
        Bursts {
            ended,
            unlisted,
            unlisted_refused,
        }
    }
}

/// The key failures are counted under: an IPv4 address (an IPv4-mapped IPv6 one as IPv4),
/// or an IPv6 address's /64.
fn failure_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(bits.into())
        }
        v4 => v4,
    }
}

struct FailureLimit {
    limiter: Keyed<IpAddr, NoOpMiddleware<<DefaultClock as Clock>::Instant>>,
    bursts: parking_lot::Mutex<BurstLog>,
    /// Addresses refused until the given instant.
    blocked: DashMap<IpAddr, Instant>,
    /// Whether `blocked` may hold an entry: the common case, nobody blocked, costs one load.
    any_blocked: AtomicBool,
}

impl FailureLimit {
    fn log(&self) -> parking_lot::MutexGuard<'_, BurstLog> {
        self.bursts.lock()
    }

    /// Counts a refusal of `key` in its burst; warns when a listed burst starts.
    fn burst(&self, key: IpAddr, now: Instant) {
        if self.log().refused(key, now) {
            tracing::warn!(client_ip = %key, "too many failed authentications; refusing this address for now");
        }
    }
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
            bursts: parking_lot::Mutex::new(BurstLog::new()),
        });
        RateLimits {
            clock,
            owners,
            failures,
        }
    }

    /// Counts one request against `owner`: its allowance after this request, or 429 971.
    pub fn check_owner(&self, owner: Owner) -> Result<Option<Allowance>, Refusal> {
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
                Err(Refusal::Owner(Allowance {
                    limit: owners.limit,
                    remaining: 0,
                    reset_secs: wait,
                }))
            }
        }
    }

    /// 429 1016 if `ip` has used up its failed authentications.
    pub fn refuse_if_blocked(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        if !failures.any_blocked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ip = failure_key(ip);
        let Some(until) = failures.blocked.get(&ip).map(|entry| *entry) else {
            return Ok(());
        };
        let now = Instant::now();
        if until > now {
            failures.burst(ip, now);
            crate::metrics::rate_limited("auth_failures");
            return Err(Refusal::AuthFailures {
                retry_after: whole_seconds(until - now),
            });
        }
        failures.blocked.remove_if(&ip, |_, until| *until <= now);
        Ok(())
    }

    /// Counts a failed authentication from `ip`; 429 1016 when it is one too many. The
    /// first refusal of a burst is logged (by address, never by credential).
    pub fn record_failure(&self, ip: IpAddr) -> Result<(), Refusal> {
        let Some(failures) = &self.failures else {
            return Ok(());
        };
        let ip = failure_key(ip);
        let Err(not_until) = failures.limiter.check_key(&ip) else {
            return Ok(());
        };
        let wait = not_until
            .wait_time_from(self.clock.now())
            .max(Duration::from_millis(1));
        let now = Instant::now();
        failures.blocked.insert(ip, now + wait);
        failures.any_blocked.store(true, Ordering::SeqCst);
        failures.burst(ip, now);
        crate::metrics::rate_limited("auth_failures");
        Err(Refusal::AuthFailures {
            retry_after: whole_seconds(wait),
        })
    }

    /// The bursts that ended by `now` (every burst, when `all`), for the audit log.
    pub fn take_bursts(&self, now: Instant, all: bool) -> Bursts {
        match &self.failures {
            Some(failures) => failures.log().take(now, all),
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
        let Refusal::Owner(refused) = limits.check_owner(owner).unwrap_err() else {
            panic!("refused for another reason");
        };
        assert_eq!(refused.remaining, 0);
        // 300 s / 3: the next request comes back within 100 s.
        assert!((1..=100).contains(&refused.reset_secs));
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
        let Refusal::AuthFailures { retry_after } = limits.record_failure(bad).unwrap_err() else {
            panic!("refused for another reason");
        };
        // 10 s / 2: within 5 s.
        assert!((1..=5).contains(&retry_after));
        assert!(limits.refuse_if_blocked(bad).is_err());
        limits.refuse_if_blocked(good).unwrap();
        limits.record_failure(good).unwrap();
        limits.forget_idle();
        assert!(limits.refuse_if_blocked(bad).is_err(), "still blocked");
    }

    /// Issue 24: a sustained attack from one address added a row about every 0.5 s (each
    /// time the address's allowance let one failure through, a "new" burst began).
    #[test]
    fn a_sustained_burst_is_one_record_with_its_count() {
        let limits = RateLimits::new(0, 20);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let started = Instant::now();
        let mut refused = 0;
        while started.elapsed() < Duration::from_millis(1600) {
            if limits.refuse_if_blocked(ip).is_err() || limits.record_failure(ip).is_err() {
                refused += 1;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(refused > 40, "{refused}");
        let now = Instant::now();
        let going = limits.take_bursts(now, false);
        assert!(going.ended.is_empty(), "still going: {going:?}");
        let ended = limits.take_bursts(now + FAILURE_PERIOD, false);
        assert_eq!(ended.ended.len(), 1, "{ended:?}");
        assert_eq!(ended.ended[0].address, ip);
        assert_eq!(ended.ended[0].refused, refused);
        assert!(limits
            .take_bursts(now + FAILURE_PERIOD, true)
            .ended
            .is_empty());
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let limits = RateLimits::new(0, 20);
        let host = |n: u16| -> IpAddr { format!("2001:db8:1:2::{n:x}").parse().unwrap() };
        for n in 0..20 {
            limits.record_failure(host(n)).unwrap();
        }
        assert!(
            limits.record_failure(host(999)).is_err(),
            "one /64, one allowance"
        );
        assert!(limits.refuse_if_blocked(host(5000)).is_err());
        let neighbour: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limits.refuse_if_blocked(neighbour).unwrap();
        limits.record_failure(neighbour).unwrap();
        let ended = limits.take_bursts(Instant::now(), true);
        assert_eq!(
            ended.ended[0].address,
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn any_number_of_addresses_adds_a_bounded_number_of_rows() {
        let limits = RateLimits::new(0, 1);
        for n in 0..2000u32 {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n));
            limits.record_failure(ip).unwrap();
            assert!(limits.record_failure(ip).is_err());
        }
        let bursts = limits.take_bursts(Instant::now(), true);
        assert_eq!(bursts.ended.len(), BURST_ROWS_PER_MINUTE as usize);
        assert_eq!(bursts.unlisted, 2000 - u64::from(BURST_ROWS_PER_MINUTE));
        assert_eq!(bursts.unlisted_refused, bursts.unlisted);
    }
}
