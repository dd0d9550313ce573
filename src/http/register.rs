//! `POST /register` (RFC 7591 §3): dynamic client registration, served when
//! `registration.dynamic` (and sign-in) is on.

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use headers::HeaderMapExt;
use headers::authorization::{Authorization, Bearer};

use super::AppState;
use super::client_ip::ClientIp;
use super::docs::{
    MethodNotAllowed, PayloadTooLarge, RateLimited, RegistrationRefused, RegistrationUnauthorized,
    Unavailable,
};
use super::params::content_type_is;
use crate::config::Config;
use crate::error::ApiError;
use crate::limits::{Budget, address_key};
use crate::registration::{self, RegisteredClient, RegistrationRequest};
use crate::secret::InitialAccessToken;

pub const PATH: &str = "/register";

/// What registration needs beside the store: its budget per address, the initial access
/// token it may require, and the most a client may register as its scope.
pub struct Registrar {
    /// Registrations per client address per hour (`rate_limit.registrations_per_hour`).
    pub budget: Budget<IpAddr>,
    pub initial_access_token: Option<InitialAccessToken>,
    pub max_scope: String,
}

impl Registrar {
    /// Served only when `registration.dynamic` and sign-in are on. A configured initial
    /// access token must be readable: `Err` names the key otherwise.
    pub fn new(config: &Config) -> Result<Option<Self>, String> {
        if !config.registration_enabled() {
            return Ok(None);
        }
        let limits = &config.rate_limit;
        Ok(Some(Registrar {
            budget: Budget::new(
                limits.budget(limits.registrations_per_hour),
                Duration::from_secs(3_600),
            ),
            initial_access_token: config.initial_access_token()?,
            max_scope: config.registration_max_scope(),
        }))
    }

    /// RFC 7591 §3 with RFC 6750 §2.1: the configured token as `Authorization: Bearer`.
    fn admit(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(expected) = &self.initial_access_token else {
            return Ok(());
        };
        let presented = headers.typed_get::<Authorization<Bearer>>();
        match presented.as_ref().map(|bearer| bearer.token().trim()) {
            None | Some("") => Err(ApiError::InvalidToken { presented: false }),
            Some(token) if InitialAccessToken::new(token) == *expected => Ok(()),
            Some(_) => Err(ApiError::InvalidToken { presented: true }),
        }
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/json")
}

#[utoipa::path(
    post,
    path = PATH,
    summary = "Dynamic client registration (RFC 7591)",
    description = "A client registers itself: a JSON object of client metadata (RFC 7591 \
        section 2) in, the registered client out. Only clients that sign users in are \
        registered: `redirect_uris` (required; https, loopback http on any port, or a \
        private-use scheme such as `com.example.app:/cb`, without a fragment; at most 10), \
        `grant_types` (`authorization_code`, the default, and optionally `refresh_token`; \
        never `client_credentials`), `response_types` (`code`), \
        `token_endpoint_auth_method` (`none` for a public client, or `client_secret_basic`, \
        the default, or `client_secret_post`, which get a `client_secret` shown this once), \
        `scope` (within `registration.max_scope`; all of it when omitted), `client_name` \
        (no control or format characters such as bidi controls), `application_type` \
        (`native`: loopback http or private-use scheme redirect URIs, https ones beside \
        them allowed; `web`: https only; inferred from the redirect URIs when omitted, and \
        always answered; redirect URIs that do not fit it are `invalid_redirect_uri`), \
        and `client_uri` and `logo_uri` (https only; stored, never shown in a page). Unknown \
        fields are ignored. A refused field is named in `error_description` \
        (`invalid_redirect_uri` or `invalid_client_metadata`, RFC 7591 section 3.2.2), its \
        value never repeated. With `registration.initial_access_token_env` set, the request \
        needs `Authorization: Bearer` with that token. Each address may register \
        `rate_limit.registrations_per_hour` times an hour (every request counts); a \
        self-registered client that obtains no token for `registration.unused_client_days` \
        is deleted. The consent page tells users such a client registered itself. Answers \
        CORS requests from any origin (no credentials). Not served (404) when \
        `registration.dynamic` or `login.enabled` is false.",
    request_body(content = RegistrationRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Registered (RFC 7591 section 3.2.1).",
            body = RegisteredClient),
        (status = 400, response = RegistrationRefused),
        (status = 401, response = RegistrationUnauthorized),
        (status = 405, response = MethodNotAllowed),
        (status = 413, response = PayloadTooLarge),
        (status = 429, response = RateLimited),
        (status = 503, response = Unavailable),
    )
)]
pub async fn register(State(state): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let registrar = state.registrar.as_ref().ok_or(ApiError::NotFound)?;
    let ClientIp(ip) = ClientIp::of(&req)?;
    registrar
        .budget
        .spend(address_key(ip))
        .map_err(ApiError::throttled)?;
    registrar.admit(req.headers())?;
    if !is_json(req.headers()) {
        return Err(ApiError::invalid_request(
            "content type must be application/json",
        ));
    }
    let body = Bytes::from_request(req, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid_request("request body could not be read")
            }
        })?;
    let metadata = registration::read_metadata(&body, &registrar.max_scope)?;
    let now = crate::token::now();
    let registered = registration::register(state.store(), metadata, now).await?;
    tracing::info!(
        client_id = %registered.client_id,
        auth_method = registered.token_endpoint_auth_method.as_str(),
        "client registered itself"
    );
    state.audit.record(
        crate::audit::Event::new(crate::audit::EventType::RegistrationCreated)
            .client(&registered.client_id)
            .address(ip)
            .detail(
                "auth_method",
                registered.token_endpoint_auth_method.as_str(),
            )
            .detail("redirect_uris", registered.redirect_uris.clone()),
    );
    Ok((StatusCode::CREATED, Json(registered)).into_response())
}
