//! The HTTP layer's one error type, answered as an OAuth error response
//! (RFC 6749 §5.2): `{"error", "error_description"}`.

use std::borrow::Cow;
use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::auth::AuthError;
use crate::grant::GrantError;
use crate::limits::retry_after_seconds;
use crate::params::ParamError;
use crate::store::StoreError;
use crate::token::mint::MintError;
pub use crate::vocabulary::ErrorCode;

/// `WWW-Authenticate` challenge of 401 answers (RFC 6749 §5.2, RFC 7617).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"introspectd\"";

/// `WWW-Authenticate` of a registration without its initial access token (RFC 6750 §3:
/// no error code when none was presented).
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"introspectd\"";

/// `WWW-Authenticate` of a registration with a wrong initial access token (RFC 6750 §3.1).
pub const BEARER_INVALID_TOKEN: &str = "Bearer realm=\"introspectd\", error=\"invalid_token\"";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400 `invalid_request` (RFC 6749 §5.2): missing or repeated parameter, two
    /// authentication methods, wrong content type, unreadable body.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// 401 `invalid_client` (RFC 6749 §5.2) with a Basic challenge.
    #[error("invalid_client: {0}")]
    InvalidClient(&'static str),
    /// 400 `invalid_grant` (RFC 6749 §5.2): the refresh token or authorization code is
    /// unknown, expired, revoked, already used or issued to another client, all answered
    /// alike; the fixed text says which of the two it was.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// 400 `invalid_scope` (RFC 6749 §5.2): malformed, or beyond what the client may hold.
    /// A fixed text: error bodies never echo input.
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    /// 400 `invalid_target` (RFC 8707 §2): a `resource` the client may not ask for.
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    /// 400 `unsupported_grant_type` (RFC 6749 §5.2).
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(&'static str),
    /// 400 `unauthorized_client` (RFC 6749 §5.2): the client is not registered for the
    /// grant type it asked for.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    /// 400 `invalid_redirect_uri` (RFC 7591 §3.2.2): a registered redirect URI breaks a
    /// rule; the text names the field, never its value.
    #[error("invalid_redirect_uri: {0}")]
    InvalidRedirectUri(String),
    /// 400 `invalid_client_metadata` (RFC 7591 §3.2.2): another metadata field breaks a
    /// rule; the text names the field, never its value.
    #[error("invalid_client_metadata: {0}")]
    InvalidClientMetadata(String),
    /// 401 `invalid_token` (RFC 6750 §3.1) with a Bearer challenge: registration needs
    /// the initial access token (RFC 7591 §3), which was missing or wrong.
    #[error("invalid_token")]
    InvalidToken { presented: bool },
    /// 404 for paths this server does not serve.
    #[error("not found")]
    NotFound,
    /// 405 with `Allow`.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// 413: the body is larger than `http.max_body_bytes`.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 431: request line and headers larger than `http.max_header_bytes`.
    #[error("request headers too large")]
    HeadersTooLarge,
    /// 429 with `Retry-After` in seconds.
    #[error("rate limited")]
    RateLimited { retry_after: u64 },
    /// 503 `temporarily_unavailable` (RFC 6749 §4.1.2.1): the store cannot answer now,
    /// and answering without it would be unsafe.
    #[error("temporarily unavailable: {0}")]
    Unavailable(#[source] StoreError),
    /// 503 when a request ran past `http.request_timeout_ms`.
    #[error("request timed out")]
    Timeout,
    /// 500: logged with its cause, answered with a generic body.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::Unavailable(err)
    }
}

impl From<ParamError> for ApiError {
    fn from(err: ParamError) -> Self {
        match err {
            ParamError::UnsupportedGrantType(why) => ApiError::UnsupportedGrantType(why),
            other => ApiError::invalid_request(other.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Malformed(why) => ApiError::invalid_request(why),
            AuthError::Failed(_, why) => ApiError::InvalidClient(why),
            AuthError::Throttled(wait) => ApiError::throttled(wait),
            AuthError::Store(err) => ApiError::Unavailable(err),
        }
    }
}

impl From<crate::registration::RegistrationError> for ApiError {
    fn from(err: crate::registration::RegistrationError) -> Self {
        use crate::registration::RegistrationError;
        match err {
            RegistrationError::InvalidRedirectUri(why) => ApiError::InvalidRedirectUri(why),
            RegistrationError::InvalidClientMetadata(why) => ApiError::InvalidClientMetadata(why),
            RegistrationError::Store(err) => ApiError::Unavailable(err),
            RegistrationError::Internal(why) => ApiError::Internal(why),
        }
    }
}

impl From<GrantError> for ApiError {
    fn from(err: GrantError) -> Self {
        use crate::grant::Reused;
        match err {
            GrantError::InvalidGrant => ApiError::InvalidGrant("the refresh token is invalid"),
            GrantError::InvalidCode => ApiError::InvalidGrant("the authorization code is invalid"),
            GrantError::InvalidSubject => ApiError::InvalidGrant("the subject token is invalid"),
            GrantError::InvalidAssertion => ApiError::InvalidGrant("the assertion is invalid"),
            GrantError::Reused(reuse) => match reuse.what {
                Reused::AuthorizationCode => {
                    ApiError::InvalidGrant("the authorization code is invalid")
                }
                Reused::RefreshToken => ApiError::InvalidGrant("the refresh token is invalid"),
            },
            GrantError::InvalidRequest(why) => ApiError::invalid_request(why),
            GrantError::UnauthorizedClient(why) => ApiError::UnauthorizedClient(why),
            GrantError::InvalidScope(why) => ApiError::InvalidScope(why),
            GrantError::InvalidTarget(why) => ApiError::InvalidTarget(why),
            GrantError::Store(err) | GrantError::Mint(MintError::Store(err)) => {
                ApiError::Unavailable(err)
            }
            GrantError::Mint(err) => ApiError::Internal(err.to_string()),
        }
    }
}

/// An OAuth error response's body (RFC 6749 §5.2): the code and a fixed text that never
/// echoes the request.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
#[serde(deny_unknown_fields)]
pub struct ErrorBody<'a> {
    error: ErrorCode,
    error_description: &'a str,
}

impl ApiError {
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        ApiError::InvalidRequest(description.into())
    }

    /// A spent budget: answered like the rate limiter's refusals, and counted with them.
    pub fn throttled(wait: Duration) -> Self {
        crate::metrics::rate_limited();
        ApiError::RateLimited {
            retry_after: retry_after_seconds(wait),
        }
    }

    fn parts(&self) -> (StatusCode, ErrorCode, Cow<'_, str>) {
        match self {
            ApiError::InvalidRequest(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                Cow::Borrowed(d.as_ref()),
            ),
            ApiError::InvalidClient(d) => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidClient,
                Cow::Borrowed(*d),
            ),
            ApiError::InvalidGrant(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                Cow::Borrowed(*d),
            ),
            ApiError::InvalidScope(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidScope,
                Cow::Borrowed(*d),
            ),
            ApiError::InvalidTarget(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidTarget,
                Cow::Borrowed(*d),
            ),
            ApiError::UnsupportedGrantType(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                Cow::Borrowed(*d),
            ),
            ApiError::UnauthorizedClient(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::UnauthorizedClient,
                Cow::Borrowed(*d),
            ),
            ApiError::InvalidRedirectUri(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRedirectUri,
                Cow::Borrowed(d.as_str()),
            ),
            ApiError::InvalidClientMetadata(d) => (
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidClientMetadata,
                Cow::Borrowed(d.as_str()),
            ),
            ApiError::InvalidToken { presented } => (
                StatusCode::UNAUTHORIZED,
                ErrorCode::InvalidToken,
                match presented {
                    true => "the initial access token is not valid".into(),
                    false => "registration requires an initial access token".into(),
                },
            ),
            ApiError::NotFound => (
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                "no such endpoint".into(),
            ),
            ApiError::MethodNotAllowed { allow } => (
                StatusCode::METHOD_NOT_ALLOWED,
                ErrorCode::InvalidRequest,
                format!("method not allowed; use {allow}").into(),
            ),
            ApiError::PayloadTooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::InvalidRequest,
                "request body too large".into(),
            ),
            ApiError::HeadersTooLarge => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                ErrorCode::InvalidRequest,
                "request headers too large".into(),
            ),
            ApiError::RateLimited { .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                ErrorCode::SlowDown,
                "too many requests; retry later".into(),
            ),
            ApiError::Unavailable(_) | ApiError::Timeout => (
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TemporarilyUnavailable,
                "the service cannot answer now; retry later".into(),
            ),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::ServerError,
                "internal error".into(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(err) => {
                crate::metrics::store_error(err);
                tracing::warn!(error = %err, "store unavailable");
            }
            ApiError::Internal(err) => tracing::error!(error = %err, "internal error"),
            _ => {}
        }
        let (status, error, description) = self.parts();
        let mut response = (
            status,
            Json(ErrorBody {
                error,
                error_description: &description,
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::InvalidClient(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(BASIC_CHALLENGE),
                );
            }
            ApiError::InvalidToken { presented } => {
                let challenge = match presented {
                    true => BEARER_INVALID_TOKEN,
                    false => BEARER_CHALLENGE,
                };
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            ApiError::MethodNotAllowed { allow } => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::RateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::Unavailable(_) | ApiError::Timeout => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_carries_basic_challenge() {
        let response = ApiError::InvalidClient("client authentication failed").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            response.headers()[header::WWW_AUTHENTICATE],
            BASIC_CHALLENGE
        );
    }

    #[test]
    fn internal_error_hides_its_cause() {
        let err = ApiError::Internal("db password is hunter2".to_owned());
        let (_, _, description) = err.parts();
        assert!(!description.contains("hunter2"));
    }

    #[test]
    fn rate_limited_says_when_to_retry() {
        let response = ApiError::RateLimited { retry_after: 3 }.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }
}
