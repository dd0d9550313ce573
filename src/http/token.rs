//! `POST /token` (RFC 6749 §3.2): the authorization code, client credentials and
//! refresh token grants.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::caller::Caller;
use super::form::OAuthForm;
use super::{AppState, oracle};
use crate::error::ApiError;
use crate::grant::{self, CodeExchange, GrantError, Issued};
use crate::store::ClientRecord;
use crate::token::jwt::KeySet;

pub const PATH: &str = "/token";

/// RFC 6749 §5.1: the successful answer.
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<&'a str>,
}

pub async fn token(
    State(state): State<AppState>,
    Caller {
        client,
        form,
        view,
        now,
        ..
    }: Caller,
) -> Result<Response, ApiError> {
    let grant_type = form.required("grant_type")?;
    let scope = form.get("scope");
    let resources: Vec<&str> = form.get_all("resource").collect();
    let keys = state.keys.current(view.keys_generation()).await;
    let (store, keys, config) = (state.store(), &*keys, &*state.config);
    let issued = match grant_type {
        "client_credentials" => {
            grant::client_credentials(store, keys, config, &client, scope, &resources, now).await?
        }
        "refresh_token" => refresh(&state, keys, &client, &form, scope, &resources, now).await?,
        "authorization_code" => code(&state, keys, &client, &form, &resources, now).await?,
        _ => {
            return Err(ApiError::UnsupportedGrantType(
                "grant_type must be authorization_code, client_credentials or refresh_token",
            ));
        }
    };
    Ok(answer(&issued))
}

/// The refresh token grant. A refused refresh token is as telling as an inactive
/// introspection answer: budgeted alike.
async fn refresh(
    state: &AppState,
    keys: &KeySet,
    client: &ClientRecord,
    form: &OAuthForm,
    scope: Option<&str>,
    resources: &[&str],
    now: i64,
) -> Result<Issued, ApiError> {
    let refresh_token = form.required("refresh_token")?;
    oracle::admit(state, client)?;
    let (store, config) = (state.store(), &*state.config);
    let refreshed = grant::refresh(
        store,
        keys,
        config,
        client,
        refresh_token,
        scope,
        resources,
        now,
    )
    .await;
    if let Err(GrantError::InvalidGrant) = refreshed {
        oracle::spend(state, client)?;
    }
    Ok(refreshed?)
}

/// The authorization code grant (OAuth 2.1 §4.1.3). A refused code is as telling as a
/// refused refresh token: budgeted alike.
async fn code(
    state: &AppState,
    keys: &KeySet,
    client: &ClientRecord,
    form: &OAuthForm,
    resources: &[&str],
    now: i64,
) -> Result<Issued, ApiError> {
    let exchange = CodeExchange {
        code: form.required("code")?,
        redirect_uri: form.required("redirect_uri")?,
        code_verifier: form.required("code_verifier")?,
        resources,
    };
    oracle::admit(state, client)?;
    let (store, config) = (state.store(), &*state.config);
    let exchanged = grant::authorization_code(store, keys, config, client, exchange, now).await;
    if let Err(GrantError::InvalidCode) = exchanged {
        oracle::spend(state, client)?;
    }
    Ok(exchanged?)
}

/// RFC 6749 §5.1: JSON that no cache may keep.
fn answer(issued: &Issued) -> Response {
    let mut response = Json(TokenResponse {
        access_token: issued.access.token.expose(),
        token_type: "Bearer",
        expires_in: issued.expires_in,
        refresh_token: issued.refresh.as_ref().map(|t| t.expose()),
        scope: issued.scope.as_deref(),
    })
    .into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}
