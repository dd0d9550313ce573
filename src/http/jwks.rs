//! `GET /jwks`: the public keys that verify what this server signs (RFC 7517 §5), the
//! `jwks_uri` of its metadata (RFC 8414 §2).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AppState;
use super::docs::{JwkSet, MethodNotAllowed, RateLimited};

/// RFC 7517 §8.5.
const JWK_SET_MEDIA_TYPE: &str = "application/jwk-set+json";

/// Verifiers may cache the set this long. `keys rotate` publishes a new key here at once
/// and signs with it only after `jwt.rotation_delay_seconds` (by default as long as this
/// cache lives), so a verifier never meets a token signed by a key it cannot have seen;
/// removed keys stop verifying here at once.
const CACHE_CONTROL: &str = "public, max-age=300";

/// Written from the current key set on each request, so it always matches the keys that
/// verify.
#[utoipa::path(
    get,
    path = super::JWKS_PATH,
    summary = "The public verification keys (RFC 7517 section 5), the `jwks_uri`",
    description = "Every asymmetric key that verifies access tokens and signed introspection \
        responses, by `kid`. CORS-readable; may be cached for five minutes. Shares the \
        metadata document's rate limit.",
    responses(
        (status = 200, description = "The JWK Set.", content_type = JWK_SET_MEDIA_TYPE,
            body = JwkSet, headers(("Cache-Control", description = "`public, max-age=300`."))),
        (status = 405, response = MethodNotAllowed),
        (status = 429, response = RateLimited),
    )
)]
pub async fn jwks(State(state): State<AppState>) -> impl IntoResponse {
    let view = state.directory.view().await;
    let keys = state.keys.current(view.keys_generation()).await;
    (
        [
            (header::CONTENT_TYPE, JWK_SET_MEDIA_TYPE),
            (header::CACHE_CONTROL, CACHE_CONTROL),
        ],
        serde_json::to_vec(keys.jwks()).unwrap_or_default(),
    )
}
