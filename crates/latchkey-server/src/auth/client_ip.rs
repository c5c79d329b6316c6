//! The client's address: the TCP peer, unless that peer is a trusted proxy.
//!
//! With `--trusted-proxy <CIDR>` (repeatable), a request whose peer is inside one of those
//! ranges is attributed to the right-most address of `X-Forwarded-For` that is *not* a
//! trusted proxy: each proxy appends the address it saw, so everything left of the first
//! untrusted hop (reading from the right) may have been written by the client and is
//! ignored. When every hop is trusted, the left-most one is used. Without
//! `X-Forwarded-For`, a trusted peer's `CF-Connecting-IP` (one address, set by
//! Cloudflare's edge) is used. Headers from an untrusted peer are always ignored, so a
//! client cannot choose its own address by sending them.
//!
//! An entry that is not an IP address stops the walk: the nearest address to its right
//! (a trusted proxy) is used, since nothing left of it can be believed.

use std::net::IpAddr;

use axum::http::HeaderMap;
use ipnet::IpNet;

fn trusted(ip: IpAddr, proxies: &[IpNet]) -> bool {
    proxies.iter().any(|net| net.contains(&ip))
}

/// Parses one `X-Forwarded-For` entry: a bare address, `[v6]`, or either with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(socket) = entry.parse::<std::net::SocketAddr>() {
        return Some(socket.ip());
    }
    let bracketed = entry.strip_prefix('[')?.split(']').next()?;
    bracketed.parse().ok()
}

/// The address a request is attributed to (see the module docs).
pub fn resolve(peer: IpAddr, headers: &HeaderMap, proxies: &[IpNet]) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted(peer, proxies) {
        return peer;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    if hops.is_empty() {
        return headers
            .get("cf-connecting-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_hop)
            .map(|ip| ip.to_canonical())
            .unwrap_or(peer);
    }
    let mut nearest = peer;
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop).map(|ip| ip.to_canonical()) else {
            return nearest;
        };
        if !trusted(ip, proxies) {
            return ip;
        }
        nearest = ip;
    }
    nearest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    const PROXIES: &[&str] = &["10.0.0.0/8", "::1/128"];

    fn resolve_from(peer: &str, pairs: &[(&str, &str)]) -> IpAddr {
        let proxies: Vec<IpNet> = PROXIES.iter().map(|p| p.parse().unwrap()).collect();
        resolve(ip(peer), &headers(pairs), &proxies)
    }

    #[test]
    fn untrusted_peers_cannot_choose_their_address() {
        let spoof = [
            ("x-forwarded-for", "1.2.3.4"),
            ("cf-connecting-ip", "5.6.7.8"),
        ];
        assert_eq!(resolve_from("203.0.113.9", &spoof), ip("203.0.113.9"));
        let none: Vec<IpNet> = Vec::new();
        assert_eq!(
            resolve(ip("10.0.0.1"), &headers(&spoof), &none),
            ip("10.0.0.1"),
            "no proxy is trusted by default"
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        // The client wrote 6.6.6.6 itself; the first proxy saw 198.51.100.7.
        let xff = [("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")];
        assert_eq!(resolve_from("10.2.2.2", &xff), ip("198.51.100.7"));
        let split = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ];
        assert_eq!(resolve_from("10.2.2.2", &split), ip("198.51.100.7"));
        let all_trusted = [("x-forwarded-for", "10.9.9.9, 10.1.1.1")];
        assert_eq!(resolve_from("10.2.2.2", &all_trusted), ip("10.9.9.9"));
        let mapped = [("x-forwarded-for", "::ffff:198.51.100.7")];
        assert_eq!(resolve_from("::1", &mapped), ip("198.51.100.7"));
        let ports = [("x-forwarded-for", "[2001:db8::1]:4711, 198.51.100.7:80")];
        assert_eq!(resolve_from("10.2.2.2", &ports), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_stops_the_walk_at_the_nearest_trusted_hop() {
        let garbage = [("x-forwarded-for", "198.51.100.7, unknown, 10.1.1.1")];
        assert_eq!(resolve_from("10.2.2.2", &garbage), ip("10.1.1.1"));
        let garbage = [("x-forwarded-for", "nonsense")];
        assert_eq!(resolve_from("10.2.2.2", &garbage), ip("10.2.2.2"));
    }

    #[test]
    fn cf_connecting_ip_counts_only_without_x_forwarded_for() {
        let cf = [("cf-connecting-ip", "198.51.100.7")];
        assert_eq!(resolve_from("10.2.2.2", &cf), ip("198.51.100.7"));
        let both = [
            ("cf-connecting-ip", "5.6.7.8"),
            ("x-forwarded-for", "198.51.100.7"),
        ];
        assert_eq!(resolve_from("10.2.2.2", &both), ip("198.51.100.7"));
    }
}
