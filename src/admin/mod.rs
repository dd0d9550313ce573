//! Operator actions behind the `client`, `user`, `token` and `keys` commands, with their
//! input rules: one file per aggregate (`clients.rs`, `users.rs`, `tokens.rs`,
//! `keys.rs`), and here the error they share and the argument rules more than one uses.

mod clients;
mod keys;
mod tokens;
mod users;

pub use clients::*;
pub use keys::*;
pub use tokens::*;
pub use users::*;

use crate::policy::{normalize_display_name, normalize_resource_uris, normalize_scope};
use crate::store::{ClientRecord, Store, StoreError};
use crate::token::mint::MintError;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("unknown client {0:?}")]
    UnknownClient(String),
    #[error("unknown user {0:?}")]
    UnknownUser(String),
    #[error("username {0:?} is taken")]
    UsernameTaken(String),
    #[error("client {0:?} is disabled")]
    ClientDisabled(String),
    #[error("{0}")]
    Invalid(String),
    #[error("unknown token")]
    UnknownToken,
    #[error(transparent)]
    Mint(#[from] MintError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) async fn existing(store: &Store, client_id: &str) -> Result<ClientRecord, AdminError> {
    store
        .client_by_id(client_id)
        .await?
        .ok_or_else(|| AdminError::UnknownClient(client_id.to_owned()))
}

/// Checks scope syntax (RFC 6749 §3.3) and returns the distinct items space-joined.
pub(super) fn scope_arg(scope: &str) -> Result<String, AdminError> {
    normalize_scope(scope)
        .map_err(|bad| AdminError::Invalid(format!("scope {bad:?} is not a valid scope token")))
}

/// Audiences and resources: absolute URIs without a fragment (RFC 8707 §2), repeats
/// dropped.
pub(super) fn uris_arg(uris: &[String], what: &str) -> Result<Vec<String>, AdminError> {
    normalize_resource_uris(uris).map_err(|bad| {
        AdminError::Invalid(format!(
            "{what} {bad:?} is not an absolute URI without a fragment"
        ))
    })
}

/// A client's or user's `--name`, by the rule the consent page relies on.
pub(super) fn normalize_name(name: &str) -> Result<String, AdminError> {
    normalize_display_name(name).map_err(|why| AdminError::Invalid(format!("--name {why}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audiences_and_resources_follow_one_uri_rule() {
        for what in ["audience", "resource"] {
            assert!(uris_arg(&["https://api.example".to_owned()], what).is_ok());
            assert!(uris_arg(&["https://api.example#x".to_owned()], what).is_err());
            assert!(uris_arg(&["api".to_owned()], what).is_err());
        }
    }

    #[test]
    fn scope_is_normalized() {
        assert_eq!(scope_arg("  b a b ").unwrap(), "b a");
        assert!(scope_arg("a\\b").is_err());
    }

    #[test]
    fn audiences_must_be_absolute_uris() {
        assert!(uris_arg(&["https://api.example".to_owned()], "audience").is_ok());
        assert!(uris_arg(&["api".to_owned()], "audience").is_err());
        let twice = vec!["urn:a".to_owned(), "urn:a".to_owned()];
        assert_eq!(uris_arg(&twice, "audience").unwrap(), vec!["urn:a"]);
    }
}
