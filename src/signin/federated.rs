//! Signing in through a provider (`[[login.providers]]`), as the browser goes: from the
//! login page (or straight from `/authorize`) to the provider with a fresh `state`, and
//! back to `/login/callback/{id}`, where the sign-in is taken once, checked to be this
//! browser's, and, with the user the provider identified, continues as a password
//! sign-in does: a session, then consent or a code.
//!
//! `state` is random and stored only as its digest, with the browser and the pending
//! authorization request; the PKCE verifier and `nonce` are derived from it with the
//! sign-in key, so nothing secret is stored and any instance can take the callback.

use super::binding::{Browser, PendingError, PendingForm};
use super::key::Purpose;
use super::request::{self, ErrorCode, ErrorResponse};
use super::view::{Answer, Location, Shown, browser_cookie};
use super::{Context, Prompt, SigninError, check, open, redirect, start_session, to_client};
use crate::audit::{Event, EventType};
use crate::federation::identity;
use crate::federation::link;
use crate::federation::{Provider, ProviderError};
use crate::secret::RawToken;
use crate::store::{FederatedLoginRecord, PendingBounds};
use crate::token::{opaque, random_string};

/// How long a sign-in sent to a provider may take to come back, in seconds.
pub const PROVIDER_SIGNIN_TTL_SECONDS: i64 = 600;

/// Sign-ins sent to a provider kept at once: per browser and provider (a few tabs signing
/// in at the same time; a newer one pushes out the oldest), and in all (a script that
/// drops its cookies gets a new browser each time). Expired ones are forgotten on every
/// write and by the upkeep.
pub const PENDING_PROVIDER_SIGNINS: PendingBounds = PendingBounds {
    per_browser: 3,
    total: 10_000,
};

/// The one description of every refusal after the provider answered: the client and the
/// user learn that the sign-in was not accepted, never which check failed.
const NOT_ACCEPTED: &str = "the sign-in at the identity provider was not accepted";

/// The PKCE verifier and `nonce` of a `state`.
fn derived(cx: &Context<'_>, state: &str) -> (String, String) {
    let key = &cx.signin.key;
    (
        key.token(Purpose::ProviderVerifier, &[state.as_bytes()]),
        key.token(Purpose::ProviderNonce, &[state.as_bytes()]),
    )
}

/// Sends the browser to `provider` for `prompt`: stores the sign-in and answers the
/// provider's authorization URL; the login page when the provider is not available.
pub async fn start(
    cx: &Context<'_>,
    browser: &Browser,
    provider: &Provider,
    prompt: Prompt,
) -> Result<Answer, SigninError> {
    let state = random_string(32);
    let (verifier, nonce) = derived(cx, &state);
    let Some(url) = provider.authorization_url(&state, &nonce, &verifier) else {
        return Ok(Answer::login(cx, browser, prompt, None));
    };
    cx.store
        .insert_federated_login(
            &FederatedLoginRecord {
                state_digest: opaque::digest(&state),
                provider_id: provider.id.clone(),
                browser_id: browser.id.clone(),
                request: prompt.request.to_query(),
                created_at: cx.now,
                expires_at: cx.now.saturating_add(PROVIDER_SIGNIN_TTL_SECONDS),
            },
            cx.now,
            PENDING_PROVIDER_SIGNINS,
        )
        .await?;
    Ok(Answer {
        shown: Shown::Redirect(Location::Provider(url)),
        cookies: vec![browser_cookie(cx, browser)],
    })
}

/// `POST /login/provider/{id}`: the login page's button for a provider. The form is
/// checked as the password form is, then the browser goes to the provider; back to
/// `/authorize` (and its login page) when the provider is not available after all.
pub async fn start_from_form(
    cx: &Context<'_>,
    pending: &PendingForm,
    browser: Option<&Browser>,
    provider_id: &str,
) -> Result<Answer, SigninError> {
    let query = open(cx, pending, browser)?;
    let browser = browser.ok_or(SigninError::Pending(PendingError::NoCookie))?;
    let provider = cx
        .signin
        .providers
        .get(provider_id)
        .ok_or(SigninError::UnknownProvider)?;
    let prompt = match check(cx, &request::parse(&query)).await? {
        Ok(prompt) => prompt,
        Err(to) => return Ok(Answer::redirect(to)),
    };
    let answer = start(cx, browser, provider, prompt).await?;
    Ok(match answer.shown {
        Shown::Login(view) => Answer::redirect(Location::Authorize(view.prompt.request)),
        _ => answer,
    })
}

/// The query a provider sends the browser back with (OIDC Core sections 3.1.2.5 and
/// 3.1.2.6, OAuth 2.1 §4.1.2 and §4.1.2.1). Each parameter may be given once.
#[derive(Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Callback {
    /// The authorization code, on success.
    #[param(value_type = String, required = false)]
    pub code: Option<RawToken>,
    /// The `state` sent to the provider.
    #[param(value_type = String, required = true)]
    pub state: Option<String>,
    /// The provider's error code, on failure.
    #[param(value_type = String, required = false)]
    pub error: Option<String>,
    /// The provider's issuer (RFC 9207); when present it must be the provider's.
    #[param(value_type = String, required = false)]
    pub iss: Option<String>,
}

impl crate::params::Parameters for Callback {}

/// What the callback answers: signed in (a new session, on to `/authorize`), or a
/// redirect back to the client with an error.
/// `GET /login/callback/{id}`: takes the sign-in `state` names (once), checks that it is
/// this browser's and this provider's, exchanges the code, verifies the ID token, finds
/// or creates the linked user and starts a session.
pub async fn callback(
    cx: &Context<'_>,
    browser: Option<&Browser>,
    provider_id: &str,
    answer: &Callback,
) -> Result<Answer, SigninError> {
    let provider = cx
        .signin
        .providers
        .get(provider_id)
        .ok_or(SigninError::UnknownProvider)?;
    let state = answer.state.as_deref().ok_or(SigninError::ProviderState)?;
    let login = cx
        .store
        .take_federated_login(&opaque::digest(state))
        .await?
        .filter(|login| login.provider_id == provider.id && cx.now < login.expires_at)
        .ok_or(SigninError::ProviderState)?;
    let browser = browser.ok_or(SigninError::Pending(PendingError::NoCookie))?;
    if login.browser_id != browser.id {
        return Err(SigninError::Pending(PendingError::Forged));
    }
    let prompt = match check(cx, &request::parse(&login.request)).await? {
        Ok(prompt) => prompt,
        Err(to) => return Ok(Answer::redirect(to)),
    };
    let attempted = Event::new(EventType::SigninSucceeded)
        .client(&prompt.client.client_id)
        .address(cx.ip)
        .detail("method", "provider")
        .detail("provider", provider.id.as_str());
    let refuse = |code: ErrorCode, description: &'static str| {
        cx.audit
            .record(attempted.clone().retyped(EventType::SigninFailed));
        let error = ErrorResponse::new(code, description);
        let to = redirect::with_error(&prompt.request.refusal(error), cx.issuer);
        Ok(Answer::redirect(to_client(to)?))
    };
    if !issuer_acceptable(
        answer.iss.as_deref(),
        provider.issuer(),
        provider.names_itself(),
    ) {
        tracing::warn!(provider = %provider.id, "the callback names another issuer, or none though the provider names itself");
        return refuse(ErrorCode::AccessDenied, NOT_ACCEPTED);
    }
    if let Some(error) = &answer.error {
        tracing::info!(provider = %provider.id, error = %error.escape_debug(), "the provider refused the sign-in");
        return refuse(provider_error_code(error), NOT_ACCEPTED);
    }
    let Some(code) = answer.code.as_ref().map(RawToken::expose) else {
        return refuse(ErrorCode::ServerError, "the identity provider sent no code");
    };
    let (verifier, nonce) = derived(cx, state);
    let identity = match provider.sign_in(code, &verifier, &nonce, cx.now).await {
        Ok(identity) => identity,
        Err(err) => {
            tracing::warn!(provider = %provider.id, error = %err, "sign-in through a provider failed");
            return match err {
                ProviderError::Unavailable(_) => refuse(
                    ErrorCode::TemporarilyUnavailable,
                    "the identity provider cannot be reached",
                ),
                ProviderError::Exchange(_) => refuse(
                    ErrorCode::ServerError,
                    "the identity provider's code could not be exchanged",
                ),
                ProviderError::IdToken(_) => refuse(ErrorCode::AccessDenied, NOT_ACCEPTED),
            };
        }
    };
    let Some(identity) = identity::storable(identity) else {
        tracing::warn!(provider = %provider.id, "the ID token's sub cannot name a user");
        return refuse(ErrorCode::AccessDenied, NOT_ACCEPTED);
    };
    if !identity::email_admitted(&identity, &provider.allowed_email_domains) {
        tracing::info!(provider = %provider.id, "email domain not admitted");
        return refuse(ErrorCode::AccessDenied, NOT_ACCEPTED);
    }
    let Some(user) = link::linked_user(cx.store, &provider.id, &identity, cx.now).await? else {
        tracing::warn!(provider = %provider.id, "no free username for a new user");
        return refuse(ErrorCode::ServerError, "the account could not be created");
    };
    if user.disabled {
        return refuse(ErrorCode::AccessDenied, NOT_ACCEPTED);
    }
    let session = start_session(cx, &user, browser).await?;
    cx.audit.record(attempted.user(&user.user_id));
    Ok(Answer::signed_in(cx, browser, prompt.request, session))
}

/// RFC 9207 §2.4: whether the `iss` of a provider's authorization response is
/// acceptable. One naming another issuer is a mix-up; one without `iss` from a provider
/// that advertises `authorization_response_iss_parameter_supported` may come from
/// another server too. Without that promise, no `iss` is accepted.
fn issuer_acceptable(given: Option<&str>, issuer: &str, names_itself: bool) -> bool {
    match given {
        Some(iss) => iss == issuer,
        None => !names_itself,
    }
}

/// The error sent to the client for a provider's error answer.
fn provider_error_code(error: &str) -> ErrorCode {
    match error {
        "temporarily_unavailable" => ErrorCode::TemporarilyUnavailable,
        "server_error" => ErrorCode::ServerError,
        _ => ErrorCode::AccessDenied,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issuer_must_be_named_when_the_provider_promised_to() {
        let issuer = "https://idp.example";
        assert!(issuer_acceptable(Some(issuer), issuer, true));
        assert!(issuer_acceptable(Some(issuer), issuer, false));
        assert!(issuer_acceptable(None, issuer, false));
        assert!(!issuer_acceptable(None, issuer, true));
        for other in ["https://evil.example", "https://idp.example/", ""] {
            assert!(!issuer_acceptable(Some(other), issuer, true), "{other}");
            assert!(!issuer_acceptable(Some(other), issuer, false), "{other}");
        }
    }

    #[test]
    fn provider_errors_map_to_client_errors() {
        assert_eq!(
            provider_error_code("access_denied"),
            ErrorCode::AccessDenied
        );
        assert_eq!(
            provider_error_code("login_required"),
            ErrorCode::AccessDenied
        );
        assert_eq!(
            provider_error_code("temporarily_unavailable"),
            ErrorCode::TemporarilyUnavailable
        );
        assert_eq!(provider_error_code("server_error"), ErrorCode::ServerError);
        assert_eq!(provider_error_code("<script>"), ErrorCode::AccessDenied);
    }
}
