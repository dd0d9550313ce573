//! Signing keys: list, rotate, promote, remove the generated keys.

use serde::Serialize;

use super::AdminError;
use crate::config::Config;
use crate::store::{Store, StoredKey};
use crate::token::jwt::generate_ed25519;

/// What a generated key does at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyState {
    /// Signs new tokens (and verifies).
    Signing,
    /// Published and verifying, signing from its activation time (`keys rotate`).
    Next,
    /// Replaced by a newer key; verifies the tokens it signed until removed.
    Retired,
}

/// A generated signing key as shown to operators: never its private part.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyView {
    pub kid: String,
    pub alg: String,
    pub created_at: i64,
    /// When it signs (or signed) from.
    pub activates_at: i64,
    pub state: KeyState,
    /// Whether new tokens are signed with it now (`state` is `signing`).
    pub signing: bool,
}

/// The state of each stored key at `now`, in the order given (oldest activation first):
/// the latest key activated by `now` signs, later ones are next, earlier ones retired.
/// With `jwt.keys` configured, no generated key signs.
fn key_states(stored: &[StoredKey], now: i64, generated_sign: bool) -> Vec<KeyState> {
    let signing = stored
        .iter()
        .rposition(|k| k.activates_at <= now)
        .or((!stored.is_empty()).then_some(0));
    stored
        .iter()
        .enumerate()
        .map(|(i, key)| match signing {
            _ if key.activates_at > now && signing != Some(i) => KeyState::Next,
            Some(s) if s == i && generated_sign => KeyState::Signing,
            _ => KeyState::Retired,
        })
        .collect()
}

fn key_views(stored: &[StoredKey], config: &Config, now: i64) -> Vec<KeyView> {
    let states = key_states(stored, now, config.jwt.keys.is_empty());
    stored
        .iter()
        .zip(states)
        .rev()
        .map(|(key, state)| KeyView {
            kid: key.kid.clone(),
            alg: key.alg.clone(),
            created_at: key.created_at,
            activates_at: key.activates_at,
            state,
            signing: state == KeyState::Signing,
        })
        .collect()
}

/// Generated keys at `now`, latest activation (a staged key, then the signing one) first.
pub async fn list_keys(
    store: &Store,
    config: &Config,
    now: i64,
) -> Result<Vec<KeyView>, AdminError> {
    Ok(key_views(&store.signing_keys().await?, config, now))
}

/// Generates a new Ed25519 key, sealed with the key-encryption key. It is published in
/// `/jwks` at once and signs after `jwt.rotation_delay_seconds` (verifiers caching the
/// key set learn of it first), or when promoted; older keys keep verifying the tokens
/// they signed until removed. One key is staged at a time.
pub async fn rotate_key(store: &Store, config: &Config, now: i64) -> Result<KeyView, AdminError> {
    refuse_when_keys_configured(config)?;
    let kek = crate::token::kek::resolve(config)
        .map_err(|e| AdminError::Invalid(e.to_string()))?
        .ok_or_else(|| AdminError::Invalid("no key-encryption key".to_owned()))?;
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, true);
    if let Some((staged, _)) = stored
        .iter()
        .zip(&states)
        .find(|(_, s)| **s == KeyState::Next)
    {
        return Err(AdminError::Invalid(format!(
            "key {:?} is already waiting to sign (from {}); run `keys promote {}` or wait",
            staged.kid, staged.activates_at, staged.kid
        )));
    }
    // A key sealed under another key-encryption key would split the store in two.
    for key in &stored {
        kek.open(key)
            .map_err(|e| AdminError::Invalid(e.to_string()))?;
    }
    let mut key = generate_ed25519();
    key.created_at = next_key_time(&stored, now);
    // The first key has nothing to be published ahead of.
    let delay = if stored.is_empty() {
        0
    } else {
        i64::try_from(config.jwt.rotation_delay_seconds).unwrap_or(i64::MAX)
    };
    key.activates_at = now.saturating_add(delay);
    store.insert_signing_key(&kek.seal(&key)).await?;
    let views = list_keys(store, config, now).await?;
    views
        .into_iter()
        .find(|v| v.kid == key.kid)
        .ok_or_else(|| AdminError::Invalid(format!("key {:?} was not stored", key.kid)))
}

/// Makes a staged key sign from `now` on: every server signs with it from its next
/// request on (the change reaches them as the rotation did).
pub async fn promote_key(
    store: &Store,
    config: &Config,
    kid: &str,
    now: i64,
) -> Result<KeyView, AdminError> {
    refuse_when_keys_configured(config)?;
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, true);
    match stored.iter().zip(&states).find(|(k, _)| k.kid == kid) {
        None => return Err(AdminError::Invalid(format!("unknown key {kid:?}"))),
        Some((_, KeyState::Next)) => {}
        Some((_, state)) => {
            let what = if *state == KeyState::Signing {
                "already signs"
            } else {
                "is retired; run `keys rotate` for a new key"
            };
            return Err(AdminError::Invalid(format!("key {kid:?} {what}")));
        }
    }
    // Newer than the signing key, it wins even on an equal activation time.
    if !store.activate_signing_key(kid, now).await? {
        return Err(AdminError::Invalid(format!("unknown key {kid:?}")));
    }
    let views = list_keys(store, config, now).await?;
    views
        .into_iter()
        .find(|v| v.kid == kid)
        .ok_or_else(|| AdminError::Invalid(format!("unknown key {kid:?}")))
}

/// Removes a generated key: tokens it signed read inactive from the servers' next
/// request on. The key that signs at `now` stays until another key replaces it; a
/// staged key may be removed, which cancels the rotation.
pub async fn remove_key(
    store: &Store,
    config: &Config,
    kid: &str,
    now: i64,
) -> Result<(), AdminError> {
    let stored = store.signing_keys().await?;
    let states = key_states(&stored, now, config.jwt.keys.is_empty());
    match stored.iter().zip(&states).find(|(k, _)| k.kid == kid) {
        None => return Err(AdminError::Invalid(format!("unknown key {kid:?}"))),
        Some((_, KeyState::Signing)) => {
            return Err(AdminError::Invalid(format!(
                "key {kid:?} signs new tokens; run `keys rotate` first"
            )));
        }
        Some(_) => {}
    }
    store.delete_signing_key(kid).await?;
    Ok(())
}

fn refuse_when_keys_configured(config: &Config) -> Result<(), AdminError> {
    if config.jwt.keys.is_empty() {
        Ok(())
    } else {
        Err(AdminError::Invalid(
            "jwt.keys is configured, so generated keys are not used; rotate the configured keys"
                .to_owned(),
        ))
    }
}

/// Among keys activated at the same time the newest signs (ordered by creation time): a
/// new key is stamped after every existing one even when created within the same second.
fn next_key_time(stored: &[StoredKey], now: i64) -> i64 {
    stored
        .iter()
        .map(|k| k.created_at.saturating_add(1))
        .fold(now, i64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_key_is_newer_than_every_stored_key() {
        let mut key = generate_ed25519();
        key.created_at = 100;
        assert_eq!(next_key_time(std::slice::from_ref(&key), 100), 101);
        assert_eq!(next_key_time(std::slice::from_ref(&key), 500), 500);
        assert_eq!(next_key_time(&[], 7), 7);
    }

    fn key_at(kid: &str, activates_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.to_owned(),
            activates_at,
            ..generate_ed25519()
        }
    }

    #[test]
    fn key_states_follow_activation_times() {
        use KeyState::*;
        let keys = [key_at("a", 100), key_at("b", 200), key_at("c", 500)];
        assert_eq!(key_states(&keys, 300, true), [Retired, Signing, Next]);
        assert_eq!(key_states(&keys, 500, true), [Retired, Retired, Signing]);
        assert_eq!(key_states(&keys, 150, true), [Signing, Next, Next]);
        // A clock set back before every activation: the earliest still signs.
        assert_eq!(key_states(&keys, 50, true), [Signing, Next, Next]);
        // With jwt.keys configured, no generated key signs.
        assert_eq!(key_states(&keys, 300, false), [Retired, Retired, Next]);
        assert!(key_states(&[], 0, true).is_empty());
    }
}
