//! Who is calling an authenticated endpoint: a client by its secret or by a signed
//! assertion (RFC 7523 §2.2).

use axum::http::{HeaderMap, header};

use super::AppState;
use super::form::OAuthForm;
use super::metadata::endpoint_url;
use crate::auth::{self, Credentials};
use crate::error::ApiError;
use crate::store::ClientRecord;

/// Reads the credentials of a request; exactly one method may be used.
pub fn credentials(headers: &HeaderMap, form: &OAuthForm) -> Result<Credentials, ApiError> {
    Ok(auth::credentials(
        headers.get(header::AUTHORIZATION),
        |name| form.get(name),
    )?)
}

/// The authenticated, enabled client behind `credentials`, presented at the endpoint
/// `path` (an assertion may name the endpoint's URL as its audience).
pub async fn authenticate(
    state: &AppState,
    credentials: &Credentials,
    path: &str,
) -> Result<ClientRecord, ApiError> {
    match credentials {
        Credentials::Secret(presented) => Ok(state.auth.authenticate(presented).await?),
        Credentials::Assertion(assertion) => Ok(state
            .assertions
            .verify(assertion, &endpoint_url(&state.config.issuer, path))
            .await?),
    }
}
