//! Wrappers for values that must never reach a log line, an error body or debug output.

use std::fmt;

use subtle::ConstantTimeEq;

macro_rules! redacted_string {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: impl Into<String>) -> Self {
                Self(value.into())
            }

            /// The secret value itself; call sites are the places it may leave this type.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// Compares in time independent of where the values first differ.
            pub fn ct_eq(&self, other: &str) -> bool {
                self.0.as_bytes().ct_eq(other.as_bytes()).into()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

redacted_string!(
    /// A client secret as presented by a caller or shown once at creation.
    ClientSecret
);

redacted_string!(
    /// A token as presented for introspection or revocation, or as just minted.
    RawToken
);

redacted_string!(
    /// An argon2id PHC string of a client secret, as stored.
    SecretHash
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = ClientSecret::new("s3cr3t-value");
        let token = RawToken::new("eyJhbGciOi.payload.sig");
        let shown = format!("{secret:?} {token:?} {:?}", Some(&secret));
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains("eyJ"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn constant_time_comparison_matches_equality() {
        let secret = ClientSecret::new("abc");
        assert!(secret.ct_eq("abc"));
        assert!(!secret.ct_eq("abd"));
        assert!(!secret.ct_eq("ab"));
    }
}
