//! Opaque tokens: 256 random bits, base64url, stored only as their SHA-256 digest.

use aws_lc_rs::digest;

use crate::secret::RawToken;

/// Opaque tokens carry this many random bytes.
pub const TOKEN_BYTES: usize = 32;

/// A new opaque token value.
pub fn generate() -> RawToken {
    RawToken::new(super::random_string(TOKEN_BYTES))
}

/// SHA-256 of the token as presented: the only form in which opaque tokens are stored.
pub fn digest(token: &str) -> [u8; 32] {
    let hash = digest::digest(&digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(hash.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_base64url() {
        let token = generate();
        assert_eq!(token.expose().len(), 43);
        assert!(
            token
                .expose()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_ne!(generate(), token);
    }

    #[test]
    fn digest_is_sha256() {
        let d = digest("abc");
        assert_eq!(
            d[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "SHA-256(\"abc\") starts ba7816bf"
        );
    }
}
