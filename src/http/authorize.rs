//! `GET /authorize` (OAuth 2.1 §4.1.1): the authorization endpoint. A signed-in user who
//! allowed the same request before goes straight back to the client with a code;
//! otherwise the consent page, or first the login page.

use axum::extract::{RawQuery, State};
use axum::response::Response;

use super::AppState;
use super::pages;
use super::visit::Visit;
use crate::signin;

pub const PATH: &str = "/authorize";

pub async fn authorize(
    State(state): State<AppState>,
    visit: Visit,
    RawQuery(query): RawQuery,
) -> Response {
    let outcome = async {
        let signed_in = visit.signed_in(&state).await?;
        let query = query.as_deref().unwrap_or("");
        let step = signin::authorize(&visit.context(&state), query, signed_in).await?;
        Ok(pages::step(&visit, step))
    }
    .await;
    pages::answer(&visit, outcome)
}
