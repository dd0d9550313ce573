//! Signing users in for clients: the authorization code grant with PKCE (OAuth 2.1 §4.1,
//! RFC 7636) as far as the browser sees it. The authorization request is checked
//! ([`request`]), the user signs in with a password into a session shared by every
//! instance, consents (remembered per user, client, scope and resources), and is sent
//! back to the client with a code ([`redirect`]). Exchanging the code is a grant of the
//! token endpoint (`crate::grant::authorization_code`).

pub mod binding;
pub mod federated;
pub mod key;
pub mod passwords;
pub mod redirect;
pub mod request;
pub mod view;

use std::sync::Arc;
use std::time::Duration;

use crate::audit::{Event, EventType};
use crate::cache::View;
use crate::config::Config;
use crate::federation::Providers;
use crate::policy::session_active;
use crate::secret::Password;
use crate::store::{
    ClientRecord, CodeRecord, ConsentRecord, SealedSecret, SessionRecord, Store, StoreError,
    UserRecord,
};
use crate::token::kek::{self, KekError};
use crate::token::{new_jti, opaque, random_string};
use binding::{Browser, PendingError, PendingForm};
use key::{KEY_BYTES, Purpose, SigninKey};
use passwords::{Passwords, Refused};
use request::{AuthorizationRequest, ErrorCode, ErrorResponse, RawRequest, RequestError, Shown};
use view::{Answer, Location, SetCookie};

/// How long an authorization code may be exchanged, in seconds (OAuth 2.1 §4.1.2
/// recommends at most ten minutes; a client exchanges it at once).
pub const CODE_TTL_SECONDS: i64 = 60;

/// The name the sign-in key is stored under.
const KEY_NAME: &str = "signin";

/// Why a sign-in step could not go on. Shown to the user as a page: none of these may
/// be sent to a client.
#[derive(Debug, thiserror::Error)]
pub enum SigninError {
    /// The client or its redirect URI is not verified (OAuth 2.1 §4.1.2.1).
    #[error("authorization request refused: {0:?}")]
    Shown(Shown),
    /// A form of a pending sign-in that is not this browser's, altered or expired.
    #[error("sign-in form refused: {0:?}")]
    Pending(PendingError),
    /// A form without the fields its page sends.
    #[error("malformed sign-in form")]
    BadForm,
    /// No provider of that id is configured.
    #[error("unknown provider")]
    UnknownProvider,
    /// A provider's callback whose `state` names no pending sign-in of that provider:
    /// unknown, used before, or expired.
    #[error("unknown or used provider state")]
    ProviderState,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Sign-in as this instance runs it: the shared key, the password failure budgets and
/// the session settings.
#[derive(Debug)]
pub struct Signin {
    pub key: SigninKey,
    pub passwords: Passwords,
    /// Cookies carry `Secure` when the issuer is https.
    pub secure_cookies: bool,
    pub session_ttl: i64,
    /// Whether the password form is offered.
    pub local_users: bool,
    /// The name on top of every page: the issuer's host.
    pub issuer_name: String,
    /// The OpenID Connect providers users may sign in through.
    pub providers: Providers,
}

impl Signin {
    /// Loads (or, on first start, creates and stores) the shared sign-in key.
    pub async fn load(config: &Config, store: &Store) -> Result<Self, LoadError> {
        let key = load_key(config, store).await?;
        let providers = Providers::start(config).map_err(LoadError::Providers)?;
        let issuer = url::Url::parse(&config.issuer).ok();
        Ok(Signin {
            key,
            passwords: Passwords::new(&config.rate_limit),
            secure_cookies: issuer.as_ref().is_some_and(|u| u.scheme() == "https"),
            session_ttl: i64::try_from(config.login.session_ttl_seconds).unwrap_or(i64::MAX),
            local_users: config.login.local_users,
            issuer_name: issuer
                .as_ref()
                .and_then(issuer_name)
                .unwrap_or_else(|| config.issuer.clone()),
            providers,
        })
    }
}

/// The name on top of the pages: the issuer's host, and its port when not the default.
fn issuer_name(issuer: &url::Url) -> Option<String> {
    let host = issuer.host_str()?;
    Some(match issuer.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// The stored sign-in key, opened with the key-encryption key; generated, sealed and
/// stored when there is none (the first instance to store one wins).
async fn load_key(config: &Config, store: &Store) -> Result<SigninKey, LoadError> {
    let kek = kek::resolve_always(config)?;
    let stored = match store.sealed_secret(KEY_NAME).await? {
        Some(stored) => stored,
        None => {
            let (sealed, encryption) = kek.seal_secret(KEY_NAME, &SigninKey::generate());
            let secret = SealedSecret {
                name: KEY_NAME.to_owned(),
                sealed,
                encryption,
                created_at: crate::token::now(),
            };
            store.insert_sealed_secret(&secret).await?;
            store
                .sealed_secret(KEY_NAME)
                .await?
                .ok_or(KekError::Missing)?
        }
    };
    let bytes = kek.open_secret(KEY_NAME, &stored.sealed, &stored.encryption)?;
    let bytes: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| KekError::Corrupt {
        kid: KEY_NAME.to_owned(),
    })?;
    Ok(SigninKey::new(&bytes))
}

/// Why the sign-in key could not be had at start-up.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("sign-in key: {0}")]
    Kek(#[from] KekError),
    #[error("sign-in key: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Providers(String),
}

/// What one sign-in request works with: the request's view of the store, the store,
/// sign-in settings, the issuer and the one `now` the request is judged at.
pub struct Context<'a> {
    pub view: &'a View,
    pub store: &'a Store,
    pub signin: &'a Signin,
    pub issuer: &'a str,
    /// Client ID metadata documents, when accepted.
    pub documents: Option<&'a crate::documents::Documents>,
    /// The audit trail.
    pub audit: &'a crate::audit::Recorder,
    /// The address the request came from.
    pub ip: std::net::IpAddr,
    pub now: i64,
}

/// A verified authorization request and its client.
#[derive(Clone, Debug)]
pub struct Prompt {
    pub request: AuthorizationRequest,
    pub client: Arc<ClientRecord>,
    /// The resources the tokens will name: those asked for, or, when none were, the
    /// client's registered resources.
    pub resources: Vec<String>,
}

impl Prompt {
    /// The scope items, for the consent page.
    pub fn scopes(&self) -> Vec<String> {
        crate::policy::scope_items(self.request.scope.as_deref().unwrap_or(""))
            .into_iter()
            .map(str::to_owned)
            .collect()
    }
}

/// Whether a client registered itself rather than being registered by an operator: at
/// `POST /register`, or as a client ID metadata document (whose client id is an https
/// URL). The consent page says so plainly.
pub fn self_registered(client: &ClientRecord) -> bool {
    client.origin.self_registered() || client.client_id.starts_with("https://")
}

/// Whether a client ID metadata document's client returns only to loopback redirect
/// URIs: whoever published the document, the application is a program on the user's
/// computer, and the consent page says so plainly.
pub fn runs_on_this_computer(client: &ClientRecord) -> bool {
    use crate::policy::{RedirectKind, redirect_kind};
    client.origin == crate::vocabulary::ClientOrigin::MetadataDocument
        && !client.redirect_uris.is_empty()
        && client
            .redirect_uris
            .iter()
            .all(|uri| redirect_kind(uri) == Some(RedirectKind::Loopback))
}

/// A signed-in browser: its session id and user.
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub session_id: String,
    pub user: UserRecord,
}

/// A client's redirect URI with an error or a code; a verified redirect URI is always
/// one, so `None` is refused as an unverified one would be.
fn to_client(url: Option<url::Url>) -> Result<Location, SigninError> {
    url.map(Location::Client)
        .ok_or(SigninError::Shown(Shown::BadRedirectUri))
}

/// An authorization request checked through and through, or where the error goes back
/// to the client.
async fn check(
    cx: &Context<'_>,
    raw: &RawRequest,
) -> Result<Result<Prompt, Location>, SigninError> {
    let client_id = raw.client_id().map_err(SigninError::Shown)?;
    // A client id that is an https URL is a metadata document's: usable only while its
    // document is (and never when documents are not accepted).
    if crate::documents::is_document_id(client_id) {
        let usable = match cx.documents {
            Some(documents) => {
                documents
                    .resolve(cx.store, client_id, cx.ip, cx.now)
                    .await?
            }
            None => false,
        };
        if !usable {
            return Err(SigninError::Shown(Shown::UnknownClient));
        }
    }
    let client = cx.view.client(client_id).await?;
    let request = match raw.validate(client.as_deref()) {
        Ok(request) => request,
        Err(RequestError::Shown(shown)) => {
            if let (Shown::BadRedirectUri, Some(client)) = (shown, &client) {
                log_refused_redirect_uri(client, raw.redirect_uri());
            }
            return Err(SigninError::Shown(shown));
        }
        Err(RequestError::Redirect(to)) => {
            return Ok(Err(to_client(redirect::with_error(&to, cx.issuer))?));
        }
    };
    let client = client.ok_or(SigninError::Shown(Shown::UnknownClient))?;
    // SPEC: a resource must be an audience some resource server is registered for.
    for resource in &request.resources {
        if !cx.store.audience_registered(resource).await? {
            let error = ErrorResponse::new(
                ErrorCode::InvalidTarget,
                "resource is not a registered audience",
            );
            let to = redirect::with_error(&request.refusal(error), cx.issuer);
            return Ok(Err(to_client(to)?));
        }
    }
    let resources = if request.resources.is_empty() {
        client.policy.resources.clone()
    } else {
        request.resources.clone()
    };
    Ok(Ok(Prompt {
        request,
        client,
        resources,
    }))
}

/// Longest part of a refused `redirect_uri` that is logged.
const LOGGED_REDIRECT_URI_CHARS: usize = 512;

/// Tells the operator which redirect URI a client sent that matches none it registered:
/// the usual cause is a registration that differs from what the client sends (another
/// path, a trailing slash, http for https). Debug-quoted, so nothing sent can forge a
/// log line.
fn log_refused_redirect_uri(client: &ClientRecord, sent: Option<&str>) {
    let sent: Option<String> =
        sent.map(|uri| uri.chars().take(LOGGED_REDIRECT_URI_CHARS).collect());
    tracing::info!(
        client_id = %client.client_id,
        redirect_uri = ?sent,
        registered = ?client.redirect_uris,
        "refused an authorization request: its redirect_uri matches none registered for \
         the client (client update --redirect-uri changes them)"
    );
}

/// `GET /authorize`: a signed-in user who allowed this confidential client before goes
/// straight back to it with a code; otherwise the consent page (always, for a public
/// client), or first the login page.
pub async fn authorize(
    cx: &Context<'_>,
    request: &RawRequest,
    browser: &Browser,
    signed_in: Option<SignedIn>,
) -> Result<Answer, SigninError> {
    let prompt = match check(cx, request).await? {
        Ok(prompt) => prompt,
        Err(to) => return Ok(Answer::redirect(to)),
    };
    let Some(signed_in) = signed_in else {
        return sign_in_first(cx, browser, prompt).await;
    };
    let consented = crate::policy::consent_may_be_remembered(prompt.client.auth_method)
        && cx
            .store
            .has_consent(
                &signed_in.user.user_id,
                &prompt.client.client_id,
                prompt.request.scope.as_deref(),
                &prompt.resources,
            )
            .await?;
    if consented {
        let to = issue_code(cx, &signed_in.user, &prompt).await?;
        return Ok(Answer::redirect(to));
    }
    Ok(Answer::consent(cx, browser, prompt, signed_in))
}

/// Where a browser that is not signed in goes: straight to the one provider when there
/// is no password form and that provider is available, else the login page.
async fn sign_in_first(
    cx: &Context<'_>,
    browser: &Browser,
    prompt: Prompt,
) -> Result<Answer, SigninError> {
    let providers = &cx.signin.providers;
    match providers.iter().next() {
        Some(provider) if !cx.signin.local_users && providers.len() == 1 => {
            federated::start(cx, browser, provider, prompt).await
        }
        _ => Ok(Answer::login(cx, browser, prompt, None)),
    }
}

/// Why a login form did not sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginProblem {
    /// Unknown user, wrong password or disabled user: never told apart.
    Refused,
    /// A failure budget is spent; try again after this long.
    Throttled(Duration),
}

/// The login form: checks the pending request again, then the password within the
/// failure budgets; a success starts a session and remembers that the user proved their
/// password from this browser. A failure shows the login page again, saying why.
pub async fn login(
    cx: &Context<'_>,
    pending: &PendingForm,
    browser: Option<&Browser>,
    credentials: (&str, &Password),
    ip: std::net::IpAddr,
) -> Result<Answer, SigninError> {
    let query = open(cx, pending, browser)?;
    // `login.local_users = false`: the page offers no password form, and none is taken.
    if !cx.signin.local_users {
        return Err(SigninError::BadForm);
    }
    let mut browser = browser
        .cloned()
        .ok_or(SigninError::Pending(PendingError::NoCookie))?;
    let prompt = match check(cx, &request::parse(&query)).await? {
        Ok(prompt) => prompt,
        Err(to) => return Ok(Answer::redirect(to)),
    };
    let (username, password) = credentials;
    let attempt = passwords::Attempt {
        username,
        password,
        browser: &browser,
        ip,
        now: cx.now,
    };
    let verified = cx
        .signin
        .passwords
        .verify(cx.store, &cx.signin.key, &attempt)
        .await?;
    let attempted = Event::new(EventType::SigninSucceeded)
        .client(&prompt.client.client_id)
        .address(ip)
        .detail("method", "password");
    let user = match verified {
        Ok(user) => user,
        Err(refused) => {
            let (kind, problem) = match refused {
                Refused::Wrong => (EventType::SigninFailed, LoginProblem::Refused),
                Refused::Throttled(wait) => {
                    (EventType::SigninLocked, LoginProblem::Throttled(wait))
                }
            };
            cx.audit
                .record(refused_signin(cx, attempted, kind, username).await);
            let retry = Some((username.trim().to_owned(), problem));
            return Ok(Answer::login(cx, &browser, prompt, retry));
        }
    };
    browser.proved(&cx.signin.key, &user);
    let session = start_session(cx, &user, &browser).await?;
    cx.audit.record(attempted.user(&user.user_id));
    Ok(Answer::signed_in(cx, &browser, prompt.request, session))
}

/// A refused sign-in's event: the user named, when the name is one, never the name
/// typed (a password typed in the wrong field must not end up in the trail).
async fn refused_signin(cx: &Context<'_>, event: Event, kind: EventType, name: &str) -> Event {
    let mut event = event.retyped(kind);
    let user = match crate::policy::normalize_username(name) {
        Some(username) => cx.store.user_by_username(&username).await.ok().flatten(),
        None => None,
    };
    if let Some(user) = user {
        event = event.user(&user.user_id);
    }
    event
}

/// The consent form: `allow` remembers the decision and sends a code, `deny` sends
/// `access_denied`; without a session, back to the login page.
pub async fn consent(
    cx: &Context<'_>,
    pending: &PendingForm,
    browser: Option<&Browser>,
    signed_in: Option<SignedIn>,
    decision: &str,
) -> Result<Answer, SigninError> {
    let query = open(cx, pending, browser)?;
    let prompt = match check(cx, &request::parse(&query)).await? {
        Ok(prompt) => prompt,
        Err(to) => return Ok(Answer::redirect(to)),
    };
    let Some(signed_in) = signed_in else {
        return Ok(Answer::redirect(Location::Authorize(prompt.request)));
    };
    match decision {
        "allow" => {
            let consent = ConsentRecord {
                user_id: signed_in.user.user_id.clone(),
                client_id: prompt.client.client_id.clone(),
                scope: prompt.request.scope.clone(),
                resources: prompt.resources.clone(),
                created_at: cx.now,
            };
            cx.store.remember_consent(&consent).await?;
            cx.audit.record(
                Event::new(EventType::ConsentGranted)
                    .client(&prompt.client.client_id)
                    .user(&signed_in.user.user_id)
                    .address(cx.ip)
                    .detail("scope", prompt.request.scope.clone().unwrap_or_default())
                    .detail("resources", prompt.resources.clone()),
            );
            let to = issue_code(cx, &signed_in.user, &prompt).await?;
            Ok(Answer::redirect(to))
        }
        "deny" => {
            cx.audit.record(
                Event::new(EventType::ConsentDenied)
                    .client(&prompt.client.client_id)
                    .user(&signed_in.user.user_id)
                    .address(cx.ip),
            );
            let denied = ErrorResponse::new(ErrorCode::AccessDenied, "the user denied the request");
            let to = redirect::with_error(&prompt.request.refusal(denied), cx.issuer);
            Ok(Answer::redirect(to_client(to)?))
        }
        _ => Err(SigninError::BadForm),
    }
}

fn open(
    cx: &Context<'_>,
    pending: &PendingForm,
    browser: Option<&Browser>,
) -> Result<String, SigninError> {
    binding::open_pending(&cx.signin.key, browser, pending, cx.now).map_err(SigninError::Pending)
}

/// The signed-in user of a session cookie, when the cookie is ours and was made in
/// this browser, its session is still stored and active, and its user still exists and
/// is enabled.
pub async fn signed_in(
    cx: &Context<'_>,
    cookie: &str,
    browser: &Browser,
) -> Result<Option<SignedIn>, StoreError> {
    let Some(value) = cx.signin.key.verify(Purpose::Session, cookie) else {
        return Ok(None);
    };
    // A session cookie presented with another browser's cookie is no session: another
    // site of the domain may have tossed its own pair of cookies in.
    let Some((session_id, browser_id)) = value.split_once(binding::SEPARATOR) else {
        return Ok(None);
    };
    if browser_id != browser.id {
        return Ok(None);
    }
    let Some(session) = cx
        .store
        .session_by_digest(&opaque::digest(session_id))
        .await?
    else {
        return Ok(None);
    };
    if !session_active(session.expires_at, cx.now) {
        return Ok(None);
    }
    let user = cx.store.user_by_id(&session.user_id).await?;
    Ok(user.filter(|u| !u.disabled).map(|user| SignedIn {
        session_id: session_id.to_owned(),
        user,
    }))
}

/// Stores a new session for `user`; the value of its cookie, bound to `browser`.
async fn start_session(
    cx: &Context<'_>,
    user: &UserRecord,
    browser: &Browser,
) -> Result<String, StoreError> {
    let session_id = random_string(32);
    cx.store
        .insert_session(&SessionRecord {
            digest: opaque::digest(&session_id),
            user_id: user.user_id.clone(),
            created_at: cx.now,
            expires_at: cx.now.saturating_add(cx.signin.session_ttl),
        })
        .await?;
    let value = format!("{session_id}{}{}", binding::SEPARATOR, browser.id);
    Ok(cx.signin.key.sign(Purpose::Session, &value))
}

/// `POST /logout`: ends the browser's session, only when the form's token was made for
/// it, and shows the signed-out page. Without a session nothing is ended (nor any cookie
/// cleared): a form posted from another site, which a browser sends without the
/// `SameSite=Lax` cookies, signs nobody out.
pub async fn sign_out(
    cx: &Context<'_>,
    signed_in: Option<&SignedIn>,
    csrf_token: &str,
) -> Result<Answer, SigninError> {
    let signed_out = |cookies| Answer {
        shown: view::Shown::SignedOut,
        cookies,
    };
    let Some(signed_in) = signed_in else {
        return Ok(signed_out(Vec::new()));
    };
    if !binding::verify_sign_out_token(&cx.signin.key, &signed_in.session_id, csrf_token) {
        return Err(SigninError::Pending(PendingError::Forged));
    }
    cx.store
        .delete_session(&opaque::digest(&signed_in.session_id))
        .await?;
    Ok(signed_out(vec![SetCookie::SessionCleared]))
}

/// Stores a new authorization code for the user's request; the redirect back to the
/// client that carries it (RFC 9207: with `iss`).
async fn issue_code(
    cx: &Context<'_>,
    user: &UserRecord,
    prompt: &Prompt,
) -> Result<Location, SigninError> {
    let code = opaque::generate();
    let request = &prompt.request;
    cx.store
        .insert_authorization_code(&CodeRecord {
            digest: opaque::digest(code.expose()),
            client_id: prompt.client.client_id.clone(),
            user_id: user.user_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            code_challenge: request.code_challenge.clone(),
            scope: request.scope.clone(),
            resources: prompt.resources.clone(),
            created_at: cx.now,
            expires_at: cx.now.saturating_add(CODE_TTL_SECONDS),
            used_at: None,
            family_id: new_jti(),
        })
        .await?;
    to_client(redirect::with_code(
        &request.redirect_uri,
        code.expose(),
        request.state.as_deref(),
        cx.issuer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_name_the_issuers_host() {
        let name = |issuer: &str| issuer_name(&url::Url::parse(issuer).unwrap());
        assert_eq!(
            name("https://auth.example.com/tenant").as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(
            name("https://auth.example.com:443").as_deref(),
            Some("auth.example.com")
        );
        assert_eq!(
            name("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
    }
}
