//! JWT responses for token introspection (RFC 9701): the usual answer wrapped in a JWT
//! signed with the server's key, for resource servers that need proof of the answer.

use axum::http::HeaderValue;
use serde::Serialize;

use crate::introspection::Answer;
use crate::secret::RawToken;
use crate::token::jwt::{KeyError, KeySet};

/// RFC 9701 §4: the media type a resource server asks for and receives.
pub const MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// RFC 9701 §5: the `typ` header of the response JWT.
pub const TYP: &str = "token-introspection+jwt";

/// RFC 9701 §5: the claims of the response JWT.
#[derive(Serialize)]
pub struct Claims<'a> {
    pub iss: &'a str,
    /// The resource server that asked.
    pub aud: &'a str,
    pub iat: i64,
    pub token_introspection: crate::introspection::Response<'a>,
}

/// Whether the `Accept` header asks for a JWT response (RFC 9701 §4). Parameters such as
/// `q` are ignored; any listed media range naming the JWT type selects it.
pub fn wants_jwt(accept: Option<&HeaderValue>) -> bool {
    let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Each range's media type before its parameters, compared without parsing the
    // parameters: this runs on every introspection that sends `Accept`.
    accept.split(',').any(|range| {
        range
            .split(';')
            .next()
            .is_some_and(|media| media.trim().eq_ignore_ascii_case(MEDIA_TYPE))
    })
}

/// Signs the answer for `caller` (RFC 9701 §5). An inactive answer is still signed and
/// carries only `{"active": false}`.
pub fn sign(
    keys: &KeySet,
    issuer: &str,
    caller: &str,
    answer: &Answer,
    now: i64,
) -> Result<RawToken, KeyError> {
    keys.sign_typed(
        TYP,
        &Claims {
            iss: issuer,
            aud: caller,
            iat: now,
            token_introspection: answer.response(),
        },
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_header_selects_the_jwt_response() {
        let wants = |v: &str| wants_jwt(Some(&HeaderValue::from_str(v).unwrap()));
        assert!(wants("application/token-introspection+jwt"));
        assert!(wants(
            "application/json;q=0.5, Application/Token-Introspection+JWT"
        ));
        assert!(!wants("application/json"));
        assert!(!wants("*/*"));
        assert!(!wants_jwt(None));
    }
}
