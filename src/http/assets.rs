//! `GET /assets/introspectd.css`: the one stylesheet of the sign-in pages, compiled into
//! the binary. Pages name it with the version, so it may be cached for long.

use super::docs::{MethodNotAllowed, RateLimited};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

pub const PATH: &str = "/assets/introspectd.css";

const STYLESHEET: &str = include_str!("../../templates/introspectd.css");

#[utoipa::path(
    get,
    path = PATH,
    summary = "The stylesheet of the sign-in pages",
    description = "Compiled into the binary; pages name it with the version, so it may be \
        cached for a year. Shares the metadata document's rate limit.",
    responses(
        (status = 200, description = "The stylesheet.", body = String, content_type = "text/css",
            headers(("Cache-Control" = String,
                description = "`public, max-age=31536000, immutable`."))),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn stylesheet() -> Response {
    let mut response = STYLESHEET.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}
