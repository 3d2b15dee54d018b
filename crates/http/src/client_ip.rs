//! Which IP a request comes from.
//!
//! The socket peer is the only address a client cannot forge, so it is the client IP unless the
//! operator declared it a trusted proxy (`--trusted-proxies`). Only then does `X-Forwarded-For`
//! count, and only the hops that trusted proxies appended: anything a client writes into the
//! header itself sits to the left of those hops and is never believed. Rate limits and the
//! brute-force ban key on this address, so a wrong answer here either lets an attacker rotate
//! through invented IPs or bans a whole proxy; the rules below err on the side of the proxy.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use actix_web::HttpRequest;

/// The header a reverse proxy appends the address it received a request from to.
const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// One IP network: an address with the leading `prefix` bits significant.
///
/// The address is stored already masked, so matching is one AND and one comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Network {
    V4 { bits: u32, prefix: u8 },
    V6 { bits: u128, prefix: u8 },
}

impl Network {
    /// Builds the network of `addr`/`prefix`, dropping host bits set in `addr` (so `10.1.2.3/8`
    /// means `10.0.0.0/8`, as most proxy configurations read it). An IPv4-mapped IPv6 network
    /// whose prefix covers the mapping (`::ffff:10.0.0.0/104`) becomes its IPv4 form, because
    /// addresses are matched in their IPv4 form too.
    fn new(addr: IpAddr, prefix: u8) -> Self {
        match addr {
            IpAddr::V4(v4) => Self::V4 {
                bits: u32::from(v4) & mask_v4(prefix),
                prefix,
            },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => Self::new(IpAddr::V4(v4), prefix - 96),
                _ => Self::V6 {
                    bits: u128::from(v6) & mask_v6(prefix),
                    prefix,
                },
            },
        }
    }

    /// Whether `ip` (already in canonical form) lies in this network. IPv4 never matches an
    /// IPv6 network and the reverse.
    fn contains(self, ip: IpAddr) -> bool {
        match (self, ip) {
            (Self::V4 { bits, prefix }, IpAddr::V4(v4)) => u32::from(v4) & mask_v4(prefix) == bits,
            (Self::V6 { bits, prefix }, IpAddr::V6(v6)) => u128::from(v6) & mask_v6(prefix) == bits,
            _ => false,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4 { bits, prefix } => write!(f, "{}/{prefix}", Ipv4Addr::from(bits)),
            Self::V6 { bits, prefix } => write!(f, "{}/{prefix}", Ipv6Addr::from(bits)),
        }
    }
}

/// The mask of an IPv4 prefix; a prefix of 0 is the empty mask (a shift by 32 would overflow).
fn mask_v4(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

/// The mask of an IPv6 prefix; a prefix of 0 is the empty mask (a shift by 128 would overflow).
fn mask_v6(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// The form addresses are compared in: an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
/// dual-stack socket reports for an IPv4 client) is its IPv4 address, so one entry `10.0.0.1`
/// matches the proxy however the listener was bound.
fn canonical(ip: IpAddr) -> IpAddr {
    ip.to_canonical()
}

/// The reverse proxies whose `X-Forwarded-For` hops are believed.
///
/// Empty by default: with no trusted proxy every request's client IP is its socket peer, which
/// is the only safe choice when nothing is known about the network in front of the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<Network>,
}

impl TrustedProxies {
    /// No trusted proxy: `X-Forwarded-For` is ignored on every request.
    pub fn none() -> Self {
        Self::default()
    }

    /// Parses a comma-separated list of IPs and CIDR blocks, IPv4 or IPv6, such as
    /// `10.0.0.0/8, 127.0.0.1, ::1, fd00::/8`. A bare IP is a single host (/32 or /128). Blank
    /// entries (a trailing comma, an empty string) are skipped, so an empty spec trusts no one.
    ///
    /// # Errors
    ///
    /// A message naming the first entry that is not an IP or `IP/prefix` with a prefix in range,
    /// so a typo in the configuration stops the server instead of silently trusting too little
    /// or too much.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            networks.push(parse_network(entry)?);
        }
        Ok(Self { networks })
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether `ip` is a trusted proxy. IPv4-mapped IPv6 addresses match as their IPv4 form.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.networks.iter().any(|n| n.contains(ip))
    }

    /// The client IP of a request whose socket peer is `peer` and whose `X-Forwarded-For`
    /// header values, in the order received, are `forwarded_for`.
    ///
    /// The peer is the answer unless it is a trusted proxy. Then the hops are walked from the
    /// right (the one the nearest proxy appended) to the left, skipping trusted proxies; the
    /// first untrusted address is the client. When every hop is trusted the leftmost one is the
    /// answer. An entry that is not an address stops the walk and the last trusted address
    /// seen answers, because whatever is left of garbage was not written by a proxy we can
    /// vouch for. `None` only when there is no peer (a test request, a Unix socket).
    pub fn resolve(&self, peer: Option<IpAddr>, forwarded_for: &[&str]) -> Option<IpAddr> {
        let peer = canonical(peer?);
        if !self.contains(peer) {
            return Some(peer);
        }
        let mut last_trusted = peer;
        let hops = forwarded_for
            .iter()
            .rev()
            .flat_map(|value| value.rsplit(','));
        for hop in hops {
            let Some(ip) = parse_hop(hop) else {
                return Some(last_trusted);
            };
            if !self.contains(ip) {
                return Some(ip);
            }
            last_trusted = ip;
        }
        Some(last_trusted)
    }

    /// The client IP of `req`: its socket peer and `X-Forwarded-For` headers through
    /// [`Self::resolve`]. A header value that is not visible ASCII counts as a garbage hop.
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        let peer = req.peer_addr().map(|addr| canonical(addr.ip()));
        // The header is only read when it can matter, so requests from untrusted peers (the
        // common case without a proxy) cost no allocation.
        if !peer.is_some_and(|ip| self.contains(ip)) {
            return peer;
        }
        let values: Vec<&str> = req
            .headers()
            .get_all(X_FORWARDED_FOR)
            .map(|v| v.to_str().unwrap_or(""))
            .collect();
        self.resolve(peer, &values)
    }
}

impl fmt::Display for TrustedProxies {
    /// The networks as a comma-separated list, the form [`TrustedProxies::parse`] reads, for
    /// the startup log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, network) in self.networks.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{network}")?;
        }
        Ok(())
    }
}

/// Parses one entry of a trusted-proxy list: `IP` or `IP/prefix`.
fn parse_network(entry: &str) -> Result<Network, String> {
    let (addr_text, prefix_text) = match entry.split_once('/') {
        Some((addr, prefix)) => (addr.trim(), Some(prefix.trim())),
        None => (entry, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| {
        format!(
            "trusted proxy `{entry}` is not an IP address or CIDR block \
             (expected e.g. `10.0.0.0/8`, `127.0.0.1`, `::1` or `fd00::/8`)"
        )
    })?;
    let max_prefix: u8 = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max_prefix,
        Some(text) => text
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= max_prefix && !text.starts_with('+'))
            .ok_or_else(|| {
                format!(
                    "trusted proxy `{entry}` has an invalid prefix length `{text}`: \
                     it must be a number from 0 to {max_prefix}"
                )
            })?,
    };
    Ok(Network::new(addr, prefix))
}

/// Parses one `X-Forwarded-For` hop. Besides a bare address, proxies are seen writing
/// `1.2.3.4:5678`, `[2001:db8::1]` and `[2001:db8::1]:443`; those are addresses too. Anything
/// else (`unknown`, an obfuscated RFC 7239 name, an empty entry) is `None`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inner| inner.parse::<Ipv6Addr>().ok())
        .map(|v6| canonical(IpAddr::V6(v6)))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn proxies(spec: &str) -> TrustedProxies {
        TrustedProxies::parse(spec).unwrap()
    }

    #[test]
    fn an_empty_spec_trusts_no_one() {
        for spec in ["", "  ", ",", " , "] {
            let parsed = proxies(spec);
            assert!(parsed.is_empty(), "{spec:?}");
            assert_eq!(parsed, TrustedProxies::none());
        }
        assert!(!TrustedProxies::none().contains(ip("127.0.0.1")));
    }

    #[test]
    fn the_documented_example_parses_and_matches() {
        let p = proxies("10.0.0.0/8, 127.0.0.1, ::1, fd00::/8");
        assert_eq!(p.to_string(), "10.0.0.0/8, 127.0.0.1/32, ::1/128, fd00::/8");
        for trusted in [
            "10.0.0.0",
            "10.255.255.255",
            "127.0.0.1",
            "::1",
            "fd12:3456::1",
        ] {
            assert!(p.contains(ip(trusted)), "{trusted}");
        }
        for untrusted in [
            "11.0.0.0",
            "9.255.255.255",
            "127.0.0.2",
            "::2",
            "fe00::1",
            "fc00::1",
        ] {
            assert!(!p.contains(ip(untrusted)), "{untrusted}");
        }
    }

    #[test]
    fn cidr_edges_slash_0_32_and_128() {
        let all_v4 = proxies("0.0.0.0/0");
        assert!(all_v4.contains(ip("0.0.0.0")));
        assert!(all_v4.contains(ip("255.255.255.255")));
        assert!(
            !all_v4.contains(ip("::1")),
            "an IPv4 block never matches IPv6"
        );

        let all_v6 = proxies("::/0");
        assert!(all_v6.contains(ip("::")));
        assert!(all_v6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        assert!(
            !all_v6.contains(ip("1.2.3.4")),
            "an IPv6 block never matches IPv4"
        );

        let host_v4 = proxies("192.168.1.7/32");
        assert!(host_v4.contains(ip("192.168.1.7")));
        assert!(!host_v4.contains(ip("192.168.1.6")));
        assert!(!host_v4.contains(ip("192.168.1.8")));

        let host_v6 = proxies("2001:db8::7/128");
        assert!(host_v6.contains(ip("2001:db8::7")));
        assert!(!host_v6.contains(ip("2001:db8::6")));
        assert!(!host_v6.contains(ip("2001:db8::8")));

        let odd = proxies("172.16.0.0/12, 2001:db8:8000::/33");
        assert!(odd.contains(ip("172.31.255.255")));
        assert!(!odd.contains(ip("172.32.0.0")));
        assert!(odd.contains(ip("2001:db8:ffff::1")));
        assert!(!odd.contains(ip("2001:db8:7fff::1")));
    }

    #[test]
    fn host_bits_in_a_block_are_ignored() {
        let p = proxies("10.1.2.3/8");
        assert_eq!(p.to_string(), "10.0.0.0/8");
        assert!(p.contains(ip("10.200.0.1")));
    }

    #[test]
    fn ipv4_mapped_addresses_match_as_ipv4() {
        let p = proxies("10.0.0.0/8");
        assert!(p.contains(ip("::ffff:10.1.2.3")));
        assert!(!p.contains(ip("::ffff:11.1.2.3")));

        let mapped_spec = proxies("::ffff:10.0.0.0/104, ::ffff:127.0.0.1");
        assert_eq!(mapped_spec.to_string(), "10.0.0.0/8, 127.0.0.1/32");
        assert!(mapped_spec.contains(ip("10.9.9.9")));
        assert!(mapped_spec.contains(ip("::ffff:127.0.0.1")));
    }

    #[test]
    fn bad_specs_are_refused_naming_the_entry() {
        for (spec, bad) in [
            ("10.0.0.0/8, localhost", "localhost"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("::1/129", "::1/129"),
            ("10.0.0.0/", "10.0.0.0/"),
            ("10.0.0.0/-1", "10.0.0.0/-1"),
            ("10.0.0.0/+8", "10.0.0.0/+8"),
            ("10.0.0.0/8/8", "10.0.0.0/8/8"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("10.0.0", "10.0.0"),
            ("/8", "/8"),
        ] {
            let err = TrustedProxies::parse(spec).unwrap_err();
            assert!(err.contains(&format!("`{bad}`")), "{spec:?}: {err}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_and_its_header_is_ignored() {
        let p = proxies("10.0.0.0/8");
        let peer = Some(ip("203.0.113.9"));
        assert_eq!(p.resolve(peer, &[]), peer);
        assert_eq!(p.resolve(peer, &["1.1.1.1"]), peer, "spoofed header");
        assert_eq!(p.resolve(peer, &["1.1.1.1, 10.0.0.1"]), peer);
        assert_eq!(TrustedProxies::none().resolve(peer, &["1.1.1.1"]), peer);
    }

    #[test]
    fn no_peer_means_no_client_ip() {
        assert_eq!(proxies("0.0.0.0/0").resolve(None, &["1.1.1.1"]), None);
    }

    #[test]
    fn a_trusted_peer_without_header_is_the_client() {
        let p = proxies("10.0.0.0/8");
        assert_eq!(p.resolve(Some(ip("10.0.0.1")), &[]), Some(ip("10.0.0.1")));
    }

    #[test]
    fn one_trusted_proxy_forwards_the_client() {
        let p = proxies("10.0.0.1");
        assert_eq!(
            p.resolve(Some(ip("10.0.0.1")), &["198.51.100.4"]),
            Some(ip("198.51.100.4"))
        );
    }

    #[test]
    fn a_chain_through_two_proxies_takes_the_first_untrusted_hop_from_the_right() {
        // client 198.51.100.4 → proxy 10.0.0.2 → proxy 10.0.0.1 → us. The client itself wrote
        // a fake 1.1.1.1 in front, which must not be believed.
        let p = proxies("10.0.0.0/24");
        let header = ["1.1.1.1, 198.51.100.4, 10.0.0.2"];
        assert_eq!(
            p.resolve(Some(ip("10.0.0.1")), &header),
            Some(ip("198.51.100.4"))
        );
        // The same hops split over several header lines, in order, read the same way.
        let lines = ["1.1.1.1", "198.51.100.4", "10.0.0.2"];
        assert_eq!(
            p.resolve(Some(ip("10.0.0.1")), &lines),
            Some(ip("198.51.100.4"))
        );
    }

    #[test]
    fn when_every_hop_is_trusted_the_leftmost_wins() {
        let p = proxies("10.0.0.0/8");
        assert_eq!(
            p.resolve(Some(ip("10.0.0.1")), &["10.0.0.3, 10.0.0.2"]),
            Some(ip("10.0.0.3"))
        );
    }

    #[test]
    fn garbage_stops_the_walk_at_the_last_trusted_address() {
        let p = proxies("10.0.0.0/8");
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(
            p.resolve(peer, &["1.1.1.1, unknown, 10.0.0.2"]),
            Some(ip("10.0.0.2"))
        );
        assert_eq!(p.resolve(peer, &["1.1.1.1, not-an-ip"]), peer);
        assert_eq!(p.resolve(peer, &["1.1.1.1,,"]), peer, "an empty hop");
        assert_eq!(p.resolve(peer, &[""]), peer, "an empty header");
    }

    #[test]
    fn hops_with_ports_and_brackets_are_addresses() {
        let p = proxies("10.0.0.0/8");
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(
            p.resolve(peer, &["198.51.100.4:5123"]),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            p.resolve(peer, &["[2001:db8::5]:443"]),
            Some(ip("2001:db8::5"))
        );
        assert_eq!(
            p.resolve(peer, &[" [2001:db8::5] "]),
            Some(ip("2001:db8::5"))
        );
    }

    #[test]
    fn ipv6_peers_and_hops() {
        let p = proxies("fd00::/8, ::1");
        assert_eq!(
            p.resolve(Some(ip("::1")), &["2001:db8::1, fd00::2"]),
            Some(ip("2001:db8::1"))
        );
        let untrusted = Some(ip("2001:db8::9"));
        assert_eq!(p.resolve(untrusted, &["2001:db8::1"]), untrusted);
    }

    #[test]
    fn mapped_peers_and_hops_come_out_as_ipv4() {
        let p = proxies("10.0.0.0/8");
        assert_eq!(
            p.resolve(Some(ip("::ffff:10.0.0.1")), &["::ffff:198.51.100.4"]),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            TrustedProxies::none().resolve(Some(ip("::ffff:203.0.113.1")), &[]),
            Some(ip("203.0.113.1"))
        );
    }

    #[test]
    fn client_ip_reads_the_peer_and_every_header_line() {
        let p = proxies("10.0.0.0/8");
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:40000".parse().unwrap())
            .append_header((X_FORWARDED_FOR, "1.1.1.1, 198.51.100.4"))
            .append_header((X_FORWARDED_FOR, "10.0.0.2"))
            .to_http_request();
        assert_eq!(p.client_ip(&req), Some(ip("198.51.100.4")));

        let spoofed = TestRequest::default()
            .peer_addr("203.0.113.9:40000".parse().unwrap())
            .insert_header((X_FORWARDED_FOR, "1.1.1.1"))
            .to_http_request();
        assert_eq!(p.client_ip(&spoofed), Some(ip("203.0.113.9")));

        let no_peer = TestRequest::default().to_http_request();
        assert_eq!(p.client_ip(&no_peer), None);
    }

    #[test]
    fn a_non_ascii_header_value_is_garbage() {
        let p = proxies("10.0.0.0/8");
        let req = TestRequest::default()
            .peer_addr("10.0.0.1:40000".parse().unwrap())
            .insert_header((
                X_FORWARDED_FOR,
                actix_web::http::header::HeaderValue::from_bytes(b"1.1.1.1, \xff").unwrap(),
            ))
            .to_http_request();
        assert_eq!(p.client_ip(&req), Some(ip("10.0.0.1")));
    }
}
