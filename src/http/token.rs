//! `POST /token` (RFC 6749 §3.2): the authorization code, client credentials, refresh
//! token, token exchange and identity assertion (JWT bearer) grants.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::caller::{Caller, CallerRequest};
use super::docs::{CallerErrors, NoCache};
use super::{AppState, oracle};
use crate::audit::{Event, EventType};
use crate::auth::ClientAuthentication;
use crate::error::ApiError;
use crate::grant::{self, CodeExchange, Exchange, GrantError, IdentityAssertion, Issued};
use crate::params::{ParamError, Parameters};
use crate::secret::RawToken;
use crate::token::claims::TokenType;
use crate::token::jwt::KeySet;
use crate::vocabulary::ACCESS_TOKEN_TYPE;

pub const PATH: &str = "/token";

/// `POST /token`'s form body: one variant per grant type (RFC 6749 sections 4.1.3, 4.4.2
/// and 6, RFC 8707), chosen by `grant_type`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "grant_type", rename_all = "snake_case")]
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    ClientCredentials(ClientCredentialsRequest),
    RefreshToken(RefreshRequest),
    #[serde(rename = "urn:ietf:params:oauth:grant-type:token-exchange")]
    TokenExchange(ExchangeRequest),
    #[serde(rename = "urn:ietf:params:oauth:grant-type:jwt-bearer")]
    JwtBearer(AssertionRequest),
}

impl CallerRequest for TokenRequest {
    const PUBLIC_CLIENTS: bool = true;
}

impl Parameters for TokenRequest {
    const REPEATABLE: &'static [&'static str] = &["resource", "audience"];
    const UNKNOWN_VARIANT: ParamError = ParamError::UnsupportedGrantType(
        "grant_type must be authorization_code, client_credentials, refresh_token, \
         urn:ietf:params:oauth:grant-type:token-exchange or \
         urn:ietf:params:oauth:grant-type:jwt-bearer",
    );
}

/// `grant_type=authorization_code` (OAuth 2.1 section 4.1.3).
#[derive(Debug, Deserialize, ToSchema)]
pub struct CodeRequest {
    /// The code from the redirect back.
    #[schema(value_type = String)]
    code: RawToken,
    /// The redirect URI of the authorization request.
    redirect_uri: String,
    /// The PKCE verifier whose S256 challenge the authorization request carried.
    #[schema(value_type = String)]
    code_verifier: RawToken,
    /// RFC 8707 resource indicator; repeatable; within the resources of the
    /// authorization request (default: all of them).
    #[serde(default)]
    #[schema(nullable = false)]
    resource: Vec<String>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

/// `grant_type=client_credentials` (RFC 6749 section 4.4.2).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ClientCredentialsRequest {
    /// Space-separated; within the client's registered scope (default: all of it).
    #[schema(nullable = false)]
    scope: Option<String>,
    /// RFC 8707 resource indicator; repeatable; each one of the client's registered
    /// audiences (default: all of them).
    #[serde(default)]
    #[schema(nullable = false)]
    resource: Vec<String>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

/// `grant_type=refresh_token` (RFC 6749 section 6).
#[derive(Debug, Deserialize, ToSchema)]
pub struct RefreshRequest {
    /// The refresh token to exchange. It is retired by the exchange; presenting it again
    /// revokes the whole grant (RFC 9700 section 4.14.2).
    #[schema(value_type = String)]
    refresh_token: RawToken,
    /// Space-separated; within the grant's scope.
    #[schema(nullable = false)]
    scope: Option<String>,
    /// RFC 8707 resource indicator; repeatable; within the grant's resources.
    #[serde(default)]
    #[schema(nullable = false)]
    resource: Vec<String>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:token-exchange` (RFC 8693 section 2.1):
/// a resource server trades a user's access token it received for one meant for another
/// service, for the same user.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExchangeRequest {
    /// The access token to exchange: issued here, active, and meant for one of the
    /// caller's audiences (`client create --audience`).
    #[schema(value_type = String)]
    subject_token: RawToken,
    /// `urn:ietf:params:oauth:token-type:access_token`, the only type exchanged.
    #[schema(value_type = AccessTokenType, inline)]
    subject_token_type: String,
    /// `urn:ietf:params:oauth:token-type:access_token` (the default), the only type issued.
    #[schema(value_type = Option<AccessTokenType>, inline, nullable = false)]
    requested_token_type: Option<String>,
    /// A target of the new token; repeatable; each one of the caller's exchange targets
    /// (`client create --exchange-target`). At least one `resource` or `audience`.
    #[serde(default)]
    #[schema(nullable = false)]
    resource: Vec<String>,
    /// A target of the new token, as `resource`; repeatable.
    #[serde(default)]
    #[schema(nullable = false)]
    audience: Vec<String>,
    /// Space-separated; within the subject token's scope (default: all of it).
    #[schema(nullable = false)]
    scope: Option<String>,
    /// Not accepted: the caller is the actor (`invalid_request`).
    #[schema(value_type = Option<String>, nullable = false)]
    actor_token: Option<RawToken>,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

/// `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer` (RFC 7523 section 2.1) with
/// an Identity Assertion JWT Authorization Grant (ID-JAG): the MCP enterprise-managed
/// authorization extension.
#[derive(Debug, Deserialize, ToSchema)]
pub struct AssertionRequest {
    /// The ID-JAG the organisation's provider issued for this client and one of its
    /// people: `typ` `oauth-id-jag+jwt`, signed by a provider with `id_jag = true`, `aud`
    /// this server's issuer, `client_id` the authenticated client's. Used once.
    #[schema(value_type = String)]
    assertion: RawToken,
    // Read by the `Caller` before the rest of the form; here for the description.
    #[serde(flatten)]
    #[allow(dead_code)]
    credentials: ClientAuthentication,
}

/// The token type of RFC 8693 section 3 that is exchanged and issued here.
#[derive(ToSchema)]
#[allow(dead_code)]
enum AccessTokenType {
    #[serde(rename = "urn:ietf:params:oauth:token-type:access_token")]
    AccessToken,
}

impl ExchangeRequest {
    /// RFC 8693 §2.1: only access tokens are exchanged for access tokens, and the
    /// caller acts for itself.
    fn check(&self) -> Result<(), ApiError> {
        if self.subject_token_type != ACCESS_TOKEN_TYPE {
            return Err(ApiError::invalid_request(
                "subject_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if self
            .requested_token_type
            .as_deref()
            .is_some_and(|t| t != ACCESS_TOKEN_TYPE)
        {
            return Err(ApiError::invalid_request(
                "requested_token_type must be urn:ietf:params:oauth:token-type:access_token",
            ));
        }
        if self.actor_token.is_some() {
            return Err(ApiError::invalid_request(
                "actor_token is not accepted: the authenticated client is the actor",
            ));
        }
        Ok(())
    }
}

/// RFC 6749 §5.1: the successful answer.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenResponse<'a> {
    /// A JWT access token (RFC 9068).
    access_token: &'a str,
    /// For token exchange: `urn:ietf:params:oauth:token-type:access_token` (RFC 8693
    /// section 2.2.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    issued_token_type: Option<&'a str>,
    #[schema(inline)]
    token_type: TokenType,
    /// Seconds until the access token expires.
    expires_in: i64,
    /// The new refresh token, for the `refresh_token` grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<&'a str>,
    /// The granted scope, space-separated.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    scope: Option<&'a str>,
}

#[utoipa::path(
    post,
    path = PATH,
    summary = "Token endpoint (RFC 6749 section 3.2): authorization_code, client_credentials, \
        refresh_token, token exchange and identity assertions (ID-JAG)",
    description = "The caller authenticates as for `/introspect`, or, as a public client \
        (`--auth-method none`), names itself with `client_id` alone. A client named by a \
        Client ID Metadata Document URL authenticates only while its document can be \
        fetched and is valid (else `invalid_client`). `authorization_code` \
        (OAuth 2.1 section 4.1.3) exchanges a code from `/authorize` with the same \
        `redirect_uri` and the PKCE `code_verifier` (RFC 7636) for a JWT access token whose \
        `sub` and `username` are the user's and whose `aud` is the resources of the request, \
        and, for a client registered for `refresh_token`, a refresh token; a code is used \
        once, and presenting it again revokes what it gave. Answers CORS requests from any \
        origin (no credentials). A client uses only the \
        grant types registered for it (`client create/update --grant-type`); any other is \
        refused with `unauthorized_client`. `client_credentials` issues a JWT access token \
        with `sub` = client id, a scope within the client's registered scope (an empty \
        registered scope grants none) and, as `aud`, the requested `resource`s or else all \
        the client's registered resources; token exchange \
        (`urn:ietf:params:oauth:grant-type:token-exchange`, RFC 8693), for confidential clients \
        given it, trades an active access token meant for one of the caller's audiences for a \
        JWT for the same `sub` and `username`, whose `aud` is the named `resource`/`audience` \
        targets (each one of the caller's `--exchange-target`s), whose scope lies within the \
        subject token's, whose `exp` is never past the subject token's, and whose `act` names \
        the caller with earlier actors nested (RFC 8693 section 4.1); it dies with the subject \
        token's grant, and every unusable subject token gets one `invalid_grant` answer, \
        budgeted like a refused refresh token; the JWT bearer grant \
        (`urn:ietf:params:oauth:grant-type:jwt-bearer`, RFC 7523, for confidential clients given \
        it) takes an `assertion` that is an Identity Assertion JWT Authorization Grant (ID-JAG, \
        the MCP enterprise-managed authorization extension) from a `[[login.providers]]` entry \
        with `id_jag = true`: `typ` `oauth-id-jag+jwt`, signed by a key of the provider's JWKS, \
        `iss` the provider, `aud` this server's issuer alone, `client_id` the caller, a `jti` used \
        once across every instance, and `iat` to `exp` at most \
        `login.id_jag_max_lifetime_seconds`; it answers a JWT access token, with no refresh \
        token, for the user linked to the provider's `sub` (created on first use, as at a first \
        sign-in through the provider; never a disabled user), whose `aud` is the assertion's \
        `resource`s (each one of the caller's `--resource`s, else `invalid_target`; all of them \
        when it names none) and whose scope is the assertion's (within the caller's, else \
        `invalid_scope`; all of it when it names none); every unusable assertion gets one \
        `invalid_grant` answer, budgeted alike, its reason only in the log; `refresh_token` rotates the refresh token and \
        issues a new access token limited to what the client may hold now (its current \
        grant types, scope and resources). Every unusable refresh token (unknown, expired, \
        revoked, reused, another client's, not a refresh token) gets the same \
        `invalid_grant` answer, which spends the caller's inactive-answer budget (a public \
        client's per client address; 429 once spent). Error codes follow RFC 6749 section 5.2 (`invalid_grant`, `invalid_scope`, \
        `unauthorized_client`, `unsupported_grant_type`) and RFC 8707 (`invalid_target`); \
        descriptions never echo the request. Rate limited per client address.",
    security(("client_secret_basic" = []), ("private_key_jwt" = []), ()),
    request_body(content = TokenRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Tokens issued (RFC 6749 section 5.1).",
            body = TokenResponse, headers(("Pragma" = inline(NoCache)))),
        CallerErrors,
    )
)]
pub async fn token(
    State(state): State<AppState>,
    caller: Caller<TokenRequest>,
) -> Result<Response, ApiError> {
    let keys = state.keys.current(caller.view.keys_generation()).await;
    let issued = match &caller.request {
        TokenRequest::ClientCredentials(request) => {
            let (store, config) = (state.store(), &*state.config);
            let (scope, resources) = (request.scope.as_deref(), strs(&request.resource));
            let client = &caller.client;
            grant::client_credentials(store, &keys, config, client, scope, &resources, caller.now)
                .await?
        }
        TokenRequest::RefreshToken(request) => refresh(&state, &keys, &caller, request).await?,
        TokenRequest::AuthorizationCode(request) => code(&state, &keys, &caller, request).await?,
        TokenRequest::TokenExchange(request) => exchange(&state, &keys, &caller, request).await?,
        TokenRequest::JwtBearer(request) => assertion(&state, &keys, &caller, request).await?,
    };
    note_issued(&state, &caller, &issued);
    Ok(answer(&issued))
}

/// Counts the token by grant type and records `token.issued` (or `token.exchanged`):
/// the grant type, the access token's `jti` and audiences, and the user it is for.
fn note_issued(state: &AppState, caller: &Caller<TokenRequest>, issued: &Issued) {
    let (kind, grant_type) = match &caller.request {
        TokenRequest::AuthorizationCode(_) => (EventType::TokenIssued, "authorization_code"),
        TokenRequest::ClientCredentials(_) => (EventType::TokenIssued, "client_credentials"),
        TokenRequest::RefreshToken(_) => (EventType::TokenIssued, "refresh_token"),
        TokenRequest::TokenExchange(_) => (EventType::TokenExchanged, "token-exchange"),
        TokenRequest::JwtBearer(_) => (EventType::TokenIssued, "jwt-bearer"),
    };
    crate::metrics::token_issued(grant_type);
    let event = Event::new(kind)
        .client(&caller.client.client_id)
        .address(caller.ip)
        .detail("grant_type", grant_type)
        .detail("jti", issued.access.jti.as_str())
        .detail("aud", issued.access.audiences.clone());
    state.audit.record(match grant_type {
        // The client itself, not a user.
        "client_credentials" => event,
        _ => event.user(&issued.access.subject),
    });
}

/// Runs a grant within the caller's inactive-answer budget: a refused refresh token,
/// code or subject token is as telling as an inactive introspection answer, so it is
/// budgeted alike.
async fn budgeted(
    state: &AppState,
    caller: &Caller<TokenRequest>,
    grant: impl Future<Output = Result<Issued, GrantError>>,
) -> Result<Issued, ApiError> {
    oracle::admit(state, &caller.client, caller.ip)?;
    let issued = grant.await;
    if let Err(GrantError::Reused(reuse)) = &issued {
        let mut event = Event::new(EventType::TokenReuseDetected)
            .client(&caller.client.client_id)
            .address(caller.ip)
            .detail("presented", reuse.what.as_str())
            .detail("family_id", reuse.family_id.as_str());
        if let Some(user_id) = &reuse.user_id {
            event = event.user(user_id);
        }
        state.audit.record(event);
    }
    if issued.as_ref().is_err_and(GrantError::tells_existence) {
        oracle::spend(state, &caller.client, caller.ip)?;
    }
    Ok(issued?)
}

/// The refresh token grant.
async fn refresh(
    state: &AppState,
    keys: &KeySet,
    caller: &Caller<TokenRequest>,
    request: &RefreshRequest,
) -> Result<Issued, ApiError> {
    let (store, config) = (state.store(), &*state.config);
    let resources = strs(&request.resource);
    let refreshed = grant::refresh(
        store,
        keys,
        config,
        &caller.client,
        request.refresh_token.expose(),
        request.scope.as_deref(),
        &resources,
        caller.now,
    );
    budgeted(state, caller, refreshed).await
}

/// The authorization code grant (OAuth 2.1 §4.1.3).
async fn code(
    state: &AppState,
    keys: &KeySet,
    caller: &Caller<TokenRequest>,
    request: &CodeRequest,
) -> Result<Issued, ApiError> {
    let resources = strs(&request.resource);
    let exchange = CodeExchange {
        code: request.code.expose(),
        redirect_uri: &request.redirect_uri,
        code_verifier: request.code_verifier.expose(),
        resources: &resources,
    };
    let (store, config) = (state.store(), &*state.config);
    let exchanged =
        grant::authorization_code(store, keys, config, &caller.client, exchange, caller.now);
    budgeted(state, caller, exchanged).await
}

/// Token exchange (RFC 8693).
async fn exchange(
    state: &AppState,
    keys: &KeySet,
    caller: &Caller<TokenRequest>,
    request: &ExchangeRequest,
) -> Result<Issued, ApiError> {
    request.check()?;
    let targets: Vec<&str> = request
        .resource
        .iter()
        .chain(&request.audience)
        .map(String::as_str)
        .collect();
    let exchange = Exchange {
        subject_token: request.subject_token.expose(),
        introspector: &state.introspector,
        ring: &state.keys,
        view: &caller.view,
        targets: &targets,
        scope: request.scope.as_deref(),
    };
    let (store, config) = (state.store(), &*state.config);
    let exchanged =
        grant::token_exchange(store, keys, config, &caller.client, exchange, caller.now);
    budgeted(state, caller, exchanged).await
}

/// An identity assertion (ID-JAG) from the organisation's provider.
async fn assertion(
    state: &AppState,
    keys: &KeySet,
    caller: &Caller<TokenRequest>,
    request: &AssertionRequest,
) -> Result<Issued, ApiError> {
    let presented = IdentityAssertion {
        assertion: request.assertion.expose(),
        providers: state.signin.as_deref().map(|signin| &signin.providers),
    };
    let (store, config) = (state.store(), &*state.config);
    let asserted =
        grant::identity_assertion(store, keys, config, &caller.client, presented, caller.now);
    budgeted(state, caller, asserted).await
}

fn strs(values: &[String]) -> Vec<&str> {
    values.iter().map(String::as_str).collect()
}

/// RFC 6749 §5.1: JSON that no cache may keep.
fn answer(issued: &Issued) -> Response {
    let mut response = Json(TokenResponse {
        access_token: issued.access.token.expose(),
        issued_token_type: issued.issued_token_type,
        token_type: TokenType::Bearer,
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
