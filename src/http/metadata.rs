//! `GET /.well-known/oauth-authorization-server[/{issuer-path}]` (RFC 8414).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::docs::{AnyOrigin, MetadataDocument, MethodNotAllowed, RateLimited};
use super::{AppState, endpoint_url};
use crate::auth::assertion;
use crate::config::Config;
use crate::vocabulary::{AuthMethod, JWT_BEARER, TOKEN_EXCHANGE};

/// RFC 8414 §3: the well-known URI suffix.
pub const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

/// Fields MCP clients require; start-up warns about each one neither served nor configured.
const MCP_REQUIRED: [&str; 3] = [
    "authorization_endpoint",
    "token_endpoint",
    "response_types_supported",
];

/// The published document, serialized once at start-up.
#[derive(Clone, Debug)]
pub struct Metadata {
    /// Path this server answers on.
    pub path: String,
    pub document: Bytes,
}

/// RFC 8414 §3.1: the well-known suffix goes between the host and the issuer's path.
pub fn well_known_path(issuer: &str) -> String {
    let path = url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default();
    format!("{WELL_KNOWN}{path}")
}

/// The document: what this server serves, then the configured fields.
/// `introspection_signing_alg` is the algorithm of RFC 9701 responses, when the server
/// can sign them.
pub fn document(config: &Config, introspection_signing_alg: Option<&str>) -> Map<String, Value> {
    let url = |path| json!(endpoint_url(&config.issuer, path));
    let methods = AuthMethod::WITH_CREDENTIALS
        .map(AuthMethod::as_str)
        .to_vec();
    let assertion_algs = json!(assertion::ALGORITHMS.map(|alg| json!(alg)));
    let mut doc = Map::new();
    doc.insert("issuer".into(), json!(config.issuer));
    let signin = config.login.enabled;
    // RFC 8414 §2 and RFC 7523 §2.2: each endpoint with the client authentication it
    // takes; with sign-in on, public clients (`none`) at the token and revocation
    // endpoints, never at introspection.
    for (endpoint, path, public) in [
        ("introspection_endpoint", super::introspect::PATH, false),
        ("token_endpoint", super::token::PATH, signin),
        ("revocation_endpoint", super::revoke::PATH, signin),
    ] {
        doc.insert(endpoint.into(), url(path));
        let mut methods = methods.clone();
        if public {
            methods.push(AuthMethod::None.as_str());
        }
        doc.insert(format!("{endpoint}_auth_methods_supported"), json!(methods));
        doc.insert(
            format!("{endpoint}_auth_signing_alg_values_supported"),
            assertion_algs.clone(),
        );
    }
    doc.insert("jwks_uri".into(), url(super::JWKS_PATH));
    // RFC 9701 §7.1.
    if let Some(alg) = introspection_signing_alg {
        doc.insert(
            "introspection_signing_alg_values_supported".into(),
            json!([alg]),
        );
    }
    if signin {
        // OAuth 2.1 §4.1 with PKCE (RFC 7636 §4.3, S256 only) and RFC 9207 `iss`.
        doc.insert("authorization_endpoint".into(), url(super::authorize::PATH));
        doc.insert("response_types_supported".into(), json!(["code"]));
        doc.insert("response_modes_supported".into(), json!(["query"]));
        let mut grant_types = vec![
            "authorization_code",
            "client_credentials",
            "refresh_token",
            TOKEN_EXCHANGE,
        ];
        // The MCP enterprise-managed authorization extension: identity assertions are
        // taken only from providers that are trusted for them.
        if config.login.providers.iter().any(|p| p.id_jag) {
            grant_types.push(JWT_BEARER);
        }
        doc.insert("grant_types_supported".into(), json!(grant_types));
        doc.insert("code_challenge_methods_supported".into(), json!(["S256"]));
        doc.insert(
            "authorization_response_iss_parameter_supported".into(),
            json!(true),
        );
    } else {
        doc.insert(
            "grant_types_supported".into(),
            json!(["client_credentials", "refresh_token", TOKEN_EXCHANGE]),
        );
        // RFC 8414 §2 makes this field required; with no authorization endpoint it is
        // empty.
        doc.insert("response_types_supported".into(), json!([]));
    }
    // RFC 8414 §2 with RFC 7591 §3.
    if config.registration_enabled() {
        doc.insert("registration_endpoint".into(), url(super::register::PATH));
    }
    // draft-ietf-oauth-client-id-metadata-document §4.
    if config.metadata_documents_enabled() {
        doc.insert("client_id_metadata_document_supported".into(), json!(true));
    }
    for (name, value) in &config.metadata {
        doc.insert(name.clone(), value.clone());
    }
    doc
}

/// MCP-required fields that are neither served here nor configured: absent from the
/// document, or an empty list.
pub fn missing_for_mcp(config: &Config) -> Vec<&'static str> {
    let doc = document(config, None);
    MCP_REQUIRED
        .into_iter()
        .filter(|name| match doc.get(*name) {
            None => true,
            Some(Value::Array(items)) => items.is_empty(),
            Some(_) => false,
        })
        .collect()
}

impl Metadata {
    pub fn new(config: &Config, introspection_signing_alg: Option<&str>) -> Self {
        let document = Value::Object(document(config, introspection_signing_alg)).to_string();
        Metadata {
            path: well_known_path(&config.issuer),
            document: Bytes::from(document),
        }
    }
}

#[utoipa::path(
    get,
    path = WELL_KNOWN,
    summary = "Authorization server metadata (RFC 8414 section 3)",
    description = "When the issuer has a path, the document is served at this path followed \
        by the issuer's path instead (RFC 8414 section 3.1), for example \
        `/.well-known/oauth-authorization-server/tenant`. Carries \
        `Access-Control-Allow-Origin: *`. Rate limited per client address.",
    responses(
        (status = 200, description = "The metadata document.", body = MetadataDocument,
            headers(("Access-Control-Allow-Origin" = inline(AnyOrigin)))),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn metadata(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        state.metadata.document.clone(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_follows_rfc8414_section_3_1() {
        assert_eq!(
            well_known_path("https://as.example.com"),
            "/.well-known/oauth-authorization-server"
        );
        assert_eq!(
            well_known_path("https://as.example.com/tenant/one/"),
            "/.well-known/oauth-authorization-server/tenant/one"
        );
    }

    /// A configuration with sign-in off: what the server published before it.
    fn without_signin() -> Config {
        let mut config = Config::default();
        config.login.enabled = false;
        config
    }

    #[test]
    fn served_endpoints_are_advertised_with_their_auth_methods() {
        let doc = document(&without_signin(), Some("EdDSA"));
        assert_eq!(doc["token_endpoint"], "http://127.0.0.1:8080/token");
        assert_eq!(doc["revocation_endpoint"], "http://127.0.0.1:8080/revoke");
        assert_eq!(doc["jwks_uri"], "http://127.0.0.1:8080/jwks");
        for prefix in [
            "token_endpoint",
            "revocation_endpoint",
            "introspection_endpoint",
        ] {
            assert_eq!(
                doc[&format!("{prefix}_auth_methods_supported")],
                json!([
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt"
                ])
            );
            assert_eq!(
                doc[&format!("{prefix}_auth_signing_alg_values_supported")],
                json!(["EdDSA", "ES256", "RS256"])
            );
        }
        assert_eq!(
            doc["introspection_signing_alg_values_supported"],
            json!(["EdDSA"])
        );
        assert!(
            !document(&without_signin(), None)
                .contains_key("introspection_signing_alg_values_supported")
        );
        assert!(!doc.contains_key("authorization_endpoint"));
        assert_eq!(
            missing_for_mcp(&without_signin()),
            vec!["authorization_endpoint", "response_types_supported"]
        );
    }

    #[test]
    fn the_jwt_bearer_grant_is_listed_with_a_provider_trusted_for_assertions() {
        let mut config = Config::default();
        let listed = |config: &Config| {
            document(config, None)["grant_types_supported"]
                .as_array()
                .unwrap()
                .contains(&json!(JWT_BEARER))
        };
        assert!(!listed(&config));
        let provider: crate::config::ProviderConfig = serde_json::from_value(json!({
            "id": "corp", "name": "Corp", "issuer": "https://idp.example",
            "client_id": "introspectd", "client_secret": "s3cret"
        }))
        .unwrap();
        config.login.providers = vec![provider.clone()];
        assert!(!listed(&config), "id_jag is off unless set");
        config.login.providers = vec![crate::config::ProviderConfig {
            id_jag: true,
            ..provider
        }];
        assert!(listed(&config));
        config.login.enabled = false;
        assert!(!listed(&config), "providers serve only with sign-in on");
    }

    #[test]
    fn sign_in_publishes_what_mcp_clients_require() {
        let doc = document(&Config::default(), None);
        assert_eq!(
            doc["authorization_endpoint"],
            "http://127.0.0.1:8080/authorize"
        );
        assert_eq!(doc["response_types_supported"], json!(["code"]));
        assert_eq!(doc["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
        assert_eq!(
            doc["grant_types_supported"],
            json!([
                "authorization_code",
                "client_credentials",
                "refresh_token",
                "urn:ietf:params:oauth:grant-type:token-exchange"
            ])
        );
        let with_public = json!([
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
            "none"
        ]);
        assert_eq!(doc["token_endpoint_auth_methods_supported"], with_public);
        assert_eq!(
            doc["revocation_endpoint_auth_methods_supported"],
            with_public
        );
        assert_eq!(
            doc["introspection_endpoint_auth_methods_supported"],
            json!([
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt"
            ]),
            "resource servers always authenticate"
        );
        assert!(missing_for_mcp(&Config::default()).is_empty());
    }

    #[test]
    fn configured_fields_are_merged_but_issuer_is_ours() {
        let mut config = without_signin();
        config
            .metadata
            .insert("token_endpoint".into(), json!("https://as.example/token"));
        let doc = document(&config, None);
        assert_eq!(doc["token_endpoint"], "https://as.example/token");
        assert_eq!(doc["issuer"], "http://127.0.0.1:8080");
        assert_eq!(doc["response_types_supported"], json!([]));
        assert_eq!(
            missing_for_mcp(&config),
            vec!["authorization_endpoint", "response_types_supported"]
        );
    }
}
