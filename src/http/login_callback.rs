//! `GET /login/callback/{id}`: where a provider sends the browser back (OIDC Core §3.1.2.5).
//! The sign-in its `state` names is taken once; a success continues as a password sign-in
//! does, a failure at the provider goes back to the client as an OAuth error.

use axum::extract::{Path, State};
use axum::response::Response;

use super::AppState;
use super::docs::{
    ErrorPage, ForgedForm, MethodNotAllowed, ProviderId, RateLimited, UnavailablePage,
};
use super::pages::{self, At, PageError};
use super::params::Query;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin::SigninError;
use crate::signin::federated::{self, Callback};

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
    params(ProviderId, Callback),
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
    query: Result<Query<Callback>, ApiError>,
) -> Response {
    let outcome = async {
        // A parameter given twice is refused (OAuth 2.1 §3.1).
        let Query(answer) = query.map_err(|_| SigninError::BadForm)?;
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = federated::callback(&cx, browser, &id, &answer).await?;
        Ok::<_, PageError>(pages::render(&visit, At::ProviderPage, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
