//! Fetching a client ID metadata document (or a `jwks_uri`) without letting a client id
//! turn this server against its own network: https only, no redirects, no proxy, 5
//! seconds in all, at most 5 KiB read, JSON only, and only from addresses that are
//! public (unless `registration.allow_private_networks`). The address checked is the
//! one connected to: names are resolved by [`GuardedResolver`], which hands the
//! connector only the addresses that passed, so a name that resolves once to a public
//! and then to a private address (DNS rebinding) cannot slip past. An IP address in the
//! URL is never resolved, so it is checked before the request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::{self, HeaderMap, StatusCode, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::document::Refusal;
use crate::policy::address::{host_allowed, is_public};

/// Most bytes of a document read.
pub const MAX_BYTES: usize = 5 * 1024;

/// Longest a fetch may take, connection and body included.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Where documents may come from.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// `registration.allow_private_networks`.
    pub private_networks: bool,
    /// `registration.allowed_hosts`; empty: any.
    pub allowed_hosts: Vec<String>,
}

impl Reach {
    fn address_allowed(&self, ip: IpAddr) -> bool {
        self.private_networks || is_public(ip)
    }
}

/// Resolves names for the document client, keeping only the addresses [`Reach`]
/// allows; none left is an error, so nothing is connected to.
struct GuardedResolver {
    reach: Arc<Reach>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let reach = self.reach.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found
                .filter(|addr| reach.address_allowed(addr.ip()))
                .collect();
            if allowed.is_empty() {
                return Err("the name resolves to no public address".into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client for documents, and what it may reach.
pub struct Fetcher {
    client: reqwest::Client,
    reach: Arc<Reach>,
    /// Requests handed to the HTTP client since start-up: what was refused before
    /// never counts.
    started: AtomicU64,
}

/// A fetched JSON body and its `Cache-Control`.
pub struct Fetched {
    pub body: Vec<u8>,
    pub cache_control: Option<String>,
}

impl Fetcher {
    /// `extra_roots`: PEM certificates trusted beside the system's (`registration.ca_file`).
    pub fn new(reach: Reach, extra_roots: &[u8]) -> Result<Self, String> {
        let reach = Arc::new(reach);
        let roots = if extra_roots.is_empty() {
            Vec::new()
        } else {
            reqwest::Certificate::from_pem_bundle(extra_roots)
                .map_err(|e| format!("registration.ca_file: not PEM certificates: {e}"))?
        };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .https_only(true)
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .pool_max_idle_per_host(0)
            .user_agent(concat!("introspectd/", env!("CARGO_PKG_VERSION")))
            .dns_resolver(Arc::new(GuardedResolver {
                reach: reach.clone(),
            }))
            .tls_certs_merge(roots)
            .build()
            .map_err(|e| format!("registration: the document client cannot start: {e}"))?;
        Ok(Fetcher {
            client,
            reach,
            started: AtomicU64::new(0),
        })
    }

    /// Requests handed to the HTTP client since start-up.
    pub fn started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Whether `url` may be fetched at all: its host allowed, and an IP address in it
    /// (which is not resolved, so never meets the resolver) public. Checked before any
    /// lookup or connection.
    pub fn admit(&self, url: &Url) -> Result<(), Refusal> {
        let host = url
            .host()
            .ok_or_else(|| Refusal::new("the URL has no host"))?;
        let name = url.host_str().unwrap_or_default();
        if !host_allowed(&self.reach.allowed_hosts, name) {
            return Err(Refusal::new(
                "the host is not in registration.allowed_hosts",
            ));
        }
        let literal = match host {
            Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
            Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
            Host::Domain(_) => None,
        };
        if literal.is_some_and(|ip| !self.reach.address_allowed(ip)) {
            return Err(Refusal::new("the address is not public"));
        }
        Ok(())
    }

    /// GETs `url` as JSON within every limit.
    pub async fn fetch(&self, url: &Url) -> Result<Fetched, Refusal> {
        self.admit(url)?;
        self.started.fetch_add(1, Ordering::Relaxed);
        tokio::time::timeout(TIMEOUT, self.get(url))
            .await
            .unwrap_or_else(|_| Err(Refusal::unavailable("the fetch took longer than 5 seconds")))
    }

    async fn get(&self, url: &Url) -> Result<Fetched, Refusal> {
        let response = self
            .client
            .get(url.clone())
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Refusal::unavailable(format!("the fetch failed: {}", describe(&e))))?;
        let status = response.status();
        if status.is_redirection() {
            return Err(Refusal::new(format!(
                "the server answered {status}; redirects are not followed"
            )));
        }
        if is_temporary(status) {
            return Err(Refusal::unavailable(format!(
                "the server answered {status}"
            )));
        }
        if status != StatusCode::OK {
            return Err(Refusal::new(format!("the server answered {status}")));
        }
        if !is_json(response.headers()) {
            return Err(Refusal::new("the response is not application/json"));
        }
        if response
            .content_length()
            .is_some_and(|len| len > MAX_BYTES as u64)
        {
            return Err(Refusal::new("the document is larger than 5 KiB"));
        }
        let cache_control = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = http::Response::from(response).into_body();
        let body = match Limited::new(body, MAX_BYTES).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(err) if err.is::<LengthLimitError>() => {
                return Err(Refusal::new("the document is larger than 5 KiB"));
            }
            Err(err) => {
                let why = match err.downcast_ref::<reqwest::Error>() {
                    Some(err) => describe(err),
                    None => err.to_string(),
                };
                return Err(Refusal::unavailable(format!(
                    "reading the document failed: {why}"
                )));
            }
        };
        Ok(Fetched {
            body,
            cache_control,
        })
    }
}

/// A status that says the server cannot answer now, not what the document is: a server
/// error, 429 or 408.
fn is_temporary(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `application/json`, or a `+json` type.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|essence| {
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
}

/// A reqwest error with its causes, for the log: which step failed and why (a refused
/// address, a certificate, a timeout), never anything the response carried.
fn describe(err: &reqwest::Error) -> String {
    let mut out = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "could not connect".to_owned()
    } else {
        "request error".to_owned()
    };
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(reach: Reach, url: &str) -> Result<(), Refusal> {
        let fetcher = Fetcher::new(reach, &[]).unwrap();
        fetcher.admit(&Url::parse(url).unwrap())
    }

    #[test]
    fn addresses_in_the_url_are_checked_before_any_request() {
        for url in [
            "https://127.0.0.1/c",
            "https://10.0.0.1/c",
            "https://169.254.169.254/c",
            "https://[::1]/c",
            "https://[::ffff:7f00:1]/c",
            "https://[::ffff:a9fe:a9fe]/c",
            "https://[fd00::1]/c",
            "https://100.64.0.1/c",
        ] {
            let refusal = admitted(Reach::default(), url).unwrap_err();
            assert!(
                refusal.to_string().contains("not public"),
                "{url}: {refusal}"
            );
            let private = Reach {
                private_networks: true,
                ..Reach::default()
            };
            assert!(admitted(private, url).is_ok(), "{url}");
        }
        assert!(admitted(Reach::default(), "https://93.184.215.14/c").is_ok());
        assert!(admitted(Reach::default(), "https://app.example/c").is_ok());
    }

    #[test]
    fn allowed_hosts_come_before_addresses() {
        let reach = Reach {
            private_networks: true,
            allowed_hosts: vec!["*.example.com".to_owned()],
        };
        assert!(admitted(reach.clone(), "https://a.example.com/c").is_ok());
        for url in ["https://example.com/c", "https://127.0.0.1/c"] {
            let refusal = admitted(reach.clone(), url).unwrap_err();
            assert!(
                refusal.to_string().contains("allowed_hosts"),
                "{url}: {refusal}"
            );
        }
    }

    #[test]
    fn only_temporary_statuses_leave_the_document_standing() {
        for (status, temporary) in [
            (500, true),
            (503, true),
            (429, true),
            (408, true),
            (404, false),
            (410, false),
            (403, false),
            (200, false),
        ] {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(is_temporary(status), temporary, "{status}");
        }
    }

    #[test]
    fn only_json_is_read() {
        let mut headers = HeaderMap::new();
        assert!(!is_json(&headers));
        for (value, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/vnd.example+json", true),
            ("text/html", false),
            ("text/plain", false),
            ("application/jsonp", false),
        ] {
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            assert_eq!(is_json(&headers), json, "{value}");
        }
    }
}
