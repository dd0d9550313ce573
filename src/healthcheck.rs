//! `introspectd healthcheck`: asks a running server's `/healthz` whether it is up, for
//! container health checks in images that ship no HTTP client; over HTTPS when the
//! listener has TLS.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{
    CryptoProvider, aws_lc_rs, verify_tls12_signature, verify_tls13_signature,
};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{self, DigitallySignedStruct, SignatureScheme};

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

/// GETs `/healthz` of the server listening on `listen`, over HTTPS when `tls` is on;
/// `Ok` only for a 200 answer.
pub async fn healthcheck(listen: SocketAddr, tls: bool) -> Result<SocketAddr, String> {
    let addr = probe_address(listen);
    let scheme = if tls { "https" } else { "http" };
    let url = format!("{scheme}://{addr}/healthz");
    let status = tokio::time::timeout(TIMEOUT, get_healthz(addr, tls))
        .await
        .map_err(|_| format!("{url} did not answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{url}: {e}"))?;
    if status.is_success() {
        Ok(addr)
    } else {
        Err(format!("{url} answered {status}"))
    }
}

async fn get_healthz(addr: SocketAddr, tls: bool) -> Result<hyper::StatusCode, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| with_sources(&e))?;
    if !tls {
        return send_get(TokioIo::new(stream), addr).await;
    }
    let provider = Arc::new(aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    let name = ServerName::IpAddress(addr.ip().into());
    let stream = TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS: {}", with_sources(&e)))?;
    send_get(TokioIo::new(stream), addr).await
}

async fn send_get<I>(io: I, addr: SocketAddr) -> Result<hyper::StatusCode, String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| with_sources(&e))?;
    tokio::spawn(connection);
    let request = hyper::Request::get("/healthz")
        .header(hyper::header::HOST, addr.to_string())
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| with_sources(&e))?;
    Ok(response.status())
}

/// The probe reaches its own server on loopback, whose certificate names the public
/// host, and sends nothing secret nor trusts anything but the status: any certificate
/// is accepted, while the handshake's signatures are still checked against it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
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
