//! An https server on loopback that serves client ID metadata documents, with a
//! certificate from a certificate authority made here (`rcgen`), which introspectd is
//! told to trust through `registration.ca_file`.

use std::collections::HashMap;
use std::net::{Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use introspectd::config::Config;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Where the documents served by default send users back to.
pub const REDIRECT: &str = "http://127.0.0.1:7777/callback";

/// What the server answers on one path.
#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Sent without `Content-Length`, in chunks.
    pub chunked: bool,
    /// Waited before answering.
    pub delay: Duration,
}

impl Reply {
    pub fn json(body: &Value) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type", "application/json".to_owned())],
            body: body.to_string().into_bytes(),
            chunked: false,
            delay: Duration::ZERO,
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value.to_owned()));
        self
    }
}

/// An https server on loopback (127.0.0.1, and ::1 where the machine has it) with a
/// certificate for `localhost`, `127.0.0.1` and `::1` from a CA made here.
pub struct DocServer {
    pub port: u16,
    pub ca_file: tempfile::NamedTempFile,
    pub routes: Arc<Mutex<HashMap<String, Reply>>>,
    /// TCP connections accepted, on any address.
    pub connections: Arc<AtomicUsize>,
    /// Requests per path.
    pub hits: Arc<Mutex<HashMap<String, usize>>>,
}

impl DocServer {
    pub async fn start() -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "introspectd test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_params = rcgen::CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap();
        let leaf = leaf_params.signed_by(&leaf_key, &ca).unwrap();
        let ca_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(ca_file.path(), ca.pem()).unwrap();

        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(tls));
        let v4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let v6 = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port)))
            .await
            .ok();
        let server = DocServer {
            port,
            ca_file,
            routes: Arc::default(),
            connections: Arc::default(),
            hits: Arc::default(),
        };
        for listener in std::iter::once(v4).chain(v6) {
            let (acceptor, routes, connections, hits) = (
                acceptor.clone(),
                server.routes.clone(),
                server.connections.clone(),
                server.hits.clone(),
            );
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (acceptor, routes, hits) = (acceptor.clone(), routes.clone(), hits.clone());
                    tokio::spawn(async move {
                        if let Ok(tls) = acceptor.accept(stream).await {
                            answer(tls, &routes, &hits).await;
                        }
                    });
                }
            });
        }
        server
    }

    /// `https://localhost:PORT{path}`: a client id served here.
    pub fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }

    pub fn serve(&self, path: &str, reply: Reply) {
        self.routes.lock().unwrap().insert(path.to_owned(), reply);
    }

    /// Serves a good document for `path`, naming itself and [`REDIRECT`].
    pub fn serve_document(&self, path: &str, extra: Value) -> String {
        let client_id = self.url(path);
        let mut document = json!({
            "client_id": client_id,
            "client_name": "Doc Inspector",
            "redirect_uris": [REDIRECT],
            "client_uri": "https://inspector.example/",
        });
        for (name, value) in extra.as_object().unwrap() {
            document[name] = value.clone();
        }
        self.serve(path, Reply::json(&document));
        client_id
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Configuration that trusts this server: private networks allowed, its CA file.
    pub fn trusted(&self, config: &mut Config) {
        config.registration.allow_private_networks = true;
        config.registration.ca_file = Some(self.ca_file.path().to_owned());
        config.registration.max_scope = Some("mcp read".to_owned());
    }
}

/// Reads one request's head and answers it as its path's reply says (404 otherwise).
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    routes: &Mutex<HashMap<String, Reply>>,
    hits: &Mutex<HashMap<String, usize>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let reply = routes.lock().unwrap().get(&path).cloned();
    let reply = reply.unwrap_or(Reply {
        status: 404,
        headers: vec![("content-type", "text/plain".to_owned())],
        body: b"not found".to_vec(),
        chunked: false,
        delay: Duration::ZERO,
    });
    tokio::time::sleep(reply.delay).await;
    let mut out = format!("HTTP/1.1 {} X\r\nconnection: close\r\n", reply.status);
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if reply.chunked {
        out.push_str("transfer-encoding: chunked\r\n\r\n");
        let _ = stream.write_all(out.as_bytes()).await;
        for chunk in reply.body.chunks(1024) {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
            if stream.write_all(&framed).await.is_err() {
                return;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
    } else {
        out.push_str(&format!("content-length: {}\r\n\r\n", reply.body.len()));
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.write_all(&reply.body).await;
    }
    let _ = stream.shutdown().await;
}
