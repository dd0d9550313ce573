//! `introspectd healthcheck`: asks a running server's `/healthz` whether it is up, for
//! container health checks in images that ship no HTTP client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// How long the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(3);

/// Where to reach a server listening on `listen`: a wildcard address is reached on the
/// loopback address of its family.
pub fn probe_address(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

/// GETs `/healthz` of the server listening on `listen`; `Ok` only for a 200 answer.
pub async fn healthcheck(listen: SocketAddr) -> Result<SocketAddr, String> {
    let addr = probe_address(listen);
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let uri = format!("http://{addr}/healthz")
        .parse()
        .map_err(|e| format!("bad address {addr}: {e}"))?;
    let response = tokio::time::timeout(TIMEOUT, client.get(uri))
        .await
        .map_err(|_| format!("http://{addr}/healthz did not answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("http://{addr}/healthz: {}", with_sources(&e)))?;
    if response.status().is_success() {
        Ok(addr)
    } else {
        Err(format!(
            "http://{addr}/healthz answered {}",
            response.status()
        ))
    }
}

/// An error and its causes on one line: hyper's own message alone says little.
fn with_sources(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_addresses_are_probed_on_loopback() {
        let v4: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(probe_address(v4).to_string(), "127.0.0.1:8080");
        let v6: SocketAddr = "[::]:9000".parse().unwrap();
        assert_eq!(probe_address(v6).to_string(), "[::1]:9000");
        let specific: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(probe_address(specific), specific);
    }
}
