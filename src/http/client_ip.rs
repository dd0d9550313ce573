//! The address a request comes from: the socket peer, unless the peer is a trusted
//! proxy, in which case the proxy chain in the one header the operator named
//! (`http.client_ip_header`: `X-Forwarded-For`, or `Forwarded` of RFC 7239) is read from
//! the right, skipping trusted hops. Only the hops our own proxies appended are believed,
//! so a client cannot choose its address by sending the header itself; the other header
//! is never read, since a proxy that does not set it passes a client's copy through
//! untouched.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::header::FORWARDED;
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;
use forwarded_header_value::ForwardedStanza;
use ipnet::IpNet;

use crate::config::ClientIpHeader;
use crate::error::ApiError;

/// The resolved address of the requesting client, set on every request by [`resolve`];
/// handlers take it as an extractor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address [`resolve`] recorded on a request.
    pub fn of<B>(request: &axum::http::Request<B>) -> Result<Self, ApiError> {
        Self::from_extensions(request.extensions())
    }

    fn from_extensions(extensions: &Extensions) -> Result<Self, ApiError> {
        extensions
            .get::<ClientIp>()
            .copied()
            .ok_or_else(|| ApiError::Internal("no client address resolved".to_owned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Self::from_extensions(&parts.extensions)
    }
}

/// Which peers are proxies whose forwarding headers we believe.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
    header: ClientIpHeader,
    /// Whether forwarding headers from an untrusted peer were already reported.
    warned: Arc<AtomicBool>,
}

impl TrustedProxies {
    /// Proxies in `nets`, whose `header` alone names the client.
    pub fn new(nets: Vec<IpNet>, header: ClientIpHeader) -> Self {
        TrustedProxies {
            nets,
            header,
            warned: Arc::default(),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client address of a request from `peer` carrying `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            self.warn_untrusted(peer, headers);
            return peer;
        }
        let hops = match self.header {
            ClientIpHeader::Forwarded => forwarded_hops(headers),
            ClientIpHeader::XForwardedFor => x_forwarded_for_hops(headers),
        };
        // From the nearest hop outwards: the first one we do not trust is the client.
        // A hop we cannot read ends the walk at the last proxy that vouched for it.
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            let Some(ip) = hop.map(canonical) else {
                return client;
            };
            client = ip;
            if !self.trusts(ip) {
                return ip;
            }
        }
        client
    }
}

impl TrustedProxies {
    /// Forwarding headers from a peer we do not trust are ignored, which is right for a
    /// client and wrong for an ingress left out of `rate_limit.trusted_proxies`: then
    /// every user shares the ingress's address and its budgets. Said once per process.
    fn warn_untrusted(&self, peer: IpAddr, headers: &HeaderMap) {
        let sent = [X_FORWARDED_FOR, FORWARDED.as_str()]
            .into_iter()
            .find(|name| headers.contains_key(*name));
        let Some(header) = sent else {
            return;
        };
        if self.warned.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(
            %peer,
            header,
            "ignoring {header} from {peer}, which is not in rate_limit.trusted_proxies: \
             behind a proxy or ingress every client then shares its address, and its rate \
             and sign-in budgets; list the proxy's addresses in rate_limit.trusted_proxies \
             (said once)"
        );
    }
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Every `X-Forwarded-For` element, in order, across repeated headers.
fn x_forwarded_for_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    elements(headers, X_FORWARDED_FOR)
        .map(|element| parse_address(element.trim()))
        .collect()
}

/// The `for=` address of every `Forwarded` element, in order.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    elements(headers, FORWARDED.as_str())
        .map(|element| {
            ForwardedStanza::from_str(element.trim())
                .ok()
                .and_then(|stanza| stanza.forwarded_for_ip())
        })
        .collect()
}

fn elements<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.to_str().unwrap_or("\u{0}").split(','))
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:80`, `::1` or `[::1]:80`.
fn parse_address(text: &str) -> Option<IpAddr> {
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// Middleware: resolves the client address once and records it on the request.
pub async fn resolve(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
    let ip = proxies.resolve(peer, request.headers());
    request.extensions_mut().insert(ClientIp(ip));
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn proxies(nets: &[&str]) -> TrustedProxies {
        with_header(nets, ClientIpHeader::XForwardedFor)
    }

    fn with_header(nets: &[&str], header: ClientIpHeader) -> TrustedProxies {
        TrustedProxies::new(nets.iter().map(|n| n.parse().unwrap()).collect(), header)
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        assert_eq!(p.resolve(ip("203.0.113.9"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_peer_names_the_nearest_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        // The client forged the first entry; our proxies appended the rest.
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.1.1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_header_is_read_the_same_way() {
        let p = with_header(&["10.0.0.0/8"], ClientIpHeader::Forwarded);
        let h = headers(&[(
            "forwarded",
            "for=6.6.6.6, for=\"[2001:db8::7]:4711\";proto=https, for=10.2.2.2",
        )]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("2001:db8::7"));
    }

    #[test]
    fn only_the_configured_header_is_read() {
        // The proxy appends to X-Forwarded-For and passes the client's own `Forwarded`.
        let h = headers(&[
            ("forwarded", "for=192.0.2.66"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        let xff = with_header(&["10.0.0.0/8"], ClientIpHeader::XForwardedFor);
        assert_eq!(xff.resolve(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let forwarded_only = headers(&[("forwarded", "for=192.0.2.66")]);
        assert_eq!(
            xff.resolve(ip("10.0.0.2"), &forwarded_only),
            ip("10.0.0.2"),
            "an injected Forwarded never names the client"
        );
        // And the other way round.
        let h = headers(&[
            ("x-forwarded-for", "192.0.2.66"),
            ("forwarded", "for=198.51.100.7"),
        ]);
        let fwd = with_header(&["10.0.0.0/8"], ClientIpHeader::Forwarded);
        assert_eq!(fwd.resolve(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        let xff_only = headers(&[("x-forwarded-for", "192.0.2.66")]);
        assert_eq!(fwd.resolve(ip("10.0.0.2"), &xff_only), ip("10.0.0.2"));
    }

    #[test]
    fn repeated_headers_form_one_chain() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-for", "10.1.1.1"),
        ]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn garbage_on_the_left_cannot_hide_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "not-an-ip, 198.51.100.7")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("198.51.100.7"));
        // Unreadable nearest hop: the proxy itself is the best we know.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, junk")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("10.0.0.2"));
    }

    #[test]
    fn trusted_peer_without_header_is_the_client() {
        let p = proxies(&["127.0.0.1/32"]);
        assert_eq!(
            p.resolve(ip("127.0.0.1"), &HeaderMap::new()),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn all_hops_trusted_gives_the_farthest() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.1.1.1")]);
        assert_eq!(p.resolve(ip("10.0.0.2"), &h), ip("10.9.9.9"));
    }

    #[test]
    fn mapped_ipv6_matches_ipv4_ranges() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(p.resolve(ip("::ffff:10.0.0.2"), &h), ip("198.51.100.7"));
    }
}
