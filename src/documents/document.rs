//! A client ID metadata document (draft-ietf-oauth-client-id-metadata-document) as
//! policy: which client ids name one, what a document must say, and how long it may be
//! kept. Plain functions of data; the fetch is [`super::fetch`].

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use crate::auth::assertion::parse_client_jwks;
use crate::registration::{self, ClientMetadata, RegistrationError, RegistrationRequest};
use crate::vocabulary::AuthMethod;

/// Longest client id fetched as a document URL.
pub const MAX_CLIENT_ID_LEN: usize = 512;

/// Shortest time a document is kept, in seconds: also the time for documents whose
/// `Cache-Control` says nothing, `no-cache` or `no-store`.
pub const MIN_CACHE_SECONDS: i64 = 300;

/// Longest time a document is kept, in seconds.
pub const MAX_CACHE_SECONDS: i64 = 86_400;

/// Why a document was not used: said in the log, never to the caller (who is told the
/// client is unknown), and never holding a value the document carried.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{why}")]
pub struct Refusal {
    why: String,
    /// The host could not be reached or answered with a temporary error (a timeout, a
    /// 5xx, 429): that says nothing of the document, which may stand as last fetched.
    unavailable: bool,
}

impl Refusal {
    /// A definite answer: the document is not one the client may be used by.
    pub fn new(why: impl Into<String>) -> Self {
        Refusal {
            why: why.into(),
            unavailable: false,
        }
    }

    /// No answer about the document: its host could not give one now.
    pub fn unavailable(why: impl Into<String>) -> Self {
        Refusal {
            why: why.into(),
            unavailable: true,
        }
    }

    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// The same refusal, saying what it was about.
    pub fn about(self, what: &str) -> Self {
        Refusal {
            why: format!("{what}: {}", self.why),
            ..self
        }
    }
}

impl From<RegistrationError> for Refusal {
    fn from(err: RegistrationError) -> Self {
        Refusal::new(err.to_string())
    }
}

/// Whether a client id names a metadata document rather than a stored client: an https
/// URL. Whether it is one that may be fetched is [`document_url`]'s to say.
pub fn is_document_id(client_id: &str) -> bool {
    client_id.starts_with("https://")
}

/// The URL a client id names, if it may name a document (draft §3): https, a path
/// other than `/`, no fragment, no user information, no query, no dot segments, and
/// written exactly as its normal form (so one document has one client id).
pub fn document_url(client_id: &str) -> Result<Url, Refusal> {
    if client_id.len() > MAX_CLIENT_ID_LEN {
        return Err(Refusal::new("client id is longer than 512 characters"));
    }
    let url = Url::parse(client_id).map_err(|_| Refusal::new("client id is not a URL"))?;
    if url.scheme() != "https" || url.host().is_none() {
        return Err(Refusal::new("client id is not an https URL"));
    }
    if url.path() == "/" || url.path().is_empty() {
        return Err(Refusal::new("client id has no path"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::new("client id carries user information"));
    }
    if url.fragment().is_some() || url.query().is_some() {
        return Err(Refusal::new("client id has a query or fragment"));
    }
    if url.as_str() != client_id {
        return Err(Refusal::new(
            "client id is not in normal form (dot segments, case or escapes)",
        ));
    }
    Ok(url)
}

/// How a `private_key_jwt` client publishes its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Keys {
    /// `jwks`: the JWK Set itself, checked, as JSON.
    Inline(String),
    /// `jwks_uri`: fetched like the document.
    Uri(Url),
}

/// A document that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub metadata: ClientMetadata,
    /// Only for `private_key_jwt`.
    pub keys: Option<Keys>,
}

/// Reads a fetched document for `client_id`: a JSON object naming `client_id` exactly,
/// with the metadata a self-registered client may have (as for `POST /register`), a
/// public client (`none`, the default) or one with keys (`private_key_jwt` with `jwks`
/// or `jwks_uri`), never a secret.
pub fn read_document(body: &[u8], client_id: &str, max_scope: &str) -> Result<Document, Refusal> {
    let object = match serde_json::from_slice::<Value>(body) {
        Ok(object @ Value::Object(_)) => object,
        _ => return Err(Refusal::new("the document is not a JSON object")),
    };
    let fields: DocumentFields = read(&object)?;
    if fields.client_id.as_deref() != Some(client_id) {
        return Err(Refusal::new(
            "the document's client_id is not the URL it was fetched from",
        ));
    }
    if fields.client_secret.is_some() || fields.client_secret_expires_at.is_some() {
        return Err(Refusal::new("the document carries a client secret"));
    }
    let metadata = RegistrationRequest::read(&object)?;
    let method = match metadata.token_endpoint_auth_method.as_deref() {
        None => AuthMethod::None,
        Some(method) => AuthMethod::parse(method)
            .filter(|m| matches!(m, AuthMethod::None | AuthMethod::PrivateKeyJwt))
            .ok_or_else(|| {
                Refusal::new("token_endpoint_auth_method: must be none or private_key_jwt")
            })?,
    };
    let keys = keys(&fields, method)?;
    let metadata = registration::read_fields(&metadata, max_scope, method)?;
    Ok(Document { metadata, keys })
}

/// The fields of a document beside the registration metadata ([`RegistrationRequest`]).
#[derive(Deserialize)]
struct DocumentFields {
    client_id: Option<String>,
    jwks: Option<Value>,
    jwks_uri: Option<String>,
    /// Never allowed: only their presence is read.
    client_secret: Option<serde::de::IgnoredAny>,
    client_secret_expires_at: Option<serde::de::IgnoredAny>,
}

/// Reads the document's own fields; one of the wrong shape is refused by name.
fn read(object: &Value) -> Result<DocumentFields, Refusal> {
    serde_path_to_error::deserialize(object).map_err(|err| {
        let field = err.path().to_string();
        Refusal::new(match field.as_str() {
            "client_id" => "client_id: must be a string",
            "jwks_uri" => "jwks_uri: must be a string",
            _ => "the document is not a JSON object",
        })
    })
}

/// `jwks` or `jwks_uri`, exactly one, for `private_key_jwt`; neither otherwise.
fn keys(fields: &DocumentFields, method: AuthMethod) -> Result<Option<Keys>, Refusal> {
    let jwks = fields.jwks.as_ref().filter(|v| !v.is_null());
    let jwks_uri = registration::https_url(fields.jwks_uri.as_deref(), "jwks_uri")?;
    match (method, jwks, jwks_uri) {
        (AuthMethod::PrivateKeyJwt, Some(jwks), None) => parse_client_jwks(&jwks.to_string())
            .map(|jwks| Some(Keys::Inline(jwks)))
            .map_err(|why| Refusal::new(format!("jwks: {why}"))),
        (AuthMethod::PrivateKeyJwt, None, Some(uri)) => Url::parse(&uri)
            .map(|url| Some(Keys::Uri(url)))
            .map_err(|_| Refusal::new("jwks_uri: must be an https URL")),
        (AuthMethod::PrivateKeyJwt, None, None) => {
            Err(Refusal::new("private_key_jwt needs jwks or jwks_uri"))
        }
        (AuthMethod::PrivateKeyJwt, Some(_), Some(_)) => {
            Err(Refusal::new("jwks and jwks_uri must not both be given"))
        }
        (_, None, None) => Ok(None),
        (_, _, _) => Err(Refusal::new(
            "jwks and jwks_uri are only for private_key_jwt",
        )),
    }
}

/// How long a document may be kept, from its response's `Cache-Control` (RFC 9111
/// §5.2.2): `max-age`, within [`MIN_CACHE_SECONDS`] and [`MAX_CACHE_SECONDS`];
/// `no-store`, `no-cache`, nothing or nonsense keep it the shortest time.
pub fn cache_seconds(cache_control: Option<&str>) -> i64 {
    let mut max_age = None;
    for directive in cache_control.unwrap_or("").split(',') {
        let directive = directive.trim().to_ascii_lowercase();
        if directive == "no-store" || directive == "no-cache" {
            return MIN_CACHE_SECONDS;
        }
        if let Some(seconds) = directive.strip_prefix("max-age=") {
            max_age = seconds.trim_matches('"').parse::<i64>().ok();
        }
    }
    max_age
        .unwrap_or(MIN_CACHE_SECONDS)
        .clamp(MIN_CACHE_SECONDS, MAX_CACHE_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "https://app.example/oauth/client.json";

    fn read(body: serde_json::Value) -> Result<Document, Refusal> {
        read_document(body.to_string().as_bytes(), ID, "mcp read")
    }

    #[test]
    fn document_urls_are_https_with_a_path_in_normal_form() {
        assert!(document_url(ID).is_ok());
        assert!(document_url("https://app.example:8443/c").is_ok());
        for refused in [
            "http://app.example/client.json",
            "https://app.example",
            "https://app.example/",
            "https://user:pw@app.example/c",
            "https://app.example/c#x",
            "https://app.example/c?x=1",
            "https://app.example/a/../c",
            "https://app.example/./c",
            "https://APP.example/c",
            "https://app.example:443/c",
            "https:///c",
            "not a url",
        ] {
            assert!(document_url(refused).is_err(), "{refused}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_CLIENT_ID_LEN));
        assert!(document_url(&long).is_err());
    }

    #[test]
    fn a_minimal_document_is_a_public_client() {
        let doc = read(serde_json::json!({
            "client_id": ID,
            "client_name": "App",
            "redirect_uris": ["http://127.0.0.1:3000/cb"],
        }))
        .unwrap();
        assert_eq!(doc.metadata.token_endpoint_auth_method, AuthMethod::None);
        assert_eq!(doc.metadata.scope, "mcp read");
        assert_eq!(doc.keys, None);
    }

    #[test]
    fn documents_are_refused_for_what_they_say_without_repeating_it() {
        let cb = ["https://app.example/cb"];
        for (body, why) in [
            (serde_json::json!({"redirect_uris": cb}), "client_id"),
            (
                serde_json::json!({"client_id": "https://SECRET.example/c", "redirect_uris": cb}),
                "client_id",
            ),
            (serde_json::json!({"client_id": ID}), "redirect_uris"),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "token_endpoint_auth_method": "client_secret_basic"}),
                "token_endpoint_auth_method",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "client_secret": "SECRET"}),
                "secret",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "token_endpoint_auth_method": "private_key_jwt"}),
                "jwks",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "jwks_uri": "https://app.example/SECRET"}),
                "only for private_key_jwt",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks_uri": "http://app.example/SECRET"}),
                "jwks_uri",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb, "scope": "admin"}),
                "scope",
            ),
            (
                serde_json::json!({"client_id": ID, "redirect_uris": cb,
                    "grant_types": ["client_credentials"]}),
                "grant_types",
            ),
        ] {
            let refusal = read(body).unwrap_err().to_string();
            assert!(refusal.contains(why), "{refusal} should name {why}");
            assert!(!refusal.contains("SECRET"), "{refusal}");
        }
        assert!(read_document(b"<html>", ID, "").is_err());
    }

    #[test]
    fn a_key_holding_client_names_its_keys() {
        let doc = read(
            serde_json::json!({"client_id": ID, "redirect_uris": ["https://a.example/cb"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://app.example/jwks.json"}),
        )
        .unwrap();
        assert_eq!(
            doc.keys,
            Some(Keys::Uri(
                Url::parse("https://app.example/jwks.json").unwrap()
            ))
        );
    }

    #[test]
    fn cache_control_is_honoured_within_bounds() {
        assert_eq!(cache_seconds(None), MIN_CACHE_SECONDS);
        assert_eq!(cache_seconds(Some("max-age=3600")), 3_600);
        assert_eq!(cache_seconds(Some("public, Max-Age=600")), 600);
        assert_eq!(cache_seconds(Some("max-age=10")), MIN_CACHE_SECONDS);
        assert_eq!(cache_seconds(Some("max-age=9999999")), MAX_CACHE_SECONDS);
        assert_eq!(
            cache_seconds(Some("max-age=3600, no-store")),
            MIN_CACHE_SECONDS
        );
        assert_eq!(cache_seconds(Some("no-cache")), MIN_CACHE_SECONDS);
        assert_eq!(cache_seconds(Some("max-age=-5")), MIN_CACHE_SECONDS);
        assert_eq!(cache_seconds(Some("max-age=x")), MIN_CACHE_SECONDS);
    }
}
