//! Which network a client address belongs to, without external data (no ASN or geo database):
//! an IPv4 address's /24, an IPv6 address's /48. The context rule uses it to tell a client
//! change that also came from another network (a stolen cookie replayed elsewhere, or the
//! user's second device on another connection) from one behind the same connection. A new
//! address inside the same network (DHCP, a carrier's pool, IPv6 privacy addresses) is not a
//! move.

use std::net::IpAddr;

/// The prefix length that makes an IPv4 network: a /24, the usual subnet of one site or one
/// carrier pool segment. A /16 would hide moves between customers of one large provider.
pub const V4_PREFIX: u8 = 24;

/// The prefix length that makes an IPv6 network: a /48, the usual allocation to one site (a
/// home or office gets a /48 to /56; its hosts rotate their lower bits on their own).
pub const V6_PREFIX: u8 = 48;

/// The network of `address`, spelled as a prefix (`198.51.100.0/24`, `2001:db8:1::/48`). An
/// IPv4-mapped IPv6 address counts as its IPv4 address. Anything that does not parse as one IP
/// address (a port, a list from `X-Forwarded-For`, a placeholder) is its own network, as
/// written, so two such values compare as strings.
pub fn network(address: &str) -> String {
    match address.trim().parse::<IpAddr>().map(|a| a.to_canonical()) {
        Ok(IpAddr::V4(a)) => {
            let mask = u32::MAX << (32 - u32::from(V4_PREFIX));
            format!(
                "{}/{V4_PREFIX}",
                std::net::Ipv4Addr::from(u32::from(a) & mask)
            )
        }
        Ok(IpAddr::V6(a)) => {
            let mask = u128::MAX << (128 - u32::from(V6_PREFIX));
            format!(
                "{}/{V6_PREFIX}",
                std::net::Ipv6Addr::from(u128::from(a) & mask)
            )
        }
        Err(_) => address.to_string(),
    }
}

/// The two networks when `before` and `after` are in different ones, for the alert's evidence.
pub fn moved(before: &str, after: &str) -> Option<(String, String)> {
    let (was, now) = (network(before), network(after));
    (was != now).then_some((was, now))
}
