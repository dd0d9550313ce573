//! `GET /.well-known/oauth-authorization-server[/{issuer-path}]` (RFC 8414).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Map, Value, json};

use super::AppState;
use crate::config::Config;
use crate::store::AuthMethod;

/// RFC 8414 §3: the well-known URI suffix.
const WELL_KNOWN: &str = "/.well-known/oauth-authorization-server";

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
pub fn document(config: &Config) -> Map<String, Value> {
    let base = config.issuer.trim_end_matches('/');
    let mut doc = Map::new();
    doc.insert("issuer".into(), json!(config.issuer));
    doc.insert(
        "introspection_endpoint".into(),
        json!(format!("{base}/introspect")),
    );
    doc.insert(
        "introspection_endpoint_auth_methods_supported".into(),
        json!(AuthMethod::ALL.map(AuthMethod::as_str)),
    );
    // RFC 8414 §2 makes this field required; with no authorization endpoint it is empty.
    doc.insert("response_types_supported".into(), json!([]));
    for (name, value) in &config.metadata {
        doc.insert(name.clone(), value.clone());
    }
    doc
}

/// MCP-required fields that are neither served here nor configured.
pub fn missing_for_mcp(config: &Config) -> Vec<&'static str> {
    MCP_REQUIRED
        .into_iter()
        .filter(|name| !config.metadata.contains_key(*name))
        .collect()
}

impl Metadata {
    pub fn new(config: &Config) -> Self {
        let document = Value::Object(document(config)).to_string();
        Metadata {
            path: well_known_path(&config.issuer),
            document: Bytes::from(document),
        }
    }
}

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

    #[test]
    fn configured_fields_are_merged_but_issuer_is_ours() {
        let mut config = Config::default();
        config
            .metadata
            .insert("token_endpoint".into(), json!("https://as.example/token"));
        let doc = document(&config);
        assert_eq!(doc["token_endpoint"], "https://as.example/token");
        assert_eq!(doc["issuer"], "http://127.0.0.1:8080");
        assert_eq!(doc["response_types_supported"], json!([]));
        assert_eq!(
            missing_for_mcp(&config),
            vec!["authorization_endpoint", "response_types_supported"]
        );
    }
}
