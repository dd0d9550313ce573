//! Who is calling an authenticated endpoint: a client by its secret or by a signed
//! assertion (RFC 7523 §2.2), within the failure budgets of its address.

use std::net::IpAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};

use super::form::OAuthForm;
use super::metadata::endpoint_url;
use super::{AppState, observe};
use crate::auth::{self, AuthError, Credentials};
use crate::cache::View;
use crate::error::ApiError;
use crate::metrics;
use crate::store::ClientRecord;

/// The authenticated, enabled client behind a request from `ip` to the endpoint `path`
/// (an assertion may name the endpoint's URL as its audience). Exactly one method may be
/// used; failures are counted against the address and the client id, and spent budgets
/// refuse every request whose credentials no earlier verification vouches for.
pub async fn authenticate(
    state: &AppState,
    view: &View,
    headers: &HeaderMap,
    form: &OAuthForm,
    path: &str,
    ip: IpAddr,
) -> Result<Arc<ClientRecord>, ApiError> {
    let guard = &state.auth;
    let verified = async {
        let credentials = match auth::credentials(authorization(headers)?, |name| form.get(name)) {
            Ok(credentials) => credentials,
            Err(err @ AuthError::Failed(..)) => {
                guard.admit(ip, None)?;
                return Err(guard.failed(ip, None, err));
            }
            Err(err) => return Err(err),
        };
        let client_id = credentials.client_id();
        // Secrets are checked against the budgets only when no verification vouches
        // for them: a guesser's failures never lock the real client out.
        let verified = match &credentials {
            Credentials::Secret(presented) => guard.authenticate(view, presented, ip).await,
            Credentials::Assertion(assertion) => match guard.admit(ip, client_id) {
                Ok(()) => state
                    .assertions
                    .verify(assertion, &endpoint_url(&state.config.issuer, path))
                    .await
                    .map(Arc::new),
                Err(err) => Err(err),
            },
        };
        match verified {
            Err(err @ AuthError::Failed(..)) => Err(guard.failed(ip, client_id, err)),
            other => other,
        }
    }
    .await;
    if let Ok(client) = &verified {
        observe::record_client(&client.client_id);
    }
    verified
        .inspect_err(metrics::auth_failure)
        .map_err(ApiError::from)
}

/// The one `Authorization` header of a request, if any: with several, which one counts
/// would be a guess (and proxies disagree on it), so the request is malformed.
fn authorization(headers: &HeaderMap) -> Result<Option<&HeaderValue>, AuthError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    match values.next() {
        None => Ok(first),
        Some(_) => Err(AuthError::Malformed("repeated Authorization header")),
    }
}
