//! `POST /logout`: ends the browser's session on every instance and shows the
//! signed-out page. The form's token is bound to the session it ends.

use axum::extract::State;
use axum::response::Response;

use super::AppState;
use super::form::OAuthForm;
use super::pages;
use super::visit::Visit;
use crate::error::ApiError;
use crate::signin;

pub const PATH: &str = "/logout";

pub async fn logout(
    State(state): State<AppState>,
    visit: Visit,
    form: Result<OAuthForm, ApiError>,
) -> Response {
    let outcome = async {
        let form = form?;
        let signed_in = visit.signed_in(&state).await?;
        let token = form.get("csrf_token").unwrap_or("");
        signin::sign_out(&visit.context(&state), signed_in.as_ref(), token).await?;
        Ok(pages::signed_out(&visit.signin))
    }
    .await;
    pages::answer(&visit, outcome)
}
