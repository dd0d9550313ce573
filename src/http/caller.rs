//! Who is calling an authenticated endpoint: a client by its secret or by a signed
//! assertion (RFC 7523 §2.2), within the failure budgets of its address.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{HeaderMap, HeaderValue, header};

use super::client_ip::ClientIp;
use super::params::form_body;
use super::{AppState, endpoint_url, observe};
use crate::auth::{self, AuthError, ClientAuthentication, Credentials};
use crate::cache::View;
use crate::error::ApiError;
use crate::metrics;
use crate::params::{Parameters, decode};
use crate::store::ClientRecord;

/// The authenticated client of a request to an endpoint that takes credentials, with
/// what the request carried: a handler that declares it does only its own work. The
/// form is decoded once: its client authentication parameters are checked first, then
/// the rest is read into the endpoint's request type `T`. The view was taken when the
/// request began, so the whole request sees the caches in one state, and `now` is the
/// one time the whole request is judged at.
pub struct Caller<T> {
    pub client: Arc<ClientRecord>,
    pub request: T,
    pub headers: HeaderMap,
    pub view: View,
    pub now: i64,
    /// The address the request came from ([`ClientIp`]).
    pub ip: IpAddr,
}

/// What an endpoint that takes client credentials reads besides them.
pub trait CallerRequest: Parameters {
    /// Whether a public client (`none`) may name itself with `client_id` alone here: at
    /// the token endpoint and revocation, which browser-based and native clients call
    /// themselves, but not at introspection, which is for resource servers, which always
    /// authenticate. Each endpoint says so; there is no default.
    const PUBLIC_CLIENTS: bool;
}

impl<T: CallerRequest> FromRequest<AppState> for Caller<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let ClientIp(ip) = ClientIp::of(&req)?;
        // The endpoint's own path: an assertion names the endpoint's URL as audience.
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .cloned()
            .ok_or_else(|| ApiError::Internal("no matched path".to_owned()))?;
        let headers = req.headers().clone();
        let body = form_body(req, state).await?;
        let params = decode(&body, T::REPEATABLE)?;
        let presented: ClientAuthentication = params.read()?;
        let view = state.directory.view().await;
        let now = crate::token::now();
        let client = authenticate(
            state,
            &view,
            &headers,
            &presented,
            Endpoint {
                path: path.as_str(),
                public: T::PUBLIC_CLIENTS,
            },
            ip,
            now,
        )
        .await?;
        // Read only once the caller is known: a stranger learns nothing of the request.
        let request = params.read()?;
        Ok(Caller {
            client,
            request,
            headers,
            view,
            now,
            ip,
        })
    }
}

/// The endpoint a request is to: its path, and whether public clients may call it.
struct Endpoint<'a> {
    path: &'a str,
    public: bool,
}

/// The authenticated, enabled client behind a request from `ip` to the endpoint
/// (an assertion may name the endpoint's URL as its audience). Exactly one method may be
/// used; failures are counted against the address and the client id, and spent budgets
/// refuse every request whose credentials no earlier verification vouches for.
async fn authenticate(
    state: &AppState,
    view: &View,
    headers: &HeaderMap,
    presented: &ClientAuthentication,
    endpoint: Endpoint<'_>,
    ip: IpAddr,
    now: i64,
) -> Result<Arc<ClientRecord>, ApiError> {
    let guard = &state.auth;
    let verified = async {
        let credentials = match auth::credentials(authorization(headers)?, presented) {
            Ok(credentials) => credentials,
            Err(err @ AuthError::Failed(..)) => {
                guard.admit(ip, None)?;
                return Err(guard.failed(ip, None, err));
            }
            Err(err) => return Err(err),
        };
        let client_id = credentials.client_id();
        // A metadata document's client is usable only while its document is.
        if !document_usable(state, &credentials, ip, now).await? {
            let err = AuthError::failed("client authentication failed");
            guard.admit(ip, client_id)?;
            return Err(guard.failed(ip, client_id, err));
        }
        // Secrets are checked against the budgets only when no verification vouches
        // for them: a guesser's failures never lock the real client out.
        let verified = match &credentials {
            Credentials::Secret(presented) => guard.authenticate(view, presented, ip, now).await,
            Credentials::Public(client_id) if endpoint.public => {
                match guard.admit(ip, Some(client_id)) {
                    Ok(()) => guard.public(view, client_id).await,
                    Err(err) => Err(err),
                }
            }
            Credentials::Public(_) => Err(auth::NOT_PUBLIC),
            Credentials::Assertion(assertion) => match guard.admit(ip, client_id) {
                Ok(()) => {
                    state
                        .assertions
                        .verify(
                            view,
                            assertion,
                            &endpoint_url(&state.config.issuer, endpoint.path),
                            now,
                        )
                        .await
                }
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

/// False when the credentials name a client ID metadata document's client (an https
/// URL) whose document is not usable now, or when documents are not accepted.
async fn document_usable(
    state: &AppState,
    credentials: &Credentials,
    ip: IpAddr,
    now: i64,
) -> Result<bool, AuthError> {
    // Borrowed for the common case: most requests name an operator's client.
    let named = match credentials {
        Credentials::Assertion(assertion) => assertion.named_client().map(Cow::Owned),
        other => other.client_id().map(Cow::Borrowed),
    };
    let Some(client_id) = named.filter(|id| crate::documents::is_document_id(id)) else {
        return Ok(true);
    };
    match &state.documents {
        Some(documents) => Ok(documents
            .resolve(state.store(), &client_id, ip, now)
            .await?),
        None => Ok(false),
    }
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
