//! Where a client ID metadata document may be fetched from: the hosts an operator
//! allows (`registration.allowed_hosts`) and the addresses that are public. Deny by
//! default: an address is fetched from only when it is global unicast and outside every
//! special-purpose range (RFC 6890 and its IANA registries), so a client id cannot make
//! this server reach its own network, the cloud's metadata service or itself.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{Ipv4Net, Ipv6Net};

/// IPv4 ranges never fetched from (IANA IPv4 Special-Purpose Address Registry), with
/// multicast and the reserved class E.
const V4_REFUSED: [(Ipv4Addr, u8); 16] = [
    (Ipv4Addr::new(0, 0, 0, 0), 8),       // "this network", unspecified
    (Ipv4Addr::new(10, 0, 0, 0), 8),      // private (RFC 1918)
    (Ipv4Addr::new(100, 64, 0, 0), 10),   // shared address space, CGNAT (RFC 6598)
    (Ipv4Addr::new(127, 0, 0, 0), 8),     // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),  // link-local, cloud metadata services
    (Ipv4Addr::new(172, 16, 0, 0), 12),   // private (RFC 1918)
    (Ipv4Addr::new(192, 0, 0, 0), 24),    // IETF protocol assignments
    (Ipv4Addr::new(192, 0, 2, 0), 24),    // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 88, 99, 0), 24),  // 6to4 relay anycast (deprecated)
    (Ipv4Addr::new(192, 168, 0, 0), 16),  // private (RFC 1918)
    (Ipv4Addr::new(198, 18, 0, 0), 15),   // benchmarking (RFC 2544)
    (Ipv4Addr::new(198, 51, 100, 0), 24), // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),  // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),     // multicast
    (Ipv4Addr::new(240, 0, 0, 0), 4),     // reserved, and the broadcast address
    (Ipv4Addr::new(255, 255, 255, 255), 32),
];

/// IPv6 ranges inside global unicast (2000::/3) never fetched from; everything outside
/// 2000::/3 (loopback, unspecified, IPv4-mapped and -compatible forms, NAT64, ULA,
/// link-local, site-local, multicast, discard) is refused before these are looked at.
const V6_REFUSED: [(Ipv6Addr, u8); 5] = [
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23), // IETF protocol assignments, Teredo
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32), // documentation
    (Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16), // 6to4: reaches any IPv4 address
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20), // documentation (RFC 9637)
    (Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0), 16), // SRv6 SIDs
];

/// Whether `ip` is a public address this server may fetch a document from.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => v4_public(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            // An IPv4-mapped address reaches the IPv4 host: judged as it. Any other
            // form embedding IPv4 lies outside 2000::/3 and is refused below.
            Some(v4) => v4_public(v4),
            None => v6_public(ip),
        },
    }
}

fn v4_public(ip: Ipv4Addr) -> bool {
    !V4_REFUSED
        .iter()
        .any(|(net, len)| Ipv4Net::new(*net, *len).is_ok_and(|net| net.contains(&ip)))
}

fn v6_public(ip: Ipv6Addr) -> bool {
    let global_unicast = Ipv6Net::new(Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3)
        .is_ok_and(|net| net.contains(&ip));
    global_unicast
        && !V6_REFUSED
            .iter()
            .any(|(net, len)| Ipv6Net::new(*net, *len).is_ok_and(|net| net.contains(&ip)))
}

/// Whether `pattern` is a valid `registration.allowed_hosts` entry: a host name, or
/// `*.` followed by one (any name below it, not the name itself), in lower case.
pub fn valid_host_pattern(pattern: &str) -> bool {
    let name = pattern.strip_prefix("*.").unwrap_or(pattern);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Whether `host` (as a URL carries it, in lower case) is allowed by `patterns`; every
/// host is when there are none.
pub fn host_allowed(patterns: &[String], host: &str) -> bool {
    patterns.is_empty()
        || patterns
            .iter()
            .any(|pattern| match pattern.strip_prefix("*.") {
                Some(parent) => host
                    .strip_suffix(parent)
                    .is_some_and(|below| below.len() > 1 && below.ends_with('.')),
                None => host == pattern,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(ip: &str) -> bool {
        is_public(ip.parse().unwrap())
    }

    #[test]
    fn non_public_addresses_are_refused_in_every_form() {
        for ip in [
            "127.0.0.1",
            "127.255.0.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "192.0.0.8",
            "192.0.2.1",
            "198.18.0.1",
            "198.19.255.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "2002:7f00:1::1",
            "3fff::1",
        ] {
            assert!(!public(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "::ffff:93.184.215.14",
            "2606:4700::1111",
            "2a00:1450:4001::200e",
        ] {
            assert!(public(ip), "{ip} is public");
        }
    }

    #[test]
    fn host_patterns_match_names_below_or_exactly() {
        let patterns = vec!["*.example.com".to_owned(), "apps.example.org".to_owned()];
        assert!(host_allowed(&patterns, "a.example.com"));
        assert!(host_allowed(&patterns, "a.b.example.com"));
        assert!(host_allowed(&patterns, "apps.example.org"));
        for refused in [
            "example.com",
            "evilexample.com",
            "a.example.com.evil.net",
            "x.apps.example.org",
            "127.0.0.1",
        ] {
            assert!(!host_allowed(&patterns, refused), "{refused}");
        }
        assert!(host_allowed(&[], "anything.example"));
        for valid in ["*.example.com", "example.com", "a-b.c1.example"] {
            assert!(valid_host_pattern(valid), "{valid}");
        }
        for invalid in [
            "",
            "*",
            "*.",
            "a.*.com",
            "Example.com",
            "a..b",
            "-a.com",
            "a.com:443",
        ] {
            assert!(!valid_host_pattern(invalid), "{invalid}");
        }
    }
}
