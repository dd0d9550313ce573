//! Client authentication (RFC 6749 §2.3.1): `client_secret_basic` and
//! `client_secret_post`, checked against argon2id hashes; `private_key_jwt` (RFC 7523)
//! lives in [`assertion`].

pub mod assertion;

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use aws_lc_rs::hmac;
use axum::http::HeaderValue;
use headers::Header;
use headers::authorization::{Authorization, Basic};
use quick_cache::sync::Cache;
use tokio::sync::{OnceCell, Semaphore};
// The tokio clock, as the failure budgets' (crate::limits): the remembered verifications
// age on it, so tests move it with tokio::time::advance rather than wait.
use tokio::time::Instant;

use crate::cache::View;
use crate::config::Config;
use crate::limits::{Budget, address_key};
use crate::secret::{ClientSecret, Password, RawToken, SecretHash};
use crate::store::{ClientRecord, StoreError};
use crate::vocabulary::AuthMethod;

/// Credentials as a request presented them, before any check against the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    pub client_id: String,
    pub secret: ClientSecret,
    pub method: AuthMethod,
}

/// Why a request did not authenticate as a client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// 400 `invalid_request`: more than one method, or contradicting identifiers.
    #[error("{0}")]
    Malformed(&'static str),
    /// 401 `invalid_client`: the kind of failure, and what the client is told.
    #[error("{1}")]
    Failed(Failure, &'static str),
    /// 429: this address, or this client from this address, failed too often.
    #[error("too many failed authentications")]
    Throttled(Duration),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Credentials of any supported method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credentials {
    Secret(Presented),
    Assertion(assertion::ClientAssertion),
    /// A public client (`none`, RFC 7591 §2) naming itself with `client_id` alone: it
    /// holds no credential, and PKCE or the refresh token proves the rest.
    Public(String),
}

impl Credentials {
    /// The client the credentials claim to be, when they say so before verification.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Credentials::Secret(presented) => Some(&presented.client_id),
            Credentials::Assertion(assertion) => assertion.client_id.as_deref(),
            Credentials::Public(client_id) => Some(client_id),
        }
    }
}

/// The client authentication parameters of a form body (RFC 6749 section 2.3.1, RFC 7523
/// section 2.2), read by the `Caller` extractor beside or instead of Basic credentials.
#[derive(Clone, Debug, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct ClientAuthentication {
    /// A public client's only credential; else client_secret_post, or beside a client
    /// assertion or Basic credentials naming the same client.
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    /// client_secret_post only.
    #[schema(value_type = Option<String>, nullable = false)]
    pub client_secret: Option<ClientSecret>,
    /// private_key_jwt: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(nullable = false)]
    pub client_assertion_type: Option<String>,
    /// private_key_jwt: the signed client assertion.
    #[schema(value_type = Option<String>, nullable = false)]
    pub client_assertion: Option<RawToken>,
}

impl crate::params::Parameters for ClientAuthentication {}

/// Reads the credentials of a request whatever its method: a client assertion (RFC 7521
/// §4.2) or a secret as in [`presented`]. Exactly one method may be used.
pub fn credentials(
    authorization: Option<&HeaderValue>,
    params: &ClientAuthentication,
) -> Result<Credentials, AuthError> {
    let client_id = params.client_id.as_deref();
    let secret = params.client_secret.as_ref().map(ClientSecret::expose);
    let assertion_type = params.client_assertion_type.as_deref();
    let assertion = params.client_assertion.as_ref().map(RawToken::expose);
    if assertion_type.is_none() && assertion.is_none() {
        if let (None, Some(client_id), None) = (authorization, client_id, secret) {
            return Ok(Credentials::Public(client_id.to_owned()));
        }
        return presented(authorization, client_id, secret).map(Credentials::Secret);
    }
    if authorization.is_some() || secret.is_some() {
        return Err(AuthError::Malformed(
            "use exactly one client authentication method",
        ));
    }
    assertion::presented(client_id, assertion_type, assertion).map(Credentials::Assertion)
}

impl AuthError {
    /// A 401 `invalid_client` for credentials that do not prove the client: `message`
    /// tells the client why.
    pub const fn failed(message: &'static str) -> Self {
        AuthError::Failed(Failure::BadCredentials, message)
    }

    /// A short label saying why authentication failed, for metrics; `None` for store
    /// failures, which are not the caller's doing.
    pub fn reason(&self) -> Option<&'static str> {
        Some(match self {
            AuthError::Malformed(_) => "malformed_request",
            AuthError::Failed(failure, _) => failure.label(),
            AuthError::Throttled(_) => "throttled",
            AuthError::Store(_) => return None,
        })
    }
}

/// The kinds of failed client authentication that metrics tell apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No credentials at all.
    MissingCredentials,
    /// Credentials that cannot be read: a broken Basic header, a secret without an id.
    MalformedCredentials,
    /// An `Authorization` scheme other than Basic.
    UnsupportedScheme,
    /// A client that exists but is disabled.
    ClientDisabled,
    /// A method other than the one the client registered.
    WrongMethod,
    /// An unknown client, a wrong secret, or a client assertion that does not verify.
    BadCredentials,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::MissingCredentials => "missing_credentials",
            Failure::MalformedCredentials => "malformed_credentials",
            Failure::UnsupportedScheme => "unsupported_scheme",
            Failure::ClientDisabled => "client_disabled",
            Failure::WrongMethod => "wrong_method",
            Failure::BadCredentials => "bad_credentials",
        }
    }
}

/// Reads the credentials of a request: the `Authorization` header and the
/// `client_id`/`client_secret` form parameters. Exactly one method may be used.
pub fn presented(
    authorization: Option<&HeaderValue>,
    form_client_id: Option<&str>,
    form_client_secret: Option<&str>,
) -> Result<Presented, AuthError> {
    match (authorization, form_client_secret) {
        (Some(_), Some(_)) => Err(AuthError::Malformed(
            "use exactly one client authentication method",
        )),
        (Some(header), None) => {
            let (client_id, secret) = parse_basic(header)?;
            // A client_id parameter beside Basic credentials must name the same client.
            if form_client_id.is_some_and(|id| id != client_id) {
                return Err(AuthError::Malformed(
                    "client_id parameter does not match the Authorization header",
                ));
            }
            Ok(Presented {
                client_id,
                secret,
                method: AuthMethod::ClientSecretBasic,
            })
        }
        (None, Some(secret)) => match form_client_id {
            Some(client_id) => Ok(Presented {
                client_id: client_id.to_owned(),
                secret: ClientSecret::new(secret),
                method: AuthMethod::ClientSecretPost,
            }),
            None => Err(AuthError::Failed(
                Failure::MalformedCredentials,
                "client_secret given without client_id",
            )),
        },
        (None, None) => Err(AuthError::Failed(
            Failure::MissingCredentials,
            "client authentication required",
        )),
    }
}

/// RFC 7617 Basic credentials whose parts are form-urlencoded (RFC 6749 §2.3.1).
fn parse_basic(header: &HeaderValue) -> Result<(String, ClientSecret), AuthError> {
    const MALFORMED: AuthError =
        AuthError::Failed(Failure::MalformedCredentials, "malformed Basic credentials");
    let Ok(Authorization(basic)) = Authorization::<Basic>::decode(&mut std::iter::once(header))
    else {
        // Another scheme is refused as such; a Basic header that does not decode is
        // malformed.
        let scheme = header.to_str().ok().and_then(|v| v.split_once(' '));
        return Err(match scheme {
            Some((scheme, _)) if !scheme.eq_ignore_ascii_case("basic") => AuthError::Failed(
                Failure::UnsupportedScheme,
                "unsupported authentication scheme",
            ),
            _ => MALFORMED,
        });
    };
    let id = form_decode(basic.username()).ok_or(MALFORMED)?;
    let secret = form_decode(basic.password()).ok_or(MALFORMED)?;
    if id.is_empty() || secret.is_empty() {
        return Err(MALFORMED);
    }
    Ok((id, ClientSecret::new(secret)))
}

fn form_decode(part: &str) -> Option<String> {
    let spaced = part.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

/// Hashes a new client secret as an argon2id PHC string.
pub fn hash_secret(secret: &ClientSecret) -> SecretHash {
    hash_bytes(secret.expose().as_bytes())
}

fn verify_secret(secret: &ClientSecret, hash: &SecretHash) -> bool {
    verify_bytes(secret.expose().as_bytes(), hash)
}

/// Hashes a user's password as an argon2id PHC string, with the parameters of client
/// secrets.
pub fn hash_password(password: &Password) -> SecretHash {
    hash_bytes(password.expose().as_bytes())
}

/// Whether `password` matches `hash`. argon2 compares its output in constant time. Run
/// it off the async workers: it takes as long as a client secret's verification.
pub fn verify_password(password: &Password, hash: &SecretHash) -> bool {
    verify_bytes(password.expose().as_bytes(), hash)
}

fn hash_bytes(value: &[u8]) -> SecretHash {
    let hash = Argon2::default()
        .hash_password(value)
        .expect("argon2 with default parameters hashes any input");
    SecretHash::new(hash.to_string())
}

fn verify_bytes(value: &[u8], hash: &SecretHash) -> bool {
    Argon2::default()
        .verify_password(value, hash.expose())
        .is_ok()
}

/// A secret that verified against a client's hash, remembered so the next request with
/// the same credentials skips argon2. Valid only while the client still has that hash.
#[derive(Clone)]
struct Verified {
    secret_hash: SecretHash,
    at: Instant,
    /// Set by the first request to find it due for renewal, which starts the renewal.
    renewing: Arc<AtomicBool>,
    /// The one verification that renews this entry: the background renewal and a
    /// request that finds the entry expired share it.
    renewal: Arc<OnceCell<bool>>,
}

impl Verified {
    fn new(secret_hash: SecretHash) -> Self {
        Verified {
            secret_hash,
            at: Instant::now(),
            renewing: Arc::default(),
            renewal: Arc::default(),
        }
    }
}

/// Where a remembered verification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Freshness {
    /// Vouches for the credentials.
    Fresh,
    /// Still vouches, and is verified again in the background so that it never expires
    /// under the feet of a client that keeps using it.
    Renew,
    /// Vouches for nothing: the credentials are verified again before the answer.
    Expired,
}

/// A verification `age` old vouches for `ttl`, and is renewed in the last quarter.
fn freshness(age: Duration, ttl: Duration) -> Freshness {
    if age >= ttl {
        Freshness::Expired
    } else if age >= ttl - ttl / 4 {
        Freshness::Renew
    } else {
        Freshness::Fresh
    }
}

/// Checks presented credentials against the store. Verification runs on the blocking
/// pool behind a semaphore, and an unknown client costs the same argon2 work as a wrong
/// secret, so timing tells nothing about which client ids exist. Successful checks are
/// remembered under a keyed hash of the credentials, never the secret itself; failures
/// are never remembered. Concurrent requests presenting the same credentials share one
/// verification, and a remembered one is renewed before it expires, so a client in use
/// never waits for argon2 after its first request.
#[derive(Clone)]
pub struct Authenticator {
    dummy_hash: SecretHash,
    permits: Arc<Semaphore>,
    cache_key: Arc<hmac::Key>,
    verified: Arc<Cache<[u8; 32], Verified>>,
    verifications: Arc<AtomicU64>,
    ttl: Duration,
    failures_per_ip: Arc<Budget<IpAddr>>,
    failures_per_client: Arc<Budget<(String, IpAddr)>>,
}

impl Authenticator {
    pub fn new(config: &Config) -> Self {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let cache_key =
            hmac::Key::generate(hmac::HMAC_SHA256, &rng).expect("the system random source failed");
        let limits = &config.rate_limit;
        let window = Duration::from_secs(limits.auth_failure_window_seconds);
        Authenticator {
            dummy_hash: hash_secret(&ClientSecret::new(crate::token::random_string(32))),
            permits: Arc::new(Semaphore::new(workers)),
            cache_key: Arc::new(cache_key),
            verified: Arc::new(crate::cache::table(config.cache.capacity)),
            verifications: Arc::default(),
            ttl: Duration::from_secs(config.cache.credential_ttl_seconds),
            failures_per_ip: Arc::new(Budget::new(
                limits.budget(limits.auth_failures_per_ip),
                window,
            )),
            failures_per_client: Arc::new(Budget::new(
                limits.budget(limits.auth_failures_per_client),
                window,
            )),
        }
    }

    /// Refuses an address that failed too often, or a client id that failed too often
    /// from this address, before any work is spent on credentials no earlier
    /// verification vouches for. Both budgets are the failing party's: a guesser at one
    /// address never spends the budget of the client's own address, so it cannot lock a
    /// confidential client out.
    pub fn admit(&self, ip: IpAddr, client_id: Option<&str>) -> Result<(), AuthError> {
        let ip = address_key(ip);
        self.failures_per_ip
            .check(&ip)
            .map_err(AuthError::Throttled)?;
        match client_id {
            Some(id) => self
                .failures_per_client
                .check(&(id.to_owned(), ip))
                .map_err(AuthError::Throttled),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication; the error to answer with, 429 once a budget is
    /// spent.
    pub fn failed(&self, ip: IpAddr, client_id: Option<&str>, err: AuthError) -> AuthError {
        let ip = address_key(ip);
        let per_ip = self.failures_per_ip.spend(ip);
        let per_client = match client_id {
            Some(id) => self.failures_per_client.spend((id.to_owned(), ip)),
            None => Ok(()),
        };
        match per_ip.and(per_client) {
            Ok(()) => err,
            Err(wait) => AuthError::Throttled(wait),
        }
    }

    /// argon2 verifications of presented secrets run since start-up.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }

    /// Hits and misses of the verified-credential cache since start-up.
    pub fn cache_stats(&self) -> (u64, u64) {
        (self.verified.hits(), self.verified.misses())
    }

    /// Forgets failure windows that have ended.
    pub fn sweep(&self) {
        self.failures_per_ip.sweep();
        self.failures_per_client.sweep();
    }

    /// The client the credentials belong to, if they are right at `now` and the client
    /// may act. A secret replaced with a grace period is accepted until it ends.
    /// Credentials a remembered verification vouches for are answered at once, whatever
    /// the failure budgets of `ip`; any others must be admitted by them first.
    pub async fn authenticate(
        &self,
        view: &View,
        presented: &Presented,
        ip: IpAddr,
        now: i64,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let client = view.client(&presented.client_id).await?;
        let key = self.cache_key(presented);
        let hashes = client
            .as_ref()
            .map_or_else(|| vec![&self.dummy_hash], |c| c.secret_hashes(now));
        // A remembered verification vouches only while its hash is still accepted.
        let remembered = client
            .as_ref()
            .and_then(|_| self.verified.get(&key))
            .filter(|v| hashes.contains(&&v.secret_hash));
        let freshness = remembered
            .as_ref()
            .map_or(Freshness::Expired, |v| freshness(v.at.elapsed(), self.ttl));
        let verified = match (freshness, remembered) {
            (Freshness::Fresh, Some(_)) => true,
            (Freshness::Renew, Some(v)) => {
                self.renew(key, presented, &v);
                true
            }
            _ => {
                self.admit(ip, Some(&presented.client_id))?;
                let mut verified = false;
                for hash in hashes {
                    if self.verify_shared(key, &presented.secret, hash).await {
                        verified = true;
                        break;
                    }
                }
                verified
            }
        };
        let client = match client {
            Some(client) if verified => client,
            _ => return Err(AuthError::failed("client authentication failed")),
        };
        client_may_authenticate(&client, presented.method)?;
        Ok(client)
    }

    /// Verifies the credentials again in the background, unless that is under way.
    fn renew(&self, key: [u8; 32], presented: &Presented, remembered: &Verified) {
        if remembered.renewing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (this, secret) = (self.clone(), presented.secret.clone());
        let remembered = remembered.clone();
        tokio::spawn(async move { this.reverify(key, &secret, &remembered).await });
    }

    /// Verifies again the credentials a remembered entry vouched for, once for the
    /// entry: the renewal and any request that finds the entry expired share the run.
    /// A success replaces the entry; a failure forgets it, so the next request starts
    /// anew.
    async fn reverify(&self, key: [u8; 32], secret: &ClientSecret, remembered: &Verified) -> bool {
        let hash = &remembered.secret_hash;
        *remembered
            .renewal
            .get_or_init(|| async {
                let verified = self.verify(secret, hash).await;
                if verified {
                    self.verified.insert(key, Verified::new(hash.clone()));
                } else {
                    self.verified
                        .remove_if(&key, |v| Arc::ptr_eq(&v.renewal, &remembered.renewal));
                }
                verified
            })
            .await
    }

    /// Verifies `secret` against `hash` once for every request that presents the same
    /// credentials meanwhile (the cache's own guard: the first request verifies, the
    /// others wait for its answer), and remembers a success under `key` before anyone
    /// learns of it. A failure is not remembered: a waiting request then verifies in
    /// turn. An expired entry for the same hash is verified again through its renewal.
    async fn verify_shared(&self, key: [u8; 32], secret: &ClientSecret, hash: &SecretHash) -> bool {
        // An entry of a replaced hash is forgotten and the lookup tried again, at most
        // twice.
        for _ in 0..2 {
            match self.verified.get_value_or_guard_async(&key).await {
                Ok(found) if found.secret_hash == *hash => {
                    return self.vouches(&found) || self.reverify(key, secret, &found).await;
                }
                Ok(stale) => {
                    self.verified
                        .remove_if(&key, |v| Arc::ptr_eq(&v.renewal, &stale.renewal));
                }
                Err(guard) => {
                    let verified = self.verify(secret, hash).await;
                    if verified {
                        let _ = guard.insert(Verified::new(hash.clone()));
                    }
                    return verified;
                }
            }
        }
        self.verify(secret, hash).await
    }

    /// Whether a remembered verification still vouches for its credentials.
    fn vouches(&self, verified: &Verified) -> bool {
        freshness(verified.at.elapsed(), self.ttl) != Freshness::Expired
    }

    /// argon2 verification off the async workers, at most one per core at a time.
    async fn verify(&self, secret: &ClientSecret, hash: &SecretHash) -> bool {
        let (secret, hash) = (secret.clone(), hash.clone());
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        self.verifications.fetch_add(1, Ordering::Relaxed);
        tokio::task::spawn_blocking(move || verify_secret(&secret, &hash))
            .await
            .unwrap_or(false)
    }

    fn cache_key(&self, presented: &Presented) -> [u8; 32] {
        let mut context = hmac::Context::with_key(&self.cache_key);
        context.update(presented.client_id.as_bytes());
        context.update(&[0]);
        context.update(presented.secret.expose().as_bytes());
        let mut key = [0u8; 32];
        key.copy_from_slice(context.sign().as_ref());
        key
    }
}

/// Refused like a request without credentials: a client that names itself only with
/// `client_id` but is not public, or where public clients are not served.
pub const NOT_PUBLIC: AuthError = AuthError::Failed(
    Failure::MissingCredentials,
    "client authentication required",
);

impl Authenticator {
    /// The public client a request names with `client_id` alone, if it is one and
    /// enabled. Any other client (or none) is refused as a request without
    /// credentials, so the answer tells nothing about which confidential clients exist.
    pub async fn public(
        &self,
        view: &View,
        client_id: &str,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        match view.client(client_id).await? {
            Some(client) if client.auth_method == AuthMethod::None => {
                client_may_authenticate(&client, AuthMethod::None)?;
                Ok(client)
            }
            _ => Err(NOT_PUBLIC),
        }
    }
}

/// A client authenticates only while enabled and only with a method it may use.
pub fn client_may_authenticate(client: &ClientRecord, method: AuthMethod) -> Result<(), AuthError> {
    if client.disabled {
        return Err(AuthError::Failed(
            Failure::ClientDisabled,
            "client is disabled",
        ));
    }
    if !method_accepted(client, method) {
        return Err(AuthError::Failed(
            Failure::WrongMethod,
            "client must use its registered authentication method",
        ));
    }
    Ok(())
}

/// A client with a secret may send it as `client_secret_basic` or `client_secret_post`
/// alike, unless registered with a strict method; `private_key_jwt` only as registered,
/// and a public client (`none`) never with a credential.
fn method_accepted(client: &ClientRecord, used: AuthMethod) -> bool {
    client.auth_method == used
        || (client.auth_method.uses_secret()
            && used.uses_secret()
            && !client.policy.strict_auth_method)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    fn basic(raw: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw))).unwrap()
    }

    #[test]
    fn basic_parts_are_form_decoded() {
        let got = presented(Some(&basic("my%20id:p%3Ass+word")), None, None).unwrap();
        assert_eq!(got.client_id, "my id");
        assert_eq!(got.secret.expose(), "p:ss word");
        assert_eq!(got.method, AuthMethod::ClientSecretBasic);
    }

    #[test]
    fn two_methods_are_a_malformed_request() {
        let err = presented(Some(&basic("a:b")), Some("a"), Some("b")).unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)));
    }

    #[test]
    fn client_id_beside_basic_must_match() {
        assert!(presented(Some(&basic("a:b")), Some("a"), None).is_ok());
        let err = presented(Some(&basic("a:b")), Some("z"), None).unwrap_err();
        assert!(matches!(err, AuthError::Malformed(_)));
    }

    #[test]
    fn post_credentials_need_both_parameters() {
        let got = presented(None, Some("a"), Some("b")).unwrap();
        assert_eq!(got.method, AuthMethod::ClientSecretPost);
        assert!(matches!(
            presented(None, None, Some("b")),
            Err(AuthError::Failed(..))
        ));
        assert!(matches!(
            presented(None, Some("a"), None),
            Err(AuthError::Failed(..))
        ));
    }

    #[test]
    fn malformed_basic_is_a_failed_authentication() {
        for raw in ["Basic", "Basic !!!", "Bearer abc", "Basic Zm9v"] {
            let header = HeaderValue::from_str(raw).unwrap();
            assert!(
                matches!(
                    presented(Some(&header), None, None),
                    Err(AuthError::Failed(..))
                ),
                "{raw}"
            );
        }
        assert!(matches!(
            presented(Some(&basic(":secret")), None, None),
            Err(AuthError::Failed(..))
        ));
    }

    fn params(pairs: &'static [(&'static str, &'static str)]) -> ClientAuthentication {
        let get = |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        };
        ClientAuthentication {
            client_id: get("client_id"),
            client_secret: get("client_secret").map(ClientSecret::new),
            client_assertion_type: get("client_assertion_type"),
            client_assertion: get("client_assertion").map(RawToken::new),
        }
    }

    const ASSERTION: [(&str, &str); 2] = [
        ("client_assertion_type", assertion::JWT_BEARER),
        ("client_assertion", "a.b.c"),
    ];

    #[test]
    fn a_client_id_alone_names_a_public_client() {
        assert_eq!(
            credentials(None, &params(&[("client_id", "app")])).unwrap(),
            Credentials::Public("app".to_owned())
        );
        assert!(matches!(
            credentials(Some(&basic("app:s")), &params(&[("client_id", "app")])),
            Ok(Credentials::Secret(_))
        ));
        assert!(matches!(
            credentials(
                None,
                &params(&[("client_id", "app"), ("client_secret", "s")])
            ),
            Ok(Credentials::Secret(_))
        ));
        let err = credentials(None, &params(&[])).unwrap_err();
        assert_eq!(err.reason(), Some("missing_credentials"));
    }

    #[test]
    fn assertion_beside_a_secret_is_two_methods() {
        assert!(matches!(
            credentials(None, &params(&ASSERTION)),
            Ok(Credentials::Assertion(_))
        ));
        assert!(matches!(
            credentials(Some(&basic("a:b")), &params(&ASSERTION)),
            Err(AuthError::Malformed(_))
        ));
        const WITH_SECRET: [(&str, &str); 3] = [ASSERTION[0], ASSERTION[1], ("client_secret", "s")];
        assert!(matches!(
            credentials(None, &params(&WITH_SECRET)),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            credentials(Some(&basic("a:b")), &params(&[])),
            Ok(Credentials::Secret(_))
        ));
    }

    #[test]
    fn failure_reasons_name_the_cause_not_the_credentials() {
        let reason = |header: Option<&HeaderValue>, id, secret| {
            presented(header, id, secret).unwrap_err().reason().unwrap()
        };
        assert_eq!(reason(None, None, None), "missing_credentials");
        assert_eq!(
            reason(Some(&basic("a:b")), None, Some("b")),
            "malformed_request"
        );
        let bearer = HeaderValue::from_static("Bearer abc");
        assert_eq!(reason(Some(&bearer), None, None), "unsupported_scheme");
        assert_eq!(reason(None, None, Some("b")), "malformed_credentials");
        let mut client = ClientRecord {
            client_id: "a".to_owned(),
            name: "a".to_owned(),
            secret_hash: SecretHash::new("x"),
            auth_method: AuthMethod::ClientSecretBasic,
            scope: String::new(),
            audiences: vec![],
            redirect_uris: vec![],
            policy: Default::default(),
            disabled: false,
            created_at: 0,
            updated_at: 0,
            origin: Default::default(),
            last_used_at: None,
            client_uri: None,
            logo_uri: None,
            application_type: None,
            previous_secret: None,
        };
        assert!(client_may_authenticate(&client, AuthMethod::ClientSecretPost).is_ok());
        let err = client_may_authenticate(&client, AuthMethod::PrivateKeyJwt).unwrap_err();
        assert_eq!(err.reason(), Some("wrong_method"));
        client.policy.strict_auth_method = true;
        let err = client_may_authenticate(&client, AuthMethod::ClientSecretPost).unwrap_err();
        assert_eq!(err.reason(), Some("wrong_method"));
        assert!(client_may_authenticate(&client, AuthMethod::ClientSecretBasic).is_ok());
        client.disabled = true;
        let err = client_may_authenticate(&client, AuthMethod::ClientSecretBasic).unwrap_err();
        assert_eq!(err.reason(), Some("client_disabled"));
        let err = AuthError::failed("client authentication failed");
        assert_eq!(err.reason(), Some("bad_credentials"));

        // A public client proves nothing with a credential, strict or not.
        client.disabled = false;
        client.auth_method = AuthMethod::None;
        for strict in [false, true] {
            client.policy.strict_auth_method = strict;
            for method in AuthMethod::WITH_CREDENTIALS {
                let err = client_may_authenticate(&client, method).unwrap_err();
                assert_eq!(err.reason(), Some("wrong_method"), "{method:?}");
            }
            assert!(client_may_authenticate(&client, AuthMethod::None).is_ok());
        }
        // And a client with a credential cannot pass for a public one.
        client.auth_method = AuthMethod::ClientSecretBasic;
        client.policy.strict_auth_method = false;
        let err = client_may_authenticate(&client, AuthMethod::None).unwrap_err();
        assert_eq!(err.reason(), Some("wrong_method"));
    }

    #[test]
    fn verifications_are_renewed_in_the_last_quarter_of_their_ttl() {
        let ttl = Duration::from_secs(600);
        let at = |secs| freshness(Duration::from_secs(secs), ttl);
        assert_eq!(at(0), Freshness::Fresh);
        assert_eq!(at(449), Freshness::Fresh);
        assert_eq!(at(450), Freshness::Renew);
        assert_eq!(at(599), Freshness::Renew);
        assert_eq!(at(600), Freshness::Expired);
        assert_eq!(at(10_000), Freshness::Expired);
        assert_eq!(
            freshness(Duration::ZERO, Duration::ZERO),
            Freshness::Expired
        );
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let secret = ClientSecret::new("correct horse");
        let hash = hash_secret(&secret);
        assert!(hash.expose().starts_with("$argon2id$"));
        assert!(verify_secret(&secret, &hash));
        assert!(!verify_secret(&ClientSecret::new("wrong"), &hash));
        let password = Password::new("battery staple");
        let hash = hash_password(&password);
        assert!(hash.expose().starts_with("$argon2id$"));
        assert!(verify_password(&password, &hash));
        assert!(!verify_password(&Password::new("battery stapler"), &hash));
        assert!(!verify_password(&password, &SecretHash::new("not a hash")));
    }
}
