//! `GET /login/callback/{id}`: where a provider sends the browser back (OIDC Core §3.1.2.5).
//! The sign-in its `state` names is taken once; a success continues as a password sign-in
//! does, a failure at the provider goes back to the client as an OAuth error.

use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::AppState;
use super::openapi::{
    ErrorPage, ForgedForm, MethodNotAllowed, ProviderCallback, ProviderId, RateLimited,
    UnavailablePage,
};
use super::pages::{self, PageError};
use super::visit::Visit;
use crate::signin::SigninError;
use crate::signin::federated::{self, Callback, CallbackStep};

pub const PATH: &str = "/login/callback/{id}";

#[utoipa::path(
    get,
    path = PATH,
    summary = "Where a provider sends the browser back after signing the user in",
    description = "Register `ISSUER/login/callback/{id}` as the redirect URI at the provider. \
        The `state` must name a sign-in sent to this provider from this browser in the last 10 \
        minutes and not used before; otherwise the error page. The code is exchanged at the \
        provider's token endpoint (`client_secret_basic`, or `client_secret_post` when that is \
        all the provider offers) with the PKCE verifier, and the ID token verified: signature \
        with the provider's keys (refetched once a minute at most for an unknown `kid`), \
        `iss`, `aud` (no other audience), `azp`, `exp`, `iat`, `nonce`; an `iss` in the query \
        (RFC 9207) must be the provider's; with \
        `allowed_email_domains`, a verified email at one of them. The first sign-in creates a \
        user linked to (provider, `sub`). A success starts a session and goes back to \
        `/authorize`; an error at the provider, a failed exchange, an ID token refused, a \
        domain not admitted or a disabled user goes back to the client with `access_denied`, \
        `server_error` or `temporarily_unavailable`. Rate limited per client address.",
    params(ProviderId, ProviderCallback),
    responses(
        (status = 303, description = "A redirect (`303 See Other`): back to `/authorize` with \
            the new session cookie, or to the client with an error."),
        (status = 400, response = ErrorPage),
        (status = 403, response = ForgedForm),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
        (status = 503, response = UnavailablePage),
    )
)]
pub async fn callback(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let answer = parse(query.as_deref().unwrap_or(""))?;
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = federated::callback(&cx, browser, &id, &answer).await?;
        Ok::<_, PageError>(match step {
            CallbackStep::SignedIn {
                session_cookie,
                next,
            } => pages::signed_in(&visit.signin, &session_cookie, &visit.browser(), &next),
            CallbackStep::Redirect(to) => pages::see_other(&to),
        })
    }
    .await;
    pages::answer(&visit, outcome)
}

/// The provider's answer; a parameter given twice is refused (OAuth 2.1 §3.1).
fn parse(query: &str) -> Result<Callback, SigninError> {
    let mut answer = Callback::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "code" => &mut answer.code,
            "state" => &mut answer.state,
            "error" => &mut answer.error,
            "iss" => &mut answer.iss,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(SigninError::BadForm);
        }
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_parse_once_each() {
        let answer = parse("code=c&state=s&iss=x&session_state=y").unwrap();
        assert_eq!(answer.code.as_deref(), Some("c"));
        assert_eq!(answer.state.as_deref(), Some("s"));
        assert_eq!(answer.error, None);
        assert!(parse("state=a&state=b").is_err());
        assert!(parse("").unwrap().state.is_none());
    }
}
