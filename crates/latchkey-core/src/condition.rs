//! The client-address condition of a token (`condition.request_ip`, docs/cloudflare-tokens.md §4.3).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Conditions under which a token may be used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// Client-address ranges. `None` allows every address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ip: Option<IpCondition>,
}

/// `in`: only these ranges (when non-empty); `not_in`: never these ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpCondition {
    /// Allowed ranges; an empty list puts no restriction.
    #[serde(rename = "in", default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<IpNet>,
    /// Refused ranges; they win over `in`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_in: Vec<IpNet>,
}

impl Condition {
    /// Whether a client at `ip` may use the token.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.request_ip.as_ref().is_none_or(|c| c.allows(ip))
    }
}

impl IpCondition {
    /// Whether `ip` passes: not in any `not_in` range, and inside an `in` range if any are set.
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) is judged as its IPv4 form.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.not_in.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|net| net.contains(&ip))
    }
}

/// Which list of a narrower condition fails to stay within a wider one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wider {
    /// An `in` range outside every `in` range of the wider condition (or no `in` at all
    /// where the wider condition has one).
    In,
    /// A `not_in` range of the wider condition that the narrower one would admit.
    NotIn,
}

fn overlap(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

impl Condition {
    /// Whether every address this condition admits is admitted by `outer` too (checked
    /// range by range: an `in` range must lie inside one of `outer`'s, and each of `outer`'s
    /// `not_in` ranges must be refused here, inside one `not_in` range or outside every `in`).
    pub fn within(&self, outer: &Condition) -> Result<(), Wider> {
        let Some(outer) = &outer.request_ip else {
            return Ok(());
        };
        let empty = IpCondition::default();
        let inner = self.request_ip.as_ref().unwrap_or(&empty);
        if !outer.allow.is_empty()
            && (inner.allow.is_empty()
                || !inner
                    .allow
                    .iter()
                    .all(|net| outer.allow.iter().any(|o| o.contains(net))))
        {
            return Err(Wider::In);
        }
        for refused in &outer.not_in {
            let still_refused = inner.not_in.iter().any(|net| net.contains(refused))
                || (!inner.allow.is_empty() && !inner.allow.iter().any(|n| overlap(n, refused)));
            if !still_refused {
                return Err(Wider::NotIn);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn condition(allow: &[&str], not_in: &[&str]) -> IpCondition {
        IpCondition {
            allow: allow.iter().map(|s| s.parse().unwrap()).collect(),
            not_in: not_in.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn not_in_carves_exceptions_out_of_in() {
        let c = condition(&["199.27.128.0/21", "2400:cb00::/32"], &["199.27.128.1/32"]);
        assert!(c.allows("199.27.128.2".parse().unwrap()));
        assert!(!c.allows("199.27.128.1".parse().unwrap()));
        assert!(!c.allows("10.0.0.1".parse().unwrap()));
        assert!(c.allows("2400:cb00::1".parse().unwrap()));
        assert!(!c.allows("2400:cb01::1".parse().unwrap()));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_judged_as_ipv4() {
        let c = condition(&["127.0.0.0/8"], &[]);
        assert!(c.allows("::ffff:127.0.0.1".parse().unwrap()));
        let c = condition(&[], &["127.0.0.1/32"]);
        assert!(!c.allows("::ffff:127.0.0.1".parse().unwrap()));
    }

    fn wrap(c: IpCondition) -> Condition {
        Condition {
            request_ip: Some(c),
        }
    }

    #[test]
    fn a_narrower_condition_is_within_and_a_wider_one_is_not() {
        let loopback = wrap(condition(&["127.0.0.0/8"], &[]));
        assert_eq!(
            wrap(condition(&["127.0.0.1/32"], &[])).within(&loopback),
            Ok(())
        );
        assert_eq!(loopback.within(&loopback), Ok(()));
        assert_eq!(Condition::default().within(&loopback), Err(Wider::In));
        assert_eq!(
            wrap(condition(&["10.0.0.0/8"], &[])).within(&loopback),
            Err(Wider::In)
        );
        assert_eq!(
            wrap(condition(&["0.0.0.0/0"], &[])).within(&loopback),
            Err(Wider::In)
        );
        assert_eq!(loopback.within(&Condition::default()), Ok(()));

        let but_one = wrap(condition(&["127.0.0.0/8"], &["127.0.0.9/32"]));
        assert_eq!(loopback.within(&but_one), Err(Wider::NotIn));
        assert_eq!(but_one.within(&but_one), Ok(()));
        let wider_exception = wrap(condition(&["127.0.0.0/8"], &["127.0.0.0/24"]));
        assert_eq!(wider_exception.within(&but_one), Ok(()));
        let elsewhere = wrap(condition(&["127.1.0.0/16"], &[]));
        assert_eq!(
            elsewhere.within(&but_one),
            Ok(()),
            "the exception is outside its range"
        );
        let only_not_in = wrap(condition(&[], &["192.0.2.0/24"]));
        assert_eq!(Condition::default().within(&only_not_in), Err(Wider::NotIn));
        assert_eq!(only_not_in.within(&only_not_in), Ok(()));
    }

    #[test]
    fn no_condition_allows_everyone() {
        assert!(Condition::default().allows("203.0.113.9".parse().unwrap()));
        assert!(condition(&[], &[]).allows("::1".parse().unwrap()));
    }

    #[test]
    fn empty_lists_are_left_out_when_stored() {
        let c: Condition =
            serde_json::from_str(r#"{"request_ip":{"in":["10.0.0.0/8"],"not_in":[]}}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&c).unwrap(),
            r#"{"request_ip":{"in":["10.0.0.0/8"]}}"#
        );
    }
}
