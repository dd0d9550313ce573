//! Tokens: JWT access tokens (RFC 9068), opaque tokens known by digest, and the claims
//! both kinds carry.

pub mod claims;
pub mod jwt;
pub mod kek;
pub mod keyring;
pub mod mint;
pub mod opaque;
pub mod reseal;

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `len` bytes from the system's secure random source, base64url without padding.
pub fn random_string(len: usize) -> String {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("the system random source failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh identifier for a token (`jti`), 128 random bits.
pub fn new_jti() -> String {
    random_string(16)
}
