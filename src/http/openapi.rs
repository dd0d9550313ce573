//! `GET /openapi.json`: the OpenAPI 3.1 description of every endpoint, generated from
//! the endpoint table (`http/mod.rs`): each handler's `#[utoipa::path]` annotation and
//! the very types it parses requests into and answers with. The file `openapi.json` at
//! the repository root is this document as committed, for reading and diffing; a test
//! fails when the two differ, and its `write_openapi_json` test (ignored) rewrites the
//! file.

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::{Modify, OpenApi};

use super::docs::{Api, Description, Layers, MethodNotAllowed, RateLimited};

/// Where the document is served.
pub const PATH: &str = "/openapi.json";

/// The document as served: pretty-printed, ending in a newline, as committed.
pub fn document() -> &'static str {
    static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
        let mut doc = Api::openapi();
        for (paths, schemas) in super::documented() {
            doc.paths.merge(paths);
            let components = doc.components.get_or_insert_with(Default::default);
            components.schemas.extend(schemas);
        }
        let layers = Layers {
            metrics_path: super::prometheus::PATH,
        };
        layers.modify(&mut doc);
        let json = doc
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
