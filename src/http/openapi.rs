//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, generated from
//! the handlers' `#[utoipa::path]` annotations and the types they answer with. The file
//! `openapi.json` at the repository root is this document as committed, for reading and
//! diffing; `tests/openapi.rs` fails when the two differ, and
//! `cargo test --test openapi -- --ignored write_openapi_json` rewrites the file.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Header, OpenApi as Document, Ref, RefOr, Response, ServerBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::config::Config;
use crate::error::{BASIC_CHALLENGE, ErrorBody};
use crate::vocabulary::{AuthMethod, TokenUse};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The document as served: pretty-printed, ending in a newline, as committed.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let json = Api::openapi()
            .to_pretty_json()
            .expect("the OpenAPI document serializes");
        json + "\n"
    });
    &DOCUMENT
}

#[utoipa::path(
    get,
    path = PATH,
    summary = "This document",
    description = "Rate limited per client address.",
    responses(
        (status = 200, description = "The OpenAPI 3.1 description of this service.",
            body = inline(Description)),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

#[derive(OpenApi)]
#[openapi(
    info(description = "OAuth 2.0 Token Introspection (RFC 7662), Authorization Server \
        Metadata (RFC 8414), a token endpoint and revocation (RFC 7009). \
        Every response carries `Cache-Control: no-store` (unless documented otherwise) and \
        an `X-Request-Id` header: the caller's own when it sent an acceptable one (at most \
        128 characters of letters, digits and `-_.:/+=`), a generated one otherwise. Errors \
        are OAuth error responses (RFC 6749 section 5.2). Paths this server does not serve \
        answer `404 {\"error\": \"not_found\"}`. Any request running past \
        `http.request_timeout_ms` answers `503 temporarily_unavailable`. A request whose \
        request line and headers together exceed `http.max_header_bytes` (counted as \
        `name: value` plus CRLF per field), or that carries more than `http.max_headers` \
        fields, answers `431`."),
    paths(
        super::introspect::introspect,
        super::token::token,
        super::revoke::revoke,
        super::jwks::jwks,
        super::metadata::metadata,
        super::health::healthz,
        super::health::readyz,
        super::prometheus::metrics,
        openapi,
        super::authorize::authorize,
        super::login::login,
        super::login_provider::start,
        super::login_callback::callback,
        super::consent::consent,
        super::logout::logout,
        super::assets::stylesheet,
        super::register::register,
    ),
    components(schemas(ErrorBody), responses(
        InvalidRequest,
        InvalidClient,
        MethodNotAllowed,
        PayloadTooLarge,
        RateLimited,
        Unavailable,
        ErrorPage,
        ForgedForm,
        UnavailablePage,
        RegistrationRefused,
        RegistrationUnauthorized,
    )),
    modifiers(&Layers),
)]
struct Api;

/// What the router adds to every answer, and what no handler annotation can say: the
/// headers of the layers, the security schemes, and the metrics listener's own address.
struct Layers;

impl Modify for Layers {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        for response in components.responses.values_mut() {
            if let RefOr::T(response) = response {
                page_headers(response);
                layer_headers(response);
            }
        }
        for (name, scheme, description) in SECURITY_SCHEMES {
            let scheme = HttpBuilder::new()
                .scheme(scheme)
                .description(Some(description));
            components.add_security_scheme(name, SecurityScheme::Http(scheme.build()));
        }
        for (path, item) in doc.paths.paths.iter_mut() {
            if path == super::prometheus::PATH {
                let listen = Config::default().metrics.listen;
                let server = ServerBuilder::new()
                    .url(format!("http://{listen}"))
                    .description(Some(
                        "The metrics listener (`metrics.listen`), apart from the API's \
                         listener, which answers 404 at /metrics.",
                    ));
                item.servers = Some(vec![server.build()]);
            }
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                // Tags would only repeat the module a handler lives in.
                operation.tags = None;
                for (status, response) in operation.responses.responses.iter_mut() {
                    if let RefOr::T(response) = response {
                        if status == "303" {
                            let location = header(String::schema(), LOCATION);
                            response.headers.insert("Location".into(), location);
                        }
                        page_headers(response);
                        layer_headers(response);
                    }
                }
            }
        }
    }
}

/// How a client authenticates, as OpenAPI can say it.
const SECURITY_SCHEMES: [(&str, HttpAuthScheme, &str); 2] = [
    (
        "client_secret_basic",
        HttpAuthScheme::Basic,
        "RFC 6749 section 2.3.1: client id and secret, each form-urlencoded, as Basic \
         credentials. The alternative, client_secret_post, sends `client_id` and \
         `client_secret` in the body.",
    ),
    (
        "private_key_jwt",
        HttpAuthScheme::Bearer,
        "RFC 7523 section 2.2: `client_assertion_type=urn:ietf:params:oauth:\
         client-assertion-type:jwt-bearer` and a `client_assertion` JWT signed with a key of \
         the client's registered JWK Set (EdDSA, ES256 or RS256), with `iss` = `sub` = \
         client id, `aud` the issuer or the endpoint URL, `exp` at most five minutes ahead \
         and a single-use `jti`. Sent in the body, not a header; described here as the \
         nearest OpenAPI scheme.",
    ),
];

/// The headers every answer gets from the router's layers (`observe.rs`, `no_store`):
/// the request id, and `Cache-Control: no-store` unless the handler set its own.
fn layer_headers(response: &mut Response) {
    response
        .headers
        .entry("Cache-Control".into())
        .or_insert_with(|| header(NoStore::schema(), "Always `no-store` here."));
    response.headers.insert(
        "X-Request-Id".into(),
        header(
            String::schema(),
            "The request id: the caller's `X-Request-Id` when acceptable, else a generated \
             one. Also in the request's log line.",
        ),
    );
}

/// The header every page carries (`pages.rs`): its Content-Security-Policy. A response
/// that is a page and nothing else is one.
fn page_headers(response: &mut Response) {
    let only_html = response.content.len() == 1 && response.content.contains_key("text/html");
    if only_html {
        let csp = header(String::schema(), CSP);
        response
            .headers
            .insert("Content-Security-Policy".into(), csp);
    }
}

fn header(schema: RefOr<Schema>, description: &str) -> Header {
    let mut header = Header::new(schema);
    header.description = Some(description.to_owned());
    header
}

/// `Cache-Control` of answers no cache may keep.
#[derive(ToSchema)]
pub enum NoStore {
    #[serde(rename = "no-store")]
    NoStore,
}

/// `Pragma` of token answers (RFC 6749 section 5.1).
#[derive(ToSchema)]
pub enum NoCache {
    #[serde(rename = "no-cache")]
    NoCache,
}

/// `Access-Control-Allow-Origin` of the public documents.
#[derive(ToSchema)]
pub enum AnyOrigin {
    #[serde(rename = "*")]
    Any,
}

/// `WWW-Authenticate` of a 401 (RFC 6749 section 5.2): always [`BASIC_CHALLENGE`].
pub struct BasicChallenge;

impl PartialSchema for BasicChallenge {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([BASIC_CHALLENGE]))
            .into()
    }
}

impl ToSchema for BasicChallenge {}

/// `invalid_request` (or, on `/token`, another RFC 6749 section 5.2 code such as
/// `unauthorized_client`): a missing or repeated parameter, two authentication methods, a
/// `client_id` contradicting the credentials, or a content type other than
/// `application/x-www-form-urlencoded`.
#[derive(ToResponse)]
pub struct InvalidRequest(pub ErrorBody<'static>);

/// `invalid_client`: missing or wrong client credentials or client assertion, a disabled or
/// deleted client, or a method other than the registered one.
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = inline(BasicChallenge))))]
pub struct InvalidClient(pub ErrorBody<'static>);

/// Another method than the endpoint's; `Allow` names the one it takes.
#[derive(ToResponse)]
#[response(headers(("Allow" = String, description = "The method the endpoint takes.")))]
pub struct MethodNotAllowed(pub ErrorBody<'static>);

/// The body is larger than `http.max_body_bytes`.
#[derive(ToResponse)]
pub struct PayloadTooLarge(pub ErrorBody<'static>);

/// `slow_down`: too many requests from this client address, or a client's inactive-answer
/// budget is spent.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u32, description = "Seconds to wait.")))]
pub struct RateLimited(pub ErrorBody<'static>);

/// `temporarily_unavailable`: the store cannot answer now and answering without it would be
/// unsafe, or the request timed out.
#[derive(ToResponse)]
#[response(headers(("Retry-After" = u32, description = "Seconds to wait.")))]
pub struct Unavailable(pub ErrorBody<'static>);

/// A refused registration (RFC 7591 section 3.2.2): `invalid_redirect_uri`,
/// `invalid_client_metadata` (each naming the field, never its value), or
/// `invalid_request` for a content type other than `application/json`.
#[derive(ToResponse)]
pub struct RegistrationRefused(pub ErrorBody<'static>);

/// `invalid_token` (RFC 6750 section 3.1): registration requires the initial access token
/// (`registration.initial_access_token_env`), and it was missing or wrong.
#[derive(ToResponse)]
#[response(headers(("WWW-Authenticate" = String,
    description = "`Bearer realm=\"introspectd\"`, with `error=\"invalid_token\"` when a \
        wrong token was presented.")))]
pub struct RegistrationUnauthorized(pub ErrorBody<'static>);

/// The client metadata of a registration (RFC 7591 section 2). Other fields are ignored.
#[derive(ToSchema)]
pub struct RegistrationRequest {
    /// Where the client receives authorization codes; required.
    pub redirect_uris: Vec<String>,
    /// `none`, `client_secret_basic` (the default) or `client_secret_post`.
    #[schema(nullable = false)]
    pub token_endpoint_auth_method: Option<String>,
    /// `authorization_code` (the default) and optionally `refresh_token`.
    #[schema(nullable = false)]
    pub grant_types: Option<Vec<String>>,
    /// `code`.
    #[schema(nullable = false)]
    pub response_types: Option<Vec<String>>,
    /// Space-separated, within `registration.max_scope`.
    #[schema(nullable = false)]
    pub scope: Option<String>,
    /// Shown on the consent page; at most 200 characters, no control or format
    /// characters (Unicode category C: bidi controls, zero-width characters).
    #[schema(nullable = false)]
    pub client_name: Option<String>,
    /// An https URL.
    #[schema(nullable = false)]
    pub client_uri: Option<String>,
    /// An https URL.
    #[schema(nullable = false)]
    pub logo_uri: Option<String>,
    /// `native` (loopback http or private-use scheme redirect URIs, https ones beside
    /// them allowed) or `web` (https redirect URIs only); inferred from the redirect URIs
    /// when absent (`web` when all are https). Redirect URIs that do not fit are
    /// `invalid_redirect_uri`.
    #[schema(nullable = false)]
    pub application_type: Option<String>,
}

/// The errors of every endpoint that takes a form and a client's credentials (the
/// `Caller`): refusals of the request, of the client, of the method, of the body's size,
/// spent budgets, and a store that cannot answer.
pub struct CallerErrors;

impl IntoResponses for CallerErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        fn shared<'r, R: ToResponse<'r>>(status: &str) -> (String, RefOr<Response>) {
            let name = R::response().0;
            (status.to_owned(), Ref::from_response_name(name).into())
        }
        BTreeMap::from([
            shared::<InvalidRequest>("400"),
            shared::<InvalidClient>("401"),
            shared::<MethodNotAllowed>("405"),
            shared::<PayloadTooLarge>("413"),
            shared::<RateLimited>("429"),
            shared::<Unavailable>("503"),
        ])
    }
}

/// The client authentication parameters of a form body (RFC 6749 section 2.3.1, RFC 7523
/// section 2.2), read by the `Caller` extractor beside or instead of Basic credentials.
#[derive(ToSchema)]
pub struct ClientAuthentication {
    /// A public client's only credential; else client_secret_post, or beside a client
    /// assertion or Basic credentials naming the same client.
    #[schema(nullable = false)]
    pub client_id: Option<String>,
    /// client_secret_post only.
    #[schema(nullable = false)]
    pub client_secret: Option<String>,
    /// private_key_jwt: `urn:ietf:params:oauth:client-assertion-type:jwt-bearer`.
    #[schema(nullable = false)]
    pub client_assertion_type: Option<String>,
    /// private_key_jwt: the signed client assertion.
    #[schema(nullable = false)]
    pub client_assertion: Option<String>,
}

/// `POST /introspect`'s form body (RFC 7662 section 2.1).
#[derive(ToSchema)]
pub struct IntrospectionRequest {
    /// The token to introspect.
    pub token: String,
    /// Orders the search, never changes the answer. Unknown values are ignored.
    #[schema(nullable = false)]
    pub token_type_hint: Option<TokenUse>,
    #[serde(flatten)]
    pub credentials: ClientAuthentication,
}

/// `POST /token`'s form body (RFC 6749 sections 4.4.2 and 6, RFC 8707).
#[derive(ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `client_credentials` or `refresh_token`.
    pub grant_type: String,
    /// Space-separated; within the client's registered scope (default: all of it). For
    /// `refresh_token`, within the grant's scope.
    #[schema(nullable = false)]
    pub scope: Option<String>,
    /// RFC 8707 resource indicator; repeatable; each one of the client's registered
    /// audiences (default: all of them).
    #[schema(nullable = false)]
    pub resource: Option<Vec<String>>,
    /// For `refresh_token`: the refresh token to exchange. It is retired by the exchange;
    /// presenting it again revokes the whole grant (RFC 9700 section 4.14.2).
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    #[serde(flatten)]
    pub credentials: ClientAuthentication,
    /// For `authorization_code`: the code from the redirect back.
    #[schema(nullable = false)]
    pub code: Option<String>,
    /// For `authorization_code`: the redirect URI of the authorization request.
    #[schema(nullable = false)]
    pub redirect_uri: Option<String>,
    /// For `authorization_code`: the PKCE verifier whose S256 challenge the authorization
    /// request carried.
    #[schema(nullable = false)]
    pub code_verifier: Option<String>,
}

/// `POST /revoke`'s form body (RFC 7009 section 2.1).
#[derive(ToSchema)]
pub struct RevocationRequest {
    /// The token to revoke.
    pub token: String,
    /// Orders the search only.
    #[schema(nullable = false)]
    pub token_type_hint: Option<TokenUse>,
    #[serde(flatten)]
    pub credentials: ClientAuthentication,
}

/// A JWT (`typ: token-introspection+jwt`) with claims `iss`, `aud` (the caller), `iat`
/// and `token_introspection`, the JSON answer (RFC 9701).
#[derive(ToSchema)]
pub struct SignedIntrospection(pub String);

/// The metadata document: the fields below, the other endpoints' (`token_endpoint`,
/// `revocation_endpoint`, `jwks_uri`, each with its authentication methods and signing
/// algorithms), `grant_types_supported`, `introspection_signing_alg_values_supported` when
/// the signing key is asymmetric, with sign-in the authorization endpoint's fields,
/// `registration_endpoint` and `client_id_metadata_document_supported: true` while each
/// is on, and the configured `metadata` fields.
#[derive(ToSchema)]
#[schema(as = Metadata)]
pub struct MetadataDocument {
    pub issuer: String,
    pub introspection_endpoint: String,
    pub introspection_endpoint_auth_methods_supported: Vec<AuthMethod>,
    /// `["code"]` with sign-in on (`login.enabled`), else empty unless configured.
    pub response_types_supported: Vec<String>,
    #[serde(flatten)]
    pub more: BTreeMap<String, Value>,
}

/// A JWK Set (RFC 7517 section 5).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JwkSet {
    pub keys: Vec<Jwk>,
}

/// One public key (RFC 7517 section 4), with the members of its key type.
#[derive(ToSchema)]
pub struct Jwk {
    #[schema(inline)]
    pub kty: KeyType,
    pub kid: String,
    #[schema(inline)]
    pub r#use: Option<KeyUse>,
    #[schema(nullable = false)]
    pub alg: Option<String>,
    #[serde(flatten)]
    pub members: BTreeMap<String, Value>,
}

/// The key types this server signs with (RFC 8037, RFC 7518 section 6).
#[derive(ToSchema)]
pub enum KeyType {
    #[serde(rename = "OKP")]
    Okp,
    #[serde(rename = "EC")]
    Ec,
    #[serde(rename = "RSA")]
    Rsa,
}

/// What a published key is for.
#[derive(ToSchema)]
pub enum KeyUse {
    #[serde(rename = "sig")]
    Sig,
}

/// An OpenAPI description.
#[derive(ToSchema)]
pub struct Description {
    pub openapi: String,
    #[schema(value_type = Object)]
    pub info: Value,
    #[schema(value_type = Object)]
    pub paths: Value,
}

/// An HTML page (`text/html; charset=utf-8`): no script, nothing loaded from elsewhere, one
/// stylesheet of this server.
#[derive(ToSchema)]
pub struct Page(pub String);

/// What `Content-Security-Policy` of a sign-in page says.
const CSP: &str = "Sign-in pages: `default-src 'none'; style-src 'self'; img-src 'self'; \
    form-action 'self'` (and the origin or private-use scheme of the client's redirect URI, \
    and the origins of the providers' authorization endpoints, where a form may end up), \
    `frame-ancestors 'none'; base-uri 'none'`. Pages also carry \
    `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer` and `Cache-Control: no-store`.";

/// What `Location` of a sign-in redirect says.
const LOCATION: &str = "Where the browser goes next: the client's redirect URI with \
    `code`, `state` and `iss` (RFC 9207), or with `error`, `error_description`, `state` and \
    `iss`; or a page of this server, relative to it.";

/// The error page: a request that cannot go on (an unknown client, a redirect URI not
/// registered for it, a form that is not this browser's or has expired, a malformed form).
/// Never a redirect to an unverified URI (OAuth 2.1 section 4.1.2.1).
#[derive(ToResponse)]
#[response(content_type = "text/html")]
pub struct ErrorPage(pub Page);

/// The error page: a form whose CSRF token was not made for this browser's pending sign-in
/// (or session), or that was altered.
#[derive(ToResponse)]
#[response(content_type = "text/html")]
pub struct ForgedForm(pub Page);

/// The error page: the store cannot answer now.
#[derive(ToResponse)]
#[response(
    content_type = "text/html",
    headers(("Retry-After" = u32, description = "Seconds to wait."))
)]
pub struct UnavailablePage(pub Page);

/// The query of `GET /authorize` (OAuth 2.1 section 4.1.1, RFC 7636, RFC 8707).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizationRequest {
    /// `code`.
    pub response_type: String,
    pub client_id: String,
    /// Registered for the client; a loopback `http` URI matches on any port.
    pub redirect_uri: String,
    /// The S256 challenge of the client's PKCE verifier.
    pub code_challenge: String,
    /// `S256`.
    pub code_challenge_method: String,
    /// Returned unchanged to the client.
    #[param(required = false)]
    pub state: String,
    /// Space-separated, within the client's registered scope; none asked: all of it.
    #[param(required = false)]
    pub scope: String,
    /// RFC 8707 resource indicator; repeatable.
    #[param(required = false)]
    pub resource: String,
}

/// The hidden fields every sign-in form carries.
#[derive(ToSchema)]
pub struct PendingFields {
    /// The pending authorization request, as the page gave it (signed, bound to this
    /// browser, valid for 15 minutes).
    pub request: String,
    /// The page's CSRF token, bound to the browser and to `request`.
    pub csrf_token: String,
}

/// `POST /login`'s form body.
#[derive(ToSchema)]
pub struct LoginForm {
    #[serde(flatten)]
    pub pending: PendingFields,
    pub username: String,
    pub password: String,
}

/// The provider's `id` in `[[login.providers]]`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderId {
    /// The provider's slug.
    pub id: String,
}

/// The query a provider sends the browser back with (OIDC Core section 3.1.2.5 and 3.1.2.6).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProviderCallback {
    /// The authorization code, on success.
    #[param(required = false)]
    pub code: String,
    /// The `state` sent to the provider.
    pub state: String,
    /// The provider's error code, on failure.
    #[param(required = false)]
    pub error: String,
    /// The provider's issuer (RFC 9207); when present it must be the provider's.
    #[param(required = false)]
    pub iss: String,
}

/// `POST /consent`'s form body.
#[derive(ToSchema)]
pub struct ConsentForm {
    #[serde(flatten)]
    pub pending: PendingFields,
    #[schema(inline)]
    pub decision: Decision,
}

/// The button pressed on the consent page.
#[derive(ToSchema)]
pub enum Decision {
    #[serde(rename = "allow")]
    Allow,
    #[serde(rename = "deny")]
    Deny,
}

/// `POST /logout`'s form body.
#[derive(ToSchema)]
pub struct LogoutForm {
    /// The token the consent page's sign-out form carries, bound to the session.
    #[schema(nullable = false)]
    pub csrf_token: Option<String>,
}
