//! `POST /login`: the login form. A right password starts a session and goes back to
//! `/authorize`; a wrong one shows the form again, within the failure budgets.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::form::OAuthForm;
use super::pages::{self, PageError};
use super::visit::Visit;
use crate::error::ApiError;
use crate::secret::Password;
use crate::signin;

pub const PATH: &str = "/login";

pub async fn login(
    State(state): State<AppState>,
    visit: Visit,
    form: Result<OAuthForm, ApiError>,
) -> Response {
    let outcome = async {
        let form = form?;
        let pending = pages::pending(&form)?;
        let username = form.get("username").unwrap_or("");
        let password = Password::new(form.get("password").unwrap_or(""));
        let cx = visit.context(&state);
        let browser = visit.browser.as_ref();
        let step = signin::login(&cx, &pending, browser, (username, &password), visit.ip);
        Ok::<_, PageError>(pages::login_step(&visit, step.await?))
    }
    .await;
    pages::answer(&visit, outcome)
}
