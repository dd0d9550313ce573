//! Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document, as the
//! MCP authorization specification 2025-11-25 uses them): a `client_id` that is an https
//! URL names a JSON document, published by the client, that says what the client is.
//! The document is fetched ([`fetch`], guarded against reaching private networks),
//! checked like a registration ([`document`]), and kept as a client of origin
//! `metadata_document`, so consents, codes and tokens work as for any client, `client
//! list` shows it, and `client disable` and `client delete` act on it.
//!
//! Each instance remembers for how long a document holds (its `Cache-Control`, between 5
//! minutes and 24 hours) and fetches it again after that: a refetch rewrites the stored
//! client from the new document (keeping `disabled`, consents and tokens). A refetch
//! whose answer is definite (404, a mismatched `client_id`, an invalid document) leaves
//! the client unknown until a fetch succeeds again, [`RETRY_SECONDS`] later at the
//! soonest. One that gets no answer (the host unreachable, slow, a 5xx) or is not made
//! for a limit of ours leaves the last good document standing, for up to
//! [`STALE_SECONDS`] past its cache time, and is tried again [`RETRY_SECONDS`] later. A
//! deleted client comes back only with a fresh fetch.
//!
//! Fetches are shared by concurrent requests for the same document and limited, so
//! `/authorize` cannot be used to hammer a third party, and the limits fall on whoever
//! asks for the fetches: per requesting address, per host (a refetch of a document
//! known good is not counted there, so ids made up on a host cannot keep its real
//! documents from being refetched), and in number at once, where a request waits up to
//! [`QUEUE_WAIT`] for its turn.

pub mod document;
pub mod fetch;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use quick_cache::sync::Cache;
use tokio::sync::{Semaphore, SemaphorePermit};
use url::Url;

use crate::config::Config;
use crate::limits::{Budget, address_key};
use crate::registration::UNNAMED;
use crate::secret::SecretHash;
use crate::store::{ClientPolicy, ClientRecord, Store, StoreError};
use crate::vocabulary::{AuthMethod, ClientOrigin, InactiveBudget};
use document::{Document, Keys, cache_seconds, document_url, read_document};
pub use document::{Refusal, is_document_id};
use fetch::{Fetcher, Reach};

/// Seconds a refused or unfetchable document is not asked for again: long enough to
/// spare its host a request per sign-in attempt, short enough to recover quickly.
pub const RETRY_SECONDS: i64 = 60;

/// Documents remembered at most.
const MAX_DOCUMENTS: usize = 10_000;

/// Seconds past its cache time the last good document stands in for a refetch that got
/// no answer or was not made for a limit of ours.
pub const STALE_SECONDS: i64 = 86_400;

/// Fetches under way at most; past this, a request waits for one to end.
pub const MAX_FETCHES_AT_ONCE: usize = 8;

/// Longest a request waits for a fetch to end when [`MAX_FETCHES_AT_ONCE`] are under
/// way; then it is not fetched.
pub const QUEUE_WAIT: Duration = Duration::from_secs(2);

/// First fetches per host per minute at most (refetches of documents known good are not
/// counted).
pub const FETCHES_PER_HOST_PER_MINUTE: u32 = 30;

/// Fetches one address (an IPv6 /64) may cause per minute, while rate limiting is on.
pub const FETCHES_PER_ADDRESS_PER_MINUTE: u32 = 10;

/// What the secret hash column holds for a metadata-document client: no PHC string, so
/// no secret ever verifies against it.
const NO_SECRET: &str = "!metadata-document";

/// What an instance knows of one document.
#[derive(Clone, Copy, Debug)]
struct Known {
    /// Until when (seconds since the epoch) this holds.
    until: i64,
    /// Whether the stored client may be used.
    usable: bool,
    /// The end of the last good document's cache time, while one is held: past it, it may
    /// still stand for up to [`STALE_SECONDS`] when a refetch gets no answer.
    good_until: Option<i64>,
}

impl Known {
    /// The end of the last good document's cache time, if it may still stand at `now`.
    fn standing(known: Option<Self>, now: i64) -> Option<i64> {
        known
            .and_then(|k| k.good_until)
            .filter(|good| now < good.saturating_add(STALE_SECONDS))
    }
}

/// The documents of this instance: the fetcher, what it knows and its limits.
pub struct Documents {
    fetcher: Fetcher,
    known: Cache<String, Known>,
    max_scope: String,
    per_host: Budget<String>,
    per_address: Budget<IpAddr>,
    at_once: Semaphore,
}

impl Documents {
    /// Served when `registration.metadata_documents` and sign-in are on. `Err` names the
    /// key that cannot be used (an unreadable `registration.ca_file`).
    pub fn new(config: &Config) -> Result<Option<Self>, String> {
        if !config.metadata_documents_enabled() {
            return Ok(None);
        }
        let registration = &config.registration;
        let roots = match &registration.ca_file {
            Some(path) => std::fs::read(path).map_err(|e| {
                format!("registration.ca_file: cannot read {}: {e}", path.display())
            })?,
            None => Vec::new(),
        };
        let reach = Reach {
            private_networks: registration.allow_private_networks,
            allowed_hosts: registration.allowed_hosts.clone(),
        };
        Ok(Some(Documents {
            fetcher: Fetcher::new(reach, &roots)?,
            known: Cache::new(MAX_DOCUMENTS),
            max_scope: config.registration_max_scope(),
            per_host: Budget::new(FETCHES_PER_HOST_PER_MINUTE, Duration::from_secs(60)),
            per_address: Budget::new(
                config.rate_limit.budget(FETCHES_PER_ADDRESS_PER_MINUTE),
                Duration::from_secs(60),
            ),
            at_once: Semaphore::new(MAX_FETCHES_AT_ONCE),
        }))
    }

    /// Forgets fetch budgets whose windows have ended.
    pub fn sweep(&self) {
        self.per_host.sweep();
        self.per_address.sweep();
    }

    /// Requests sent to document hosts since start-up (refusals before a request are
    /// not counted).
    pub fn fetches(&self) -> u64 {
        self.fetcher.started()
    }

    /// Whether the client `client_id` names (an https URL) may be used at `now`, as
    /// asked by a request from `requester`: its document fetched and valid, within its
    /// cache time (or standing past it, see the module), and stored as a client. Only
    /// the store's errors are errors; every problem of the document is a `false`, and
    /// logged.
    pub async fn resolve(
        &self,
        store: &Store,
        client_id: &str,
        requester: IpAddr,
        now: i64,
    ) -> Result<bool, StoreError> {
        // What the id alone rules out is refused at once, fetching nothing and keeping
        // nothing: a malformed URL, a host not allowed, an address that is not public.
        let url =
            match document_url(client_id).and_then(|url| self.fetcher.admit(&url).map(|()| url)) {
                Ok(url) => url,
                Err(why) => {
                    self.refused(client_id, &why, now);
                    return Ok(false);
                }
            };
        let previous = self.known.get(client_id);
        if let Some(known) = previous {
            if now < known.until {
                return Ok(known.usable);
            }
            self.known.remove_if(client_id, |k| k.until <= now);
        }
        let guard = match self.known.get_value_or_guard_async(client_id).await {
            Ok(known) if now < known.until => return Ok(known.usable),
            Ok(known) => {
                // Another request's answer, already out of date: this one decides alone.
                return Ok(self
                    .refresh(store, &url, requester, Some(known), now)
                    .await?
                    .is_some_and(|k| k.usable));
            }
            Err(guard) => guard,
        };
        let known = self.refresh(store, &url, requester, previous, now).await?;
        match known {
            Some(known) => {
                let _ = guard.insert(known);
                Ok(known.usable)
            }
            // Not remembered: the next request may try again.
            None => Ok(false),
        }
    }

    /// Fetches and stores the document, `previous` being what was known of it. `None`
    /// when it was not fetched for a limit of this server's, which is not the document's
    /// fault and is not remembered, unless a last good document stands in.
    async fn refresh(
        &self,
        store: &Store,
        url: &Url,
        requester: IpAddr,
        previous: Option<Known>,
        now: i64,
    ) -> Result<Option<Known>, StoreError> {
        let client_id = url.as_str();
        let standing = Known::standing(previous, now);
        let _permit = match self.admit(url, requester, standing.is_some()).await {
            Ok(permit) => permit,
            Err(limit) => {
                tracing::warn!(
                    client_id,
                    "client ID metadata document not fetched: {limit}"
                );
                return Ok(match standing {
                    Some(good_until) => Some(self.stale(client_id, good_until, now)),
                    None => {
                        crate::metrics::client_document("limited");
                        None
                    }
                });
            }
        };
        let (document, seconds) = match self.fetch_document(url).await {
            Ok(found) => found,
            Err(why) => return Ok(Some(self.failed(client_id, &why, standing, now))),
        };
        let keys = match &document.keys {
            None => None,
            Some(Keys::Inline(jwks)) => Some(jwks.clone()),
            Some(Keys::Uri(uri)) => match self.fetch_keys(uri).await {
                Ok(jwks) => Some(jwks),
                Err(why) => return Ok(Some(self.failed(client_id, &why, standing, now))),
            },
        };
        let stored = store_client(store, client_id, document, keys.as_deref(), now).await?;
        if !stored {
            let why = Refusal::new("the client id belongs to a client of another origin");
            return Ok(Some(self.refused(client_id, &why, now)));
        }
        tracing::info!(
            client_id,
            cache_seconds = seconds,
            "client ID metadata document fetched"
        );
        crate::metrics::client_document("fetched");
        let until = now.saturating_add(seconds);
        Ok(Some(Known {
            until,
            usable: true,
            good_until: Some(until),
        }))
    }

    /// A turn to fetch `url` for `requester`, within the limits: the requester's budget,
    /// the host's (unless the document is known good), and a place among the fetches at
    /// once, waited for up to [`QUEUE_WAIT`]. `Err` says which limit was reached.
    async fn admit(
        &self,
        url: &Url,
        requester: IpAddr,
        known_good: bool,
    ) -> Result<SemaphorePermit<'_>, &'static str> {
        if self.per_address.spend(address_key(requester)).is_err() {
            return Err("too many fetches asked for from one address");
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        if !known_good && self.per_host.spend(host).is_err() {
            return Err("too many fetches from its host");
        }
        match tokio::time::timeout(QUEUE_WAIT, self.at_once.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err("too many fetches under way"),
        }
    }

    /// A fetch that failed: the last good document stands when the host gave no answer
    /// and one is `standing`; otherwise the client is unknown for a while.
    fn failed(&self, client_id: &str, why: &Refusal, standing: Option<i64>, now: i64) -> Known {
        match standing {
            Some(good_until) if why.is_unavailable() => {
                tracing::warn!(client_id, reason = %why, "client ID metadata document not refetched");
                self.stale(client_id, good_until, now)
            }
            _ => self.refused(client_id, why, now),
        }
    }

    /// The last good document, standing in until the next try.
    fn stale(&self, client_id: &str, good_until: i64, now: i64) -> Known {
        tracing::info!(
            client_id,
            "client ID metadata document: the last good one stands"
        );
        crate::metrics::client_document("stale");
        Known {
            until: now
                .saturating_add(RETRY_SECONDS)
                .min(good_until.saturating_add(STALE_SECONDS)),
            usable: true,
            good_until: Some(good_until),
        }
    }

    fn refused(&self, client_id: &str, why: &Refusal, now: i64) -> Known {
        tracing::warn!(client_id, reason = %why, "client ID metadata document refused");
        crate::metrics::client_document("refused");
        Known {
            until: now.saturating_add(RETRY_SECONDS),
            usable: false,
            good_until: None,
        }
    }

    async fn fetch_document(&self, url: &Url) -> Result<(Document, i64), Refusal> {
        let fetched = self.fetcher.fetch(url).await?;
        let document = read_document(&fetched.body, url.as_str(), &self.max_scope)?;
        Ok((document, cache_seconds(fetched.cache_control.as_deref())))
    }

    async fn fetch_keys(&self, uri: &Url) -> Result<String, Refusal> {
        let fetched = self
            .fetcher
            .fetch(uri)
            .await
            .map_err(|why| why.about("jwks_uri"))?;
        let text = String::from_utf8(fetched.body)
            .map_err(|_| Refusal::new("jwks_uri: the JWK Set is not UTF-8"))?;
        crate::auth::assertion::parse_client_jwks(&text)
            .map_err(|why| Refusal::new(format!("jwks_uri: {why}")))
    }
}

/// Stores the client a document describes, unless the stored one already says the
/// same; false when the id is a client of another origin.
async fn store_client(
    store: &Store,
    client_id: &str,
    document: Document,
    jwks: Option<&str>,
    now: i64,
) -> Result<bool, StoreError> {
    let metadata = document.metadata;
    let record = ClientRecord {
        client_id: client_id.to_owned(),
        name: metadata.client_name.unwrap_or_else(|| UNNAMED.to_owned()),
        secret_hash: SecretHash::new(NO_SECRET.to_owned()),
        auth_method: metadata.token_endpoint_auth_method,
        scope: metadata.scope,
        audiences: Vec::new(),
        redirect_uris: metadata.redirect_uris,
        policy: ClientPolicy {
            grant_types: metadata.grant_types,
            resources: Vec::new(),
            strict_auth_method: true,
            inactive_budget: InactiveBudget::Configured,
            exchange_targets: Vec::new(),
        },
        disabled: false,
        created_at: now,
        updated_at: now,
        origin: ClientOrigin::MetadataDocument,
        last_used_at: None,
        client_uri: metadata.client_uri,
        logo_uri: metadata.logo_uri,
        application_type: Some(metadata.application_type),
        previous_secret: None,
    };
    let stored = store.client_by_id(client_id).await?;
    if let Some(stored) = &stored {
        if stored.origin != ClientOrigin::MetadataDocument {
            return Ok(false);
        }
        let stored_jwks = match stored.auth_method {
            AuthMethod::PrivateKeyJwt => store.client_jwks(client_id).await?,
            _ => None,
        };
        if same_document(stored, &record) && stored_jwks.as_deref() == jwks {
            return Ok(true);
        }
    }
    if !store.put_document_client(&record, jwks).await? {
        return Ok(false);
    }
    // Users allowed a client by the name they saw, sending them back where it then
    // did: when either changes, they are asked again.
    if stored.is_some_and(|s| s.name != record.name || s.redirect_uris != record.redirect_uris) {
        store.forget_consents(None, Some(client_id)).await?;
    }
    Ok(true)
}

/// Whether a stored client already holds what a document says.
fn same_document(stored: &ClientRecord, from_document: &ClientRecord) -> bool {
    stored.name == from_document.name
        && stored.auth_method == from_document.auth_method
        && stored.scope == from_document.scope
        && stored.redirect_uris == from_document.redirect_uris
        && stored.policy.grant_types == from_document.policy.grant_types
        && stored.client_uri == from_document.client_uri
        && stored.logo_uri == from_document.logo_uri
        && stored.application_type == from_document.application_type
}

/// The host of a document client's id, for the consent page: who published it.
pub fn publisher(client: &ClientRecord) -> Option<String> {
    if client.origin != ClientOrigin::MetadataDocument {
        return None;
    }
    let url = Url::parse(&client.client_id).ok()?;
    let host = url.host_str()?;
    Some(match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Shared by the application state.
pub type SharedDocuments = Arc<Documents>;
