//! One OpenID Connect provider as the relying party sees it: discovered in the background,
//! its keys cached and refetched (at most once per [`JWKS_REFETCH_INTERVAL`]) when an ID
//! token names a key it does not know, its token endpoint called with the client
//! authentication its metadata asks for, and its ID tokens checked through and through
//! (OIDC Core §3.1.3.7).

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant, UNIX_EPOCH};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGrantType, CoreJsonWebKey, CoreJsonWebKeySet,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalProviderMetadata, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId,
    ClientSecret, CsrfToken, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier,
    ProviderMetadata, RedirectUrl, RequestTokenError, Scope, SignatureVerificationError,
    TokenResponse,
};
use tokio::sync::watch;

use super::client::{FetchError, HttpClient};
use super::id_jag::{self, IdJagClaims, Refusal};
use super::identity::Identity;
use crate::config::ProviderConfig;
use crate::secret::ProviderSecret;

/// The shortest time between two refetches of a provider's keys for an unknown `kid`: a
/// stream of forged tokens cannot make us hammer the provider.
pub const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// The first wait before discovery is tried again, doubled after each failure.
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between two tries of discovery.
const MAX_RETRY: Duration = Duration::from_secs(30);
/// How far in the future an ID token's `iat` may be (clocks differ a little).
const IAT_LEEWAY_SECONDS: i64 = 60;
/// How old an ID token's `iat` may be: it was issued for this very exchange.
const IAT_MAX_AGE_SECONDS: i64 = 600;

/// Why a sign-in at a provider did not give an identity.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Not discovered yet, or its token endpoint could not be reached.
    #[error("provider unavailable: {0}")]
    Unavailable(String),
    /// The token endpoint refused the code or answered something else than tokens.
    #[error("code exchange failed: {0}")]
    Exchange(String),
    /// The ID token is missing or did not verify.
    #[error("ID token refused: {0}")]
    IdToken(String),
}

/// The discovery fields beyond OpenID Connect Discovery that sign-in reads: RFC 9207 §3,
/// whether the provider names itself (`iss`) in its authorization responses. Kept as
/// sent, so that an odd value makes the flag false rather than discovery fail.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
struct IssuerInResponses {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    authorization_response_iss_parameter_supported: Option<serde_json::Value>,
}

impl AdditionalProviderMetadata for IssuerInResponses {}

/// A provider's discovery document.
type Metadata = ProviderMetadata<
    IssuerInResponses,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// What discovery found: the metadata with the key set, and how to talk to the provider.
struct Discovered {
    metadata: Metadata,
    /// The key set again, as identity assertions are verified with it: the keys that
    /// read as JWKs, others left out.
    keys: jsonwebtoken::jwk::JwkSet,
    auth_type: AuthType,
    algs: Vec<CoreJwsSigningAlgorithm>,
    /// RFC 9207: the provider advertises `authorization_response_iss_parameter_supported`.
    names_itself: bool,
}

/// A configured provider.
pub struct Provider {
    pub id: String,
    pub name: String,
    issuer: IssuerUrl,
    client_id: ClientId,
    secret: ProviderSecret,
    scopes: Vec<String>,
    pub allowed_email_domains: Vec<String>,
    /// Accepts identity assertions (ID-JAG) at `/token`.
    pub id_jag: bool,
    redirect_uri: RedirectUrl,
    http: HttpClient,
    discovered: RwLock<Option<Arc<Discovered>>>,
    available: watch::Sender<bool>,
    last_refetch: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("issuer", &self.issuer.as_str())
            .field("available", &self.available())
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider of the configuration, not discovered yet. `issuer` is this server's:
    /// the callback is under it.
    pub fn new(config: &ProviderConfig, issuer: &str, http: HttpClient) -> Result<Self, String> {
        let at = |why: String| format!("login.providers {}: {why}", config.id);
        let redirect_uri = format!(
            "{}/login/callback/{}",
            issuer.trim_end_matches('/'),
            config.id
        );
        Ok(Provider {
            id: config.id.clone(),
            name: config.name.clone(),
            issuer: IssuerUrl::new(config.issuer.clone()).map_err(|e| at(e.to_string()))?,
            client_id: ClientId::new(config.client_id.clone()),
            secret: config.secret().map_err(at)?,
            scopes: config.scopes.clone(),
            allowed_email_domains: config.allowed_email_domains.clone(),
            id_jag: config.id_jag,
            redirect_uri: RedirectUrl::new(redirect_uri).map_err(|e| at(e.to_string()))?,
            http,
            discovered: RwLock::new(None),
            available: watch::channel(false).0,
            last_refetch: Mutex::new(None),
        })
    }

    /// The provider's issuer identifier, as configured (and checked by discovery).
    pub fn issuer(&self) -> &str {
        self.issuer.as_str()
    }

    /// Whether the provider said, at discovery, that its authorization responses carry
    /// `iss` (RFC 9207 §3); false until discovered.
    pub fn names_itself(&self) -> bool {
        self.discovered().is_some_and(|d| d.names_itself)
    }

    /// Whether discovery succeeded: the provider can be offered.
    pub fn available(&self) -> bool {
        *self.available.borrow()
    }

    /// Waits until the provider is discovered.
    pub async fn wait_available(&self) {
        let mut available = self.available.subscribe();
        let _ = available.wait_for(|a| *a).await;
    }

    /// The origin of the authorization endpoint, once discovered: the login page's forms
    /// end up there (CSP `form-action`).
    pub fn authorization_origin(&self) -> Option<String> {
        let discovered = self.discovered()?;
        let origin = discovered.metadata.authorization_endpoint().url().origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }

    fn discovered(&self) -> Option<Arc<Discovered>> {
        self.discovered.read().ok()?.clone()
    }

    fn set_discovered(&self, discovered: Discovered) {
        if let Ok(mut slot) = self.discovered.write() {
            *slot = Some(Arc::new(discovered));
        }
        self.available.send_replace(true);
    }

    /// Starts discovery in the background: tried at once, then again after waits that
    /// double up to [`MAX_RETRY`], until it succeeds. Never blocks start-up.
    pub fn start_discovery(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(discover_until_found(weak));
    }

    /// Fetches the discovery document and the key set once.
    async fn discover(&self) -> Result<(), String> {
        let metadata = Metadata::discover_async(self.issuer.clone(), &self.http)
            .await
            .map_err(|err| discovery_error(&err))?;
        if metadata.token_endpoint().is_none() {
            return Err("the metadata names no token_endpoint".to_owned());
        }
        self.set_discovered(discovered(metadata));
        Ok(())
    }

    /// The authorization request to send the browser to, once discovered: code flow with
    /// PKCE (S256), `state` and `nonce`.
    pub fn authorization_url(&self, state: &str, nonce: &str, verifier: &str) -> Option<String> {
        let discovered = self.discovered()?;
        let client = self.client(&discovered);
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let challenge =
            PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(verifier.into()));
        let extra_scopes = self.scopes.iter().filter(|s| *s != "openid");
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            .add_scopes(extra_scopes.map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .url();
        Some(url.to_string())
    }

    fn client(
        &self,
        discovered: &Discovered,
    ) -> CoreClient<
        openidconnect::EndpointSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointNotSet,
        openidconnect::EndpointMaybeSet,
        openidconnect::EndpointMaybeSet,
    > {
        CoreClient::from_provider_metadata(
            discovered.metadata.clone(),
            self.client_id.clone(),
            Some(ClientSecret::new(self.secret.expose().to_owned())),
        )
        .set_redirect_uri(self.redirect_uri.clone())
        .set_auth_type(discovered.auth_type.clone())
    }

    /// Exchanges the code (with the PKCE verifier) and verifies the ID token at `now`
    /// against `nonce`: the user as the provider identified them.
    pub async fn sign_in(
        &self,
        code: &str,
        verifier: &str,
        nonce: &str,
        now: i64,
    ) -> Result<Identity, ProviderError> {
        let discovered = self
            .discovered()
            .ok_or_else(|| ProviderError::Unavailable("not discovered yet".to_owned()))?;
        let client = self.client(&discovered);
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|err| ProviderError::Exchange(err.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|err| match err {
                RequestTokenError::Request(err) => ProviderError::Unavailable(err.to_string()),
                RequestTokenError::ServerResponse(answer) => {
                    ProviderError::Exchange(format!("the provider answered {}", answer.error()))
                }
                RequestTokenError::Parse(..) => {
                    ProviderError::Exchange("the token response did not parse".to_owned())
                }
                RequestTokenError::Other(why) => ProviderError::Exchange(why),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| ProviderError::IdToken("the token response has none".to_owned()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let verify = |discovered: &Discovered| -> Result<Identity, ClaimsVerificationError> {
            let client = self.client(discovered);
            let verifier = client
                .id_token_verifier()
                .set_allowed_algs(discovered.algs.clone())
                .set_time_fn(move || (UNIX_EPOCH + Duration::from_secs(now.max(0) as u64)).into())
                .set_issue_time_verifier_fn(move |iat| iat_acceptable(iat.timestamp(), now));
            let claims = id_token.claims(&verifier, &nonce)?;
            // OIDC Core §3.1.3.7 item 5: an `azp` names this client.
            if claims
                .authorized_party()
                .is_some_and(|azp| azp.as_str() != self.client_id.as_str())
            {
                return Err(ClaimsVerificationError::InvalidAudience(
                    "azp is another client".to_owned(),
                ));
            }
            Ok(Identity {
                subject: claims.subject().as_str().to_owned(),
                email: claims.email().map(|e| e.as_str().to_owned()),
                email_verified: claims.email_verified().unwrap_or(false),
                preferred_username: claims.preferred_username().map(|u| u.as_str().to_owned()),
                name: claims
                    .name()
                    .and_then(|n| n.get(None))
                    .map(|n| n.as_str().to_owned()),
            })
        };
        match verify(&discovered) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) => {
                // The provider may have rotated its keys: fetch them again (rate limited)
                // and verify once more.
                let refreshed = self.refetch_keys().await.ok_or_else(|| {
                    ProviderError::IdToken("signed with an unknown key".to_owned())
                })?;
                verify(&refreshed).map_err(|err| ProviderError::IdToken(err.to_string()))
            }
            other => other.map_err(|err| ProviderError::IdToken(err.to_string())),
        }
    }

    /// The claims of an identity assertion signed with one of the provider's keys (the
    /// keys fetched again, at most once per [`JWKS_REFETCH_INTERVAL`], for a key not
    /// known yet). The claims are not judged here.
    pub async fn id_jag_claims(&self, jwt: &str) -> Result<IdJagClaims, Refusal> {
        let discovered = self.discovered().ok_or(Refusal::ProviderUnavailable)?;
        match id_jag::verify(jwt, &discovered.keys) {
            Err(Refusal::UnknownKey) => {
                let refreshed = self.refetch_keys().await.ok_or(Refusal::UnknownKey)?;
                id_jag::verify(jwt, &refreshed.keys)
            }
            other => other,
        }
    }

    /// Fetches the key set again, unless that was done less than
    /// [`JWKS_REFETCH_INTERVAL`] ago; the discovered state with the new keys.
    async fn refetch_keys(&self) -> Option<Arc<Discovered>> {
        {
            let mut last = self.last_refetch.lock().ok()?;
            if last.is_some_and(|at| at.elapsed() < JWKS_REFETCH_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        let current = self.discovered()?;
        let keys = CoreJsonWebKeySet::fetch_async(current.metadata.jwks_uri(), &self.http).await;
        let keys = match keys {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(provider = %self.id, error = %discovery_error(&err), "key set refetch failed");
                return None;
            }
        };
        let metadata = current.metadata.clone().set_jwks(keys);
        self.set_discovered(discovered(metadata));
        self.discovered()
    }
}

/// How to talk to a provider of this metadata.
fn discovered(metadata: Metadata) -> Discovered {
    let names_itself = metadata
        .additional_metadata()
        .authorization_response_iss_parameter_supported
        == Some(serde_json::Value::Bool(true));
    Discovered {
        keys: usable_keys(metadata.jwks()),
        auth_type: auth_type(metadata.token_endpoint_auth_methods_supported()),
        algs: signing_algs(metadata.id_token_signing_alg_values_supported()),
        names_itself,
        metadata,
    }
}

/// The keys of a provider's set that read as JWKs for `jsonwebtoken`, each on its own: a
/// key of a kind it does not know (an encryption key, say) is left out, not the set.
fn usable_keys(keys: &CoreJsonWebKeySet) -> jsonwebtoken::jwk::JwkSet {
    let listed = serde_json::to_value(keys)
        .ok()
        .and_then(|set| set.get("keys").and_then(|k| k.as_array()).cloned())
        .unwrap_or_default();
    jsonwebtoken::jwk::JwkSet {
        keys: listed
            .into_iter()
            .filter_map(|key| serde_json::from_value(key).ok())
            .collect(),
    }
}

/// The client authentication at the token endpoint: `client_secret_basic` unless the
/// provider supports only `client_secret_post` (OIDC Discovery §3: basic is the default).
fn auth_type(methods: Option<&Vec<CoreClientAuthMethod>>) -> AuthType {
    match methods {
        Some(methods)
            if !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
                && methods.contains(&CoreClientAuthMethod::ClientSecretPost) =>
        {
            AuthType::RequestBody
        }
        _ => AuthType::BasicAuth,
    }
}

/// The ID token algorithms accepted: the provider's asymmetric ones (never `none`, never
/// an HMAC keyed with the client secret); RS256 when it names none.
fn signing_algs(supported: &[CoreJwsSigningAlgorithm]) -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    let asymmetric = [
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ];
    let algs: Vec<_> = supported
        .iter()
        .filter(|alg| asymmetric.contains(alg))
        .cloned()
        .collect();
    if algs.is_empty() {
        vec![A::RsaSsaPkcs1V15Sha256]
    } else {
        algs
    }
}

/// Whether an ID token's `iat` fits `now`: not in the future beyond a little leeway, and
/// not older than [`IAT_MAX_AGE_SECONDS`].
fn iat_acceptable(iat: i64, now: i64) -> Result<(), String> {
    if iat > now.saturating_add(IAT_LEEWAY_SECONDS) {
        return Err("issued in the future".to_owned());
    }
    if iat < now.saturating_sub(IAT_MAX_AGE_SECONDS) {
        return Err("issued too long ago".to_owned());
    }
    Ok(())
}

/// A discovery failure for the log: without the body of the answer, with the cause
/// underneath a failed request (a name that does not resolve, a certificate refused, a
/// connection refused), which the request error alone does not say.
fn discovery_error(err: &openidconnect::DiscoveryError<FetchError>) -> String {
    match err {
        openidconnect::DiscoveryError::Response(status, _, why) => {
            format!("the provider answered {status}: {why}")
        }
        openidconnect::DiscoveryError::Request(err) => with_causes(err),
        other => other.to_string(),
    }
}

/// An error and each error beneath it, `: `-separated, repeats left out.
fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        let line = err.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = err.source();
    }
    text
}

async fn discover_until_found(provider: Weak<Provider>) {
    let mut wait = FIRST_RETRY;
    loop {
        let Some(provider) = provider.upgrade() else {
            return;
        };
        match provider.discover().await {
            Ok(()) => {
                tracing::info!(provider = %provider.id, "provider discovered");
                return;
            }
            Err(err) => {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    provider.issuer().trim_end_matches('/')
                );
                tracing::warn!(
                    provider = %provider.id,
                    %url,
                    error = %err,
                    retry_in_ms = wait.as_millis() as u64,
                    "provider discovery failed: {url}: {err}"
                );
            }
        }
        drop(provider);
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_unless_only_post_is_offered() {
        use CoreClientAuthMethod as M;
        assert!(matches!(auth_type(None), AuthType::BasicAuth));
        let both = vec![M::ClientSecretPost, M::ClientSecretBasic];
        assert!(matches!(auth_type(Some(&both)), AuthType::BasicAuth));
        let post = vec![M::ClientSecretPost, M::PrivateKeyJwt];
        assert!(matches!(auth_type(Some(&post)), AuthType::RequestBody));
    }

    #[test]
    fn only_asymmetric_algorithms_are_accepted() {
        use CoreJwsSigningAlgorithm as A;
        assert_eq!(
            signing_algs(&[A::HmacSha256, A::None]),
            vec![A::RsaSsaPkcs1V15Sha256]
        );
        assert_eq!(
            signing_algs(&[A::HmacSha256, A::EcdsaP256Sha256]),
            vec![A::EcdsaP256Sha256]
        );
    }

    #[test]
    fn iat_must_be_recent_and_not_ahead() {
        assert!(iat_acceptable(1_000, 1_000).is_ok());
        assert!(iat_acceptable(1_000 + IAT_LEEWAY_SECONDS, 1_000).is_ok());
        assert!(iat_acceptable(1_001 + IAT_LEEWAY_SECONDS, 1_000).is_err());
        assert!(iat_acceptable(1_000 - IAT_MAX_AGE_SECONDS, 1_000).is_ok());
        assert!(iat_acceptable(999 - IAT_MAX_AGE_SECONDS, 1_000).is_err());
    }
}
