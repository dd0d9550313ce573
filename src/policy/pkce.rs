//! Proof Key for Code Exchange (RFC 7636) with the `S256` method only: OAuth 2.1 §4.1.1
//! and the MCP authorization specification refuse `plain`.

use aws_lc_rs::digest;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

/// The one `code_challenge_method` accepted.
pub const S256: &str = "S256";

/// RFC 7636 §4.1: a verifier is 43 to 128 characters of `[A-Za-z0-9-._~]`.
pub fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len()) && verifier.bytes().all(unreserved)
}

/// An `S256` challenge is the base64url (unpadded) SHA-256 of a verifier: exactly 43
/// characters of the base64url alphabet (RFC 7636 §4.2).
pub fn valid_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.6: whether `verifier` is well-formed and its `S256` transform equals
/// `challenge`, compared in constant time.
pub fn verify_s256(verifier: &str, challenge: &str) -> bool {
    if !valid_verifier(verifier) {
        return false;
    }
    let computed = challenge_of(verifier);
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

/// The `S256` challenge of a verifier.
pub fn challenge_of(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, verifier.as_bytes()))
}

/// RFC 3986 §2.3 unreserved characters.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn rfc7636_appendix_b_verifies() {
        assert_eq!(challenge_of(VERIFIER), CHALLENGE);
        assert!(verify_s256(VERIFIER, CHALLENGE));
        assert!(valid_challenge(CHALLENGE));
    }

    #[test]
    fn a_wrong_verifier_does_not_verify() {
        let other = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert!(!verify_s256(other, CHALLENGE));
        assert!(!verify_s256(
            VERIFIER,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
    }

    #[test]
    fn plain_does_not_verify() {
        // A client that sent the verifier itself as challenge (the `plain` method).
        assert!(!verify_s256(VERIFIER, VERIFIER));
    }

    #[test]
    fn verifier_syntax_follows_rfc7636_section_4_1() {
        assert!(valid_verifier(&"a".repeat(43)));
        assert!(valid_verifier(&"~._-".repeat(32)));
        assert!(!valid_verifier(&"a".repeat(42)), "too short");
        assert!(!valid_verifier(&"a".repeat(129)), "too long");
        assert!(!valid_verifier(&format!("{}+", "a".repeat(42))));
        assert!(!valid_verifier(&format!("{} ", "a".repeat(43))));
        assert!(!valid_verifier(&"é".repeat(30)));
        // A malformed verifier never verifies, even against its own transform.
        let short = "a".repeat(42);
        assert!(!verify_s256(&short, &challenge_of(&short)));
    }

    #[test]
    fn challenge_syntax_is_43_base64url_characters() {
        assert!(!valid_challenge(&CHALLENGE[..42]));
        assert!(!valid_challenge(&format!("{CHALLENGE}A")));
        assert!(!valid_challenge(&CHALLENGE.replace('-', "+")));
        assert!(!valid_challenge(&format!("{}=", &CHALLENGE[..42])));
    }
}
