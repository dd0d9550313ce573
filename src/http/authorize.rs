//! `GET /authorize` (OAuth 2.1 §4.1.1): the authorization endpoint. A signed-in user who
//! allowed the same request before goes straight back to the client with a code;
//! otherwise the consent page, or first the login page.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::docs::{ErrorPage, MethodNotAllowed, Page, RateLimited, UnavailablePage};
use super::pages::{self, At};
use super::params::Query;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin;
use crate::signin::request::RawRequest;

pub const PATH: &str = "/authorize";

#[utoipa::path(
    get,
    path = PATH,
    summary = "Authorization endpoint (OAuth 2.1 section 4.1.1) with PKCE (RFC 7636, S256 only) \
        and resource indicators (RFC 8707)",
    description = "Served when `login.enabled` (the default). Parameters: \
        `response_type=code`, `client_id`, `redirect_uri` (registered for the client; \
        loopback `http` URIs match on any port, RFC 8252 section 7.3), `code_challenge` with \
        `code_challenge_method=S256`, `state`, optional `scope` (within the client's \
        registered scope; none asked: all of it) and `resource` (repeatable; each an audience \
        registered for some client). A `client_id` that is an https URL names a Client ID \
        Metadata Document, fetched and checked before anything else (with \
        `registration.metadata_documents`); one that cannot be fetched or is not valid is an \
        unknown client. An unknown or disabled client, or a redirect URI not \
        registered for it, is shown as an error page and never redirected to; any other error \
        goes back to the client with `error`, `error_description`, `state` and `iss`. A \
        browser signed in (session cookie) whose user allowed the same client, scope and \
        resources before goes straight back with a code; otherwise the consent page, or \
        first the login page; with `login.local_users = false` and one provider in \
        `[[login.providers]]`, first that provider's sign-in (a redirect to it). Never \
        CORS-readable. Rate limited per client address.",
    params(RawRequest),
    responses(
        (status = 200, description = "The login page (fields `username`, `password`, and a \
            button per provider posting to `/login/provider/{id}`) or, for a signed-in \
            browser, the consent page (buttons `decision=allow` and `decision=deny`).",
            body = Page, content_type = "text/html"),
        (status = 303, description = "A redirect (`303 See Other`)."),
        (status = 400, response = ErrorPage),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
        (status = 503, response = UnavailablePage),
    )
)]
pub async fn authorize(
    State(state): State<AppState>,
    visit: Visit,
    query: Result<Query<RawRequest>, ApiError>,
) -> Response {
    let outcome = async {
        let Query(request) = query?;
        let signed_in = visit.signed_in(&state).await?;
        let browser = visit.browser();
        let cx = visit.context(&state);
        let step = signin::authorize(&cx, &request, &browser, signed_in).await?;
        Ok(pages::render(&visit, At::Top, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
