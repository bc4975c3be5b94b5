//! The client's address behind trusted proxies: `X-Forwarded-For` and
//! `Forwarded` (RFC 7239) are believed only when the connection comes from
//! an address in `[server] trusted_proxies`, and then only as far as the
//! chain of trusted hops goes, so a client cannot choose its `aws:SourceIp`
//! by sending the header itself.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Parses `[server] trusted_proxies`: CIDRs (`10.0.0.0/8`) or single
/// addresses (`127.0.0.1`, taken as /32 or /128).
pub fn parse_trusted(list: &[String]) -> Result<Vec<IpNet>, String> {
    list.iter()
        .map(|s| {
            let s = s.trim();
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not an address or CIDR"))
        })
        .collect()
}

/// The hops a request claims, nearest last: `X-Forwarded-For` entries, or
/// else the `for=` parameters of `Forwarded`. Unparsable entries end the
/// chain (nothing beyond them is believed).
fn claimed_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if !xff.is_empty() {
        return xff.into_iter().map(parse_node).collect();
    }
    headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (k, v) = pair.trim().split_once('=')?;
                k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
            })
        })
        .map(parse_node)
        .collect()
}

/// One node of a forwarding header: an address, optionally quoted,
/// bracketed (IPv6) or with a port.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim().trim_matches('"');
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// The client's address: the peer, unless the peer is a trusted proxy, in
/// which case the forwarding chain is walked from the nearest hop back while
/// the hops are trusted; the first untrusted (or the farthest) hop is the
/// client.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for hop in claimed_hops(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            None => break,
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        m
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn headers_are_believed_only_from_trusted_proxies() {
        let trusted = parse_trusted(&["10.0.0.0/8".into(), "192.0.2.7".into()]).unwrap();
        let xff = h(&[("x-forwarded-for", "203.0.113.5")]);
        // A client that sends the header itself is not believed.
        assert_eq!(
            client_ip(ip("198.51.100.1"), &xff, &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(client_ip(ip("10.1.2.3"), &xff, &trusted), ip("203.0.113.5"));
        assert_eq!(
            client_ip(ip("192.0.2.7"), &xff, &trusted),
            ip("203.0.113.5")
        );
        // Without trusted proxies the peer is the client.
        assert_eq!(client_ip(ip("10.1.2.3"), &xff, &[]), ip("10.1.2.3"));
    }

    #[test]
    fn the_chain_is_walked_back_over_trusted_hops_only() {
        let trusted = parse_trusted(&["10.0.0.0/8".into()]).unwrap();
        // The client forged the first entry; the proxies appended the rest.
        let xff = h(&[("x-forwarded-for", "1.2.3.4, 203.0.113.5, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &xff, &trusted), ip("203.0.113.5"));
        let split = h(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "203.0.113.5"),
        ]);
        assert_eq!(
            client_ip(ip("10.0.0.1"), &split, &trusted),
            ip("203.0.113.5")
        );
        // An unparsable hop ends the chain at the last good one.
        let junk = h(&[("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.9")]);
        assert_eq!(client_ip(ip("10.0.0.1"), &junk, &trusted), ip("10.0.0.9"));
    }

    #[test]
    fn forwarded_header_forms() {
        let trusted = parse_trusted(&["127.0.0.0/8".into()]).unwrap();
        let fwd = h(&[(
            "forwarded",
            "for=192.0.2.60;proto=http;by=203.0.113.43, for=\"[2001:db8:cafe::17]:4711\"",
        )]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &fwd, &trusted),
            ip("2001:db8:cafe::17")
        );
        let one = h(&[("forwarded", "for=198.51.100.17:8080")]);
        assert_eq!(
            client_ip(ip("127.0.0.1"), &one, &trusted),
            ip("198.51.100.17")
        );
        assert!(parse_trusted(&["not-a-net".into()]).is_err());
    }
}
