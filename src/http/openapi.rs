//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, kept beside the
//! code in `openapi.json` and checked against live answers by the test suite.

use axum::http::header;
use axum::response::IntoResponse;

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The document, as committed.
pub const DOCUMENT: &str = include_str!("../../openapi.json");

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
