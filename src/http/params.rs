//! The HTTP extractors of request parameters: a form body (RFC 6749 §3.2: form-encoded,
//! within `http.max_body_bytes`) or a query, read into a typed request by the one rule
//! of [`crate::params`].

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};

use crate::error::ApiError;
use crate::params::{Parameters, parse};

/// Whether the request's content type is `essence` (RFC 9110 §8.3.1: compared without
/// its parameters, case-insensitively).
pub fn content_type_is(headers: &HeaderMap, essence: &str) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    // What nearly every client sends, recognised without parsing.
    if value.as_bytes() == essence.as_bytes() {
        return true;
    }
    value
        .to_str()
        .ok()
        .and_then(|value| value.parse::<mime::Mime>().ok())
        .is_some_and(|mime| mime.essence_str() == essence)
}

/// RFC 6749 §3.2 (and RFC 7662 §2.1): the body must be form-encoded.
fn is_form(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

/// Reads a form body, within the body limit (`http.max_body_bytes`), to be decoded by
/// [`crate::params::decode`].
pub async fn form_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_form(req.headers()) {
        return Err(ApiError::invalid_request(
            "content type must be application/x-www-form-urlencoded",
        ));
    }
    Bytes::from_request(req, state)
        .await
        .map_err(|rejection| match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            _ => ApiError::invalid_request("request body could not be read"),
        })
}

/// A form body read into `T`.
#[derive(Debug)]
pub struct Form<T>(pub T);

impl<T: Parameters, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let body = form_body(req, state).await?;
        Ok(Form(parse(&body)?))
    }
}

/// A query read into `T`.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: Parameters, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        Ok(Query(parse(query.as_bytes())?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_may_carry_parameters() {
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, value.parse().unwrap());
            is_form(&headers)
        };
        assert!(with("application/x-www-form-urlencoded; charset=UTF-8"));
        assert!(with("Application/X-WWW-Form-Urlencoded"));
        assert!(!with("application/json"));
        assert!(!with("application/x-www-form-urlencodedx"));
        assert!(!is_form(&HeaderMap::new()));
    }
}
