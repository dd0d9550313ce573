//! `GET /jwks`: the public keys that verify what this server signs (RFC 7517 §5), the
//! `jwks_uri` of its metadata (RFC 8414 §2).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;

/// RFC 7517 §8.5.
const JWK_SET_MEDIA_TYPE: &str = "application/jwk-set+json";

/// Verifiers may cache the set briefly; keys change only when an instance restarts.
const CACHE_CONTROL: &str = "public, max-age=300";

pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, JWK_SET_MEDIA_TYPE),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        state.jwks.clone(),
    )
}
