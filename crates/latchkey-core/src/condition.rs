//! The client-address condition of a token (`condition.request_ip`, spec §4.3).

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
