//! What the OpenAPI description shares between endpoints: the documented error
//! responses, the schemas of answers several endpoints give, the headers the router's
//! layers add, and the security schemes. The endpoints' own request and answer types
//! live beside their handlers; the document is put together from the endpoint table in
//! `http/mod.rs`.

use std::collections::BTreeMap;

use serde_json::Value;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Header, OpenApi as Document, Ref, RefOr, Response, ServerBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, PartialSchema, ToResponse, ToSchema};

use crate::config::Config;
use crate::error::{BASIC_CHALLENGE, ErrorBody};
use crate::vocabulary::AuthMethod;

#[derive(OpenApi)]
#[openapi(
    info(
        description = "OAuth 2.0 Token Introspection (RFC 7662), Authorization Server \
        Metadata (RFC 8414), a token endpoint and revocation (RFC 7009). \
        Every response carries `Cache-Control: no-store` (unless documented otherwise) and \
        an `X-Request-Id` header: the caller's own when it sent an acceptable one (at most \
        128 characters of letters, digits and `-_.:/+=`), a generated one otherwise. Errors \
        are OAuth error responses (RFC 6749 section 5.2). Paths this server does not serve \
        answer `404 {\"error\": \"not_found\"}`. Any request running past \
        `http.request_timeout_ms` answers `503 temporarily_unavailable`. A request whose \
        request line and headers together exceed `http.max_header_bytes` (counted as \
        `name: value` plus CRLF per field), or that carries more than `http.max_headers` \
        fields, answers `431`."
    ),
    components(
        schemas(ErrorBody),
        responses(
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
        )
    )
)]
pub struct Api;

/// What the router adds to every answer, and what no handler annotation can say: the
/// headers of the layers, the security schemes, and the metrics listener's own address.
pub struct Layers {
    /// The metrics listener's path, documented on a server of its own.
    pub metrics_path: &'static str,
}

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
            if path == self.metrics_path {
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

/// The provider's `id` in `[[login.providers]]`.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProviderId {
    /// The provider's slug.
    pub id: String,
}
