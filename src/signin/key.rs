//! The key that signs the sign-in cookies, the pending sign-in carried through the pages
//! and the CSRF tokens bound to it (HMAC-SHA256). Every instance sharing a store shares
//! it; it is stored sealed by the key-encryption key, like generated signing keys.

use std::fmt;

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Bytes of a sign-in key.
pub const KEY_BYTES: usize = 32;

/// What a signature is for: a value signed for one purpose never verifies for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie: names a session row.
    Session,
    /// The browser cookie: binds pending sign-ins to one browser.
    Browser,
    /// A pending authorization request carried through the login and consent forms.
    Request,
    /// The CSRF token of a form bound to a pending sign-in.
    Csrf,
    /// The CSRF token of the sign-out form, bound to the session.
    SignOut,
    /// What a browser cookie keeps of a user who proved their password from it: bound
    /// to the user's password hash and when it or their being disabled last changed.
    Proven,
    /// The PKCE verifier of a sign-in sent to a provider, derived from its `state`.
    ProviderVerifier,
    /// The `nonce` of a sign-in sent to a provider, derived from its `state`.
    ProviderNonce,
}

impl Purpose {
    fn label(self) -> &'static [u8] {
        match self {
            Purpose::Session => b"introspectd session",
            Purpose::Browser => b"introspectd browser",
            Purpose::Request => b"introspectd request",
            Purpose::Csrf => b"introspectd csrf",
            Purpose::SignOut => b"introspectd sign-out",
            Purpose::Proven => b"introspectd proven user",
            Purpose::ProviderVerifier => b"introspectd provider pkce verifier",
            Purpose::ProviderNonce => b"introspectd provider nonce",
        }
    }
}

/// An HMAC-SHA256 key. `Debug` never shows it.
pub struct SigninKey(hmac::Key);

impl fmt::Debug for SigninKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigninKey([redacted])")
    }
}

impl SigninKey {
    pub fn new(bytes: &[u8; KEY_BYTES]) -> Self {
        SigninKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }

    /// Fresh key material from the system's secure random source.
    pub fn generate() -> [u8; KEY_BYTES] {
        let mut bytes = [0u8; KEY_BYTES];
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random source failed");
        bytes
    }

    /// A token for `parts`: the base64url tag.
    pub fn token(&self, purpose: Purpose, parts: &[&[u8]]) -> String {
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.0, &message(purpose, parts)))
    }

    /// Whether `token` is the tag of `parts`, checked in constant time.
    pub fn verify_token(&self, purpose: Purpose, parts: &[&[u8]], token: &str) -> bool {
        let Ok(tag) = URL_SAFE_NO_PAD.decode(token) else {
            return false;
        };
        hmac::verify(&self.0, &message(purpose, parts), &tag).is_ok()
    }

    /// `value.tag`: a value that carries its own signature. `value` must not contain `.`.
    pub fn sign(&self, purpose: Purpose, value: &str) -> String {
        format!("{value}.{}", self.token(purpose, &[value.as_bytes()]))
    }

    /// The value of a signed string, when its signature is right.
    pub fn verify<'a>(&self, purpose: Purpose, signed: &'a str) -> Option<&'a str> {
        let (value, token) = signed.rsplit_once('.')?;
        self.verify_token(purpose, &[value.as_bytes()], token)
            .then_some(value)
    }
}

/// What is signed: the purpose, then each part length-prefixed, so that no two
/// different lists of parts are signed alike.
fn message(purpose: Purpose, parts: &[&[u8]]) -> Vec<u8> {
    let mut message = purpose.label().to_vec();
    for part in parts {
        message.extend_from_slice(&(part.len() as u64).to_be_bytes());
        message.extend_from_slice(part);
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigninKey {
        SigninKey::new(&SigninKey::generate())
    }

    #[test]
    fn a_signed_value_verifies_and_reads_back() {
        let key = key();
        let signed = key.sign(Purpose::Session, "abc");
        assert!(signed.starts_with("abc."));
        assert_eq!(key.verify(Purpose::Session, &signed), Some("abc"));
    }

    #[test]
    fn an_altered_value_or_tag_does_not_verify() {
        let key = key();
        let signed = key.sign(Purpose::Session, "abc");
        let (_, tag) = signed.split_once('.').unwrap();
        assert_eq!(key.verify(Purpose::Session, &format!("abd.{tag}")), None);
        let mut bytes = signed.clone().into_bytes();
        let last = bytes.len() - 1;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            key.verify(Purpose::Session, &String::from_utf8(bytes).unwrap()),
            None
        );
        for junk in ["", ".", "abc", "abc.", "abc.!!!", "..."] {
            assert_eq!(key.verify(Purpose::Session, junk), None, "{junk}");
        }
    }

    #[test]
    fn a_value_signed_for_one_purpose_fails_for_another() {
        let key = key();
        let signed = key.sign(Purpose::Browser, "abc");
        assert_eq!(key.verify(Purpose::Session, &signed), None);
        let token = key.token(Purpose::Csrf, &[b"a"]);
        assert!(key.verify_token(Purpose::Csrf, &[b"a"], &token));
        assert!(!key.verify_token(Purpose::SignOut, &[b"a"], &token));
    }

    #[test]
    fn another_key_does_not_verify() {
        let signed = key().sign(Purpose::Session, "abc");
        assert_eq!(key().verify(Purpose::Session, &signed), None);
    }

    #[test]
    fn parts_are_not_ambiguous() {
        let key = key();
        let token = key.token(Purpose::Csrf, &[b"ab", b"c"]);
        assert!(!key.verify_token(Purpose::Csrf, &[b"a", b"bc"], &token));
        assert!(!key.verify_token(Purpose::Csrf, &[b"abc"], &token));
        assert!(key.verify_token(Purpose::Csrf, &[b"ab", b"c"], &token));
    }

    #[test]
    fn debug_shows_no_key() {
        assert_eq!(format!("{:?}", key()), "SigninKey([redacted])");
    }
}
