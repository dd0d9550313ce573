//! `POST /login/provider/{id}`: the login page's button for a provider. The form is
//! checked as the password form is; the browser then goes to the provider to sign in.

use axum::extract::{Path, State};
use axum::response::Response;

use super::AppState;
use super::docs::{
    ErrorPage, ForgedForm, MethodNotAllowed, ProviderId, RateLimited, UnavailablePage,
};
use super::pages::{self, At, PageError, PendingFields};
use super::params::Form;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin::federated;

pub const PATH: &str = "/login/provider/{id}";

#[utoipa::path(
    post,
    path = PATH,
    summary = "Sign in through a provider: the login page's button for it",
    description = "Checks the form as `POST /login` does, stores the sign-in (for 10 minutes, \
        bound to this browser) and sends the browser to the provider's authorization endpoint: \
        authorization code with PKCE (S256), a fresh `state` and `nonce`, the configured \
        `scopes`, and `redirect_uri` `ISSUER/login/callback/{id}`. A provider not discovered \
        yet sends the browser back to `/authorize`, whose login page shows it unavailable. \
        Rate limited per client address.",
    params(ProviderId),
    request_body(content = PendingFields, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "A redirect (`303 See Other`) to the provider, back to \
            `/authorize`, or to the client with an error."),
        (status = 400, response = ErrorPage),
        (status = 403, response = ForgedForm),
        (status = 405, response = MethodNotAllowed),
        (status = 413, response = ErrorPage),
        (status = 429, response = RateLimited),
        (status = 503, response = UnavailablePage),
    )
)]
pub async fn start(
    State(state): State<AppState>,
    visit: Visit,
    Path(id): Path<String>,
    form: Result<Form<PendingFields>, ApiError>,
) -> Response {
    let outcome = async {
        let Form(form) = form?;
        let pending = pages::pending(&form)?;
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = federated::start_from_form(&cx, &pending, browser, &id).await?;
        Ok::<_, PageError>(pages::render(&visit, At::ProviderPage, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
