//! Who the caller is, standalone: the socket peer, or — only when that peer is one of the
//! configured trusted proxies (`RELAY_TRUSTED_PROXIES`, CIDRs) — the X-Forwarded-For hop that
//! the nearest untrusted party handed to a trusted one. A client that talks to the proxy
//! directly cannot choose its address by sending the header.

use std::net::IpAddr;
use std::str::FromStr;

/// The per-IP limiter key of a caller: an IPv4 address as it is; an IPv6 address by its
/// network of `v6_prefix` bits (`RELAY_IPV6_PREFIX`, /64 by default: one subscriber is given a
/// whole /64, so a per-address budget would be 2^64 budgets).
pub fn ip_limit_key(ip: &str, v6_prefix: u8) -> String {
    match ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => {
            let prefix = v6_prefix.min(128);
            let mask = if prefix == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(prefix))
            };
            let net = std::net::Ipv6Addr::from(u128::from(v6) & mask);
            format!("ip:{net}/{prefix}")
        }
        _ => format!("ip:{ip}"),
    }
}

/// At most this many X-Forwarded-For entries are walked (from the right).
pub const MAX_FORWARDED_HOPS: usize = 32;

/// An IPv4 or IPv6 network, `10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or /128.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    net: IpAddr,
    prefix: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    #[error("{0:?} is not an IP address or network (like 10.0.0.0/8 or 2001:db8::/32)")]
    Invalid(String),
    #[error("{0:?}: the prefix length is longer than the address")]
    Prefix(String),
}

impl FromStr for Cidr {
    type Err = CidrError;
    fn from_str(s: &str) -> Result<Self, CidrError> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (
                a,
                Some(
                    p.parse::<u8>()
                        .map_err(|_| CidrError::Invalid(s.to_owned()))?,
                ),
            ),
            None => (s, None),
        };
        let net: IpAddr = addr.parse().map_err(|_| CidrError::Invalid(s.to_owned()))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(CidrError::Prefix(s.to_owned()));
        }
        Ok(Self { net, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                masked(u32::from(n).into(), self.prefix, 32)
                    == masked(u32::from(a).into(), self.prefix, 32)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                masked(u128::from(n), self.prefix, 128) == masked(u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

fn masked(v: u128, prefix: u8, bits: u32) -> u128 {
    if prefix == 0 {
        return 0;
    }
    let shift = bits - u32::from(prefix);
    (v >> shift) << shift
}

/// The proxies whose X-Forwarded-For entries are believed. Empty: none (the socket peer is
/// the caller).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl FromStr for TrustedProxies {
    type Err = CidrError;
    fn from_str(list: &str) -> Result<Self, CidrError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }
}

impl TrustedProxies {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// The caller behind `peer`: walk `forwarded_for` (all X-Forwarded-For values, in order)
    /// from the right while the current hop is trusted. `None` when a trusted proxy passed an
    /// entry that is not an address (the caller cannot be told).
    pub fn caller<'a>(
        &self,
        peer: IpAddr,
        forwarded_for: impl Iterator<Item = &'a str>,
    ) -> Option<IpAddr> {
        let mut current = peer.to_canonical();
        if !self.contains(current) {
            return Some(current);
        }
        let hops: Vec<&str> = forwarded_for
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for hop in hops.iter().rev().take(MAX_FORWARDED_HOPS) {
            current = hop.parse::<IpAddr>().ok()?.to_canonical();
            if !self.contains(current) {
                return Some(current);
            }
        }
        // Every hop walked is trusted: the leftmost one is the caller (an internal client),
        // unless more hops were sent than are walked.
        (hops.len() <= MAX_FORWARDED_HOPS).then_some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_match() {
        let c: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(c.contains(ip("10.200.1.1")) && !c.contains(ip("11.0.0.1")));
        assert!(
            c.contains(ip("::ffff:10.1.2.3")),
            "IPv4-mapped addresses are their IPv4 address"
        );
        let c: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(
            c.contains(ip("2001:db8:1::5"))
                && !c.contains(ip("2001:db9::1"))
                && !c.contains(ip("10.0.0.1"))
        );
        assert!("203.0.113.7"
            .parse::<Cidr>()
            .unwrap()
            .contains(ip("203.0.113.7")));
        assert!("0.0.0.0/0"
            .parse::<Cidr>()
            .unwrap()
            .contains(ip("198.51.100.1")));
        assert_eq!(
            "10.0.0.0/33".parse::<Cidr>(),
            Err(CidrError::Prefix("10.0.0.0/33".into()))
        );
        for bad in ["", "10.0.0/8", "x", "10.0.0.0/", "10.0.0.0/-1"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert!("10.0.0.0/8, ,192.168.0.0/16"
            .parse::<TrustedProxies>()
            .is_ok());
        assert!("10.0.0.0/8,nope".parse::<TrustedProxies>().is_err());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        let lb: TrustedProxies = "10.0.0.0/8".parse().unwrap();
        // Straight from the internet: the header is the client's own words.
        assert_eq!(
            none.caller(ip("198.51.100.9"), ["1.2.3.4"].into_iter()),
            Some(ip("198.51.100.9"))
        );
        assert_eq!(
            lb.caller(ip("198.51.100.9"), ["1.2.3.4"].into_iter()),
            Some(ip("198.51.100.9"))
        );
        // Through the load balancer: the hop it appended, not what the client prepended.
        assert_eq!(
            lb.caller(ip("10.0.0.5"), ["1.2.3.4, 203.0.113.50"].into_iter()),
            Some(ip("203.0.113.50"))
        );
        // Two trusted hops, two header lines.
        assert_eq!(
            lb.caller(
                ip("10.0.0.5"),
                ["6.6.6.6, 203.0.113.50", "10.0.0.7"].into_iter()
            ),
            Some(ip("203.0.113.50"))
        );
        // A trusted peer without the header: an internal caller.
        assert_eq!(
            lb.caller(ip("10.0.0.5"), std::iter::empty()),
            Some(ip("10.0.0.5"))
        );
        // A trusted proxy passed garbage: unknown, never the garbage.
        assert_eq!(lb.caller(ip("10.0.0.5"), ["evil"].into_iter()), None);
        // Too many trusted hops to walk: unknown.
        let many = vec!["10.0.0.1"; MAX_FORWARDED_HOPS + 1].join(",");
        assert_eq!(lb.caller(ip("10.0.0.5"), [many.as_str()].into_iter()), None);
    }
}

#[cfg(test)]
mod limit_key_tests {
    use super::ip_limit_key;

    #[test]
    fn ipv6_callers_share_their_network_budget_and_ipv4_callers_do_not() {
        assert_eq!(
            ip_limit_key("2001:db8:1:2:aaaa::1", 64),
            ip_limit_key("2001:db8:1:2:ffff:ffff:ffff:ffff", 64)
        );
        assert_ne!(
            ip_limit_key("2001:db8:1:2::1", 64),
            ip_limit_key("2001:db8:1:3::1", 64)
        );
        assert_eq!(ip_limit_key("2001:db8:1:2::1", 64), "ip:2001:db8:1:2::/64");
        assert_eq!(ip_limit_key("2001:db8::1", 128), "ip:2001:db8::1/128");
        assert_eq!(ip_limit_key("192.0.2.7", 64), "ip:192.0.2.7");
        assert_ne!(ip_limit_key("192.0.2.7", 64), ip_limit_key("192.0.2.8", 64));
    }
}
