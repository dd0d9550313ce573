//! HTTPS on the main listener: rustls with the configured PEM certificate chain and
//! private key, HTTP/2 and HTTP/1.1 offered by ALPN. Both files are read at start-up,
//! where an unreadable file or a key that does not belong to the certificate stops the
//! service, and again on `SIGHUP`: connections already open keep the certificate they
//! were made with, new ones get the new pair, and a pair that fails to load leaves the
//! one in use in place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{self, ServerConfig};

use crate::config::TlsConfig;

/// ALPN protocol ids, most preferred first.
pub const ALPN_H2: &[u8] = b"h2";
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("http.tls.{key}: cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("http.tls.cert_file: {} holds no PEM certificate", path.display())]
    NoCertificate { path: PathBuf },
    #[error("http.tls.cert_file: {} is not a PEM certificate chain ({why})", path.display())]
    BadCertificate { path: PathBuf, why: String },
    #[error(
        "http.tls.key_file: {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        path.display()
    )]
    NoKey { path: PathBuf },
    #[error("http.tls.key_file: {} is not a usable private key ({why})", path.display())]
    BadKey { path: PathBuf, why: String },
    #[error(
        "http.tls: the key in {} does not belong to the certificate in {}",
        key.display(),
        cert.display()
    )]
    Mismatch { cert: PathBuf, key: PathBuf },
}

/// The certificate and key in use, swapped whole on reload.
pub struct Certificates {
    files: TlsConfig,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for Certificates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certificates")
            .field("cert_file", &self.files.cert_file)
            .field("key_file", &self.files.key_file)
            .finish_non_exhaustive()
    }
}

impl Certificates {
    /// Reads the configured pair; fails when a file is unreadable or the pair does not match.
    pub fn load(files: &TlsConfig) -> Result<Arc<Self>, TlsError> {
        let pair = read_pair(files)?;
        Ok(Arc::new(Certificates {
            files: files.clone(),
            current: RwLock::new(Arc::new(pair)),
        }))
    }

    /// Reads the files again; on success new connections get the new pair.
    pub fn reload(&self) -> Result<(), TlsError> {
        let pair = read_pair(&self.files)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(pair);
        Ok(())
    }

    /// The rustls configuration of the listener: this pair (as it is at each
    /// handshake), TLS 1.2 and 1.3, HTTP/2 and HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the default provider supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![ALPN_H2.to_vec(), ALPN_HTTP1.to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for Certificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_owned(),
        source,
    })
}

/// The chain and key of `files`, checked to belong together.
fn read_pair(files: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    let (cert_path, key_path) = (&files.cert_file, &files.key_file);
    let chain = CertificateDer::pem_slice_iter(&read("cert_file", cert_path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCertificate {
            path: cert_path.clone(),
            why: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert_path.clone(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(&read("key_file", key_path)?).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::NoKey {
            path: key_path.clone(),
        },
        other => TlsError::BadKey {
            path: key_path.clone(),
            why: other.to_string(),
        },
    })?;
    let provider = aws_lc_rs::default_provider();
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadKey {
                path: key_path.clone(),
                why: e.to_string(),
            })?;
    let pair = CertifiedKey::new(chain, signing_key);
    // A key whose public half cannot be compared is refused too: serving it would fail
    // every handshake instead of the start-up.
    pair.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
            cert: cert_path.clone(),
            key: key_path.clone(),
        },
        other => TlsError::BadCertificate {
            path: cert_path.clone(),
            why: other.to_string(),
        },
    })?;
    Ok(pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair_in(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let cert_file = dir.join(format!("{name}.crt"));
        let key_file = dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.cert.pem()).unwrap();
        std::fs::write(&key_file, cert.signing_key.serialize_pem()).unwrap();
        (cert_file, key_file)
    }

    fn files(cert_file: &Path, key_file: &Path) -> TlsConfig {
        TlsConfig {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
        }
    }

    #[test]
    fn a_matching_pair_loads_and_offers_h2_then_http1() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair_in(dir.path(), "a");
        let certificates = Certificates::load(&files(&cert, &key)).unwrap();
        let config = certificates.server_config();
        assert_eq!(
            config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn unreadable_empty_and_mismatched_pairs_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_a, key_a) = pair_in(dir.path(), "a");
        let (_, key_b) = pair_in(dir.path(), "b");
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();

        let err = Certificates::load(&files(&missing, &key_a)).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Read {
                    key: "cert_file",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("missing.pem"), "{err}");
        let err = Certificates::load(&files(&cert_a, &missing)).unwrap_err();
        assert!(
            matches!(
                err,
                TlsError::Read {
                    key: "key_file",
                    ..
                }
            ),
            "{err}"
        );
        let err = Certificates::load(&files(&empty, &key_a)).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err}");
        let err = Certificates::load(&files(&cert_a, &empty)).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        // The certificate given as the key.
        let err = Certificates::load(&files(&cert_a, &cert_a)).unwrap_err();
        assert!(matches!(err, TlsError::NoKey { .. }), "{err}");
        let err = Certificates::load(&files(&cert_a, &key_b)).unwrap_err();
        assert!(matches!(err, TlsError::Mismatch { .. }), "{err}");
        assert!(err.to_string().contains("does not belong"), "{err}");
    }

    #[test]
    fn a_failed_reload_keeps_the_pair_in_use() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair_in(dir.path(), "a");
        let certificates = Certificates::load(&files(&cert, &key)).unwrap();
        let before = certificates.current.read().unwrap().cert[0].clone();
        std::fs::write(&key, "garbage").unwrap();
        assert!(certificates.reload().is_err());
        assert_eq!(certificates.current.read().unwrap().cert[0], before);
        let (cert_b, key_b) = pair_in(dir.path(), "b");
        std::fs::rename(cert_b, &cert).unwrap();
        std::fs::rename(key_b, &key).unwrap();
        certificates.reload().unwrap();
        assert_ne!(certificates.current.read().unwrap().cert[0], before);
    }
}
