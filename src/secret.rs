//! Wrappers for values that must never reach a log line, an error body or debug output.
//! The value is held by `secrecy` (wiped from memory when dropped, never printed) and
//! compared, where anything compares it, in time independent of where values differ.

use std::fmt;
use std::marker::PhantomData;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// What kind of secret a [`Secret`] holds: only its name, for debug output.
pub trait Kind {
    const NAME: &'static str;
}

/// A secret string of kind `K`.
pub struct Secret<K: Kind> {
    value: SecretString,
    kind: PhantomData<K>,
}

impl<K: Kind> Secret<K> {
    pub fn new(value: impl Into<String>) -> Self {
        Secret {
            value: SecretString::from(value.into()),
            kind: PhantomData,
        }
    }

    /// The secret value itself; call sites are the places it may leave this type.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl<K: Kind> Clone for Secret<K> {
    fn clone(&self) -> Self {
        Secret {
            value: self.value.clone(),
            kind: PhantomData,
        }
    }
}

/// Equal values compare equal in the same time wherever they would first differ.
impl<K: Kind> PartialEq for Secret<K> {
    fn eq(&self, other: &Self) -> bool {
        self.expose()
            .as_bytes()
            .ct_eq(other.expose().as_bytes())
            .into()
    }
}

impl<K: Kind> Eq for Secret<K> {}

impl<K: Kind> fmt::Debug for Secret<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}([redacted])", K::NAME)
    }
}

/// A secret read from a request: a string, wrapped at once.
impl<'de, K: Kind> serde::Deserialize<'de> for Secret<K> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(deserializer).map(Secret::new)
    }
}

/// Written as `[redacted]`: a configuration that is shown or serialized never holds the
/// value.
impl<K: Kind> serde::Serialize for Secret<K> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str("[redacted]")
    }
}

/// Documented as the string it is.
impl<K: Kind> utoipa::PartialSchema for Secret<K> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <String as utoipa::PartialSchema>::schema()
    }
}

impl<K: Kind> utoipa::ToSchema for Secret<K> {}

/// A client secret as presented by a caller or shown once at creation.
pub type ClientSecret = Secret<ClientSecretKind>;
pub enum ClientSecretKind {}
impl Kind for ClientSecretKind {
    const NAME: &'static str = "ClientSecret";
}

/// A token as presented for introspection or revocation, or as just minted.
pub type RawToken = Secret<RawTokenKind>;
pub enum RawTokenKind {}
impl Kind for RawTokenKind {
    const NAME: &'static str = "RawToken";
}

/// A user's password as typed into the login form, given on stdin or generated.
pub type Password = Secret<PasswordKind>;
pub enum PasswordKind {}
impl Kind for PasswordKind {
    const NAME: &'static str = "Password";
}

/// An argon2id PHC string of a client secret or a user's password, as stored.
pub type SecretHash = Secret<SecretHashKind>;
pub enum SecretHashKind {}
impl Kind for SecretHashKind {
    const NAME: &'static str = "SecretHash";
}

/// The initial access token `POST /register` may require (RFC 7591 §3), as configured
/// or as presented.
pub type InitialAccessToken = Secret<InitialAccessTokenKind>;
pub enum InitialAccessTokenKind {}
impl Kind for InitialAccessTokenKind {
    const NAME: &'static str = "InitialAccessToken";
}

/// This server's client secret at an OpenID provider, as configured or read from the
/// environment: sent to the provider's token endpoint only.
pub type ProviderSecret = Secret<ProviderSecretKind>;
pub enum ProviderSecretKind {}
impl Kind for ProviderSecretKind {
    const NAME: &'static str = "ProviderSecret";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = ClientSecret::new("s3cr3t-value");
        let token = RawToken::new("eyJhbGciOi.payload.sig");
        let password = Password::new("hunter2-password");
        let shown = format!("{secret:?} {token:?} {:?} {password:?}", Some(&secret));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("Password([redacted])"), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("ClientSecret([redacted])"), "{shown}");
        assert!(shown.contains("RawToken([redacted])"), "{shown}");
    }

    #[test]
    fn equality_compares_the_values() {
        let secret = ClientSecret::new("abc");
        assert_eq!(secret, ClientSecret::new("abc"));
        assert_eq!(secret.clone(), secret);
        assert_ne!(secret, ClientSecret::new("abd"));
        assert_ne!(secret, ClientSecret::new("ab"));
        assert_eq!(secret.expose(), "abc");
    }
}
