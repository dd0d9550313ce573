//! The `application/x-www-form-urlencoded` body of OAuth endpoints (RFC 6749 §3.1):
//! parameters may not repeat, and one sent without a value counts as omitted.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use crate::error::ApiError;

/// Parameters that may be given more than once: RFC 8707 §2 lets a client name several
/// resources.
const REPEATABLE: [&str; 1] = ["resource"];

/// Parsed form parameters. `Debug` shows names only: values include tokens and secrets.
pub struct OAuthForm {
    params: Vec<(String, String)>,
}

impl fmt::Debug for OAuthForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.params.iter().map(|(name, _)| name))
            .finish()
    }
}

impl OAuthForm {
    /// Parses a body, refusing repeated parameters.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        let mut params: Vec<(String, String)> = Vec::new();
        for (name, value) in form_urlencoded_pairs(body) {
            if params.iter().any(|(n, _)| *n == name) && !REPEATABLE.contains(&name.as_str()) {
                return Err(ApiError::invalid_request(repeated(&name)));
            }
            params.push((name, value));
        }
        params.retain(|(_, value)| !value.is_empty());
        Ok(OAuthForm { params })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter the request must carry: `invalid_request` without it (RFC 6749 §5.2).
    pub fn required(&self, name: &'static str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid_request(format!("missing parameter {name}")))
    }

    /// Every value of a repeatable parameter, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.params
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    // serde_urlencoded decodes into pairs and never fails for this target type.
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body).unwrap_or_default()
}

/// Parameters of the endpoints served here; only these are named in an error, in our
/// own spelling, so that no error body echoes what a request sent.
const KNOWN: [&str; 17] = [
    "token",
    "token_type_hint",
    "grant_type",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "code",
    "redirect_uri",
    "code_verifier",
    "username",
    "password",
    "request",
    "csrf_token",
    "decision",
];

fn repeated(name: &str) -> String {
    match KNOWN.iter().find(|known| **known == name) {
        Some(known) => format!("parameter {known} is repeated"),
        None => "a parameter is repeated".to_owned(),
    }
}

/// RFC 6749 §3.2 (and RFC 7662 §2.1): the body must be form-encoded.
fn is_form_content_type(value: &str) -> bool {
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let form_typed = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_form_content_type);
        if !form_typed {
            return Err(ApiError::invalid_request(
                "content type must be application/x-www-form-urlencoded",
            ));
        }
        let body = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::invalid_request("request body could not be read")
            }
        })?;
        OAuthForm::parse(&body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameter_is_refused() {
        let err = OAuthForm::parse(b"token=a&token=b").unwrap_err();
        assert!(
            err.to_string().contains("parameter token is repeated"),
            "{err}"
        );
    }

    #[test]
    fn resource_may_repeat() {
        let form = OAuthForm::parse(b"resource=urn%3Aa&resource=urn%3Ab").unwrap();
        assert_eq!(
            form.get_all("resource").collect::<Vec<_>>(),
            ["urn:a", "urn:b"]
        );
    }

    #[test]
    fn empty_value_counts_as_omitted() {
        let form = OAuthForm::parse(b"token=&token_type_hint=access_token").unwrap();
        assert_eq!(form.get("token"), None);
        assert_eq!(form.get("token_type_hint"), Some("access_token"));
    }

    #[test]
    fn values_are_percent_decoded() {
        let form = OAuthForm::parse(b"token=a%2Bb+c").unwrap();
        assert_eq!(form.get("token"), Some("a+b c"));
    }

    #[test]
    fn garbage_bytes_do_not_fail() {
        let form = OAuthForm::parse(&[0xff, b'=', 0xfe, b'&', b'&', b'=']).unwrap();
        assert_eq!(form.get("token"), None);
    }

    #[test]
    fn odd_repeated_names_are_not_echoed() {
        let err = OAuthForm::parse(b"%3Cscript%3E=1&%3Cscript%3E=2").unwrap_err();
        assert!(!err.to_string().contains("script"), "{err}");
        let err = OAuthForm::parse(b"attacker_text=1&attacker_text=2").unwrap_err();
        assert!(!err.to_string().contains("attacker"), "{err}");
    }

    #[test]
    fn debug_shows_names_only() {
        let form = OAuthForm::parse(b"token=secret-token-value").unwrap();
        let shown = format!("{form:?}");
        assert!(!shown.contains("secret-token-value"));
        assert!(shown.contains("token"));
    }

    #[test]
    fn content_type_may_carry_parameters() {
        assert!(is_form_content_type(
            "application/x-www-form-urlencoded; charset=UTF-8"
        ));
        assert!(is_form_content_type("Application/X-WWW-Form-Urlencoded"));
        assert!(!is_form_content_type("application/json"));
        assert!(!is_form_content_type("application/x-www-form-urlencodedx"));
    }
}
