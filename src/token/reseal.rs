//! `keys reseal`: every sealed key in the store (the generated signing keys and the
//! sign-in key) opened with the configured key-encryption key and sealed under a new
//! one, in one transaction; and the recovery from a lost key-encryption key, which
//! discards what can no longer be opened and generates a signing key in its place.

use serde::Serialize;

use super::jwt::generate_ed25519;
use super::kek::{self, KekError, KeyEncryptionKey};
use crate::config::Config;
use crate::store::{Reseal, SealedSecret, Store, StoreError, StoredKey};

/// Why a reseal did not happen. Nothing was written then.
#[derive(Debug, thiserror::Error)]
pub enum ResealError {
    #[error(
        "{0}; if that key-encryption key is lost, `keys reseal --discard-unreadable` \
         discards what it sealed"
    )]
    Unreadable(KekError),
    #[error("the stored keys changed while they were resealed; run `keys reseal` again")]
    Raced,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What `keys reseal` did, by kid and name; never key material.
#[derive(Debug, Serialize)]
pub struct Resealed {
    /// The id of the key-encryption key everything is sealed under now.
    pub key_encryption_key: String,
    pub resealed: Vec<String>,
    /// Signing keys that could not be opened and were deleted: the tokens they signed
    /// read inactive.
    pub discarded: Vec<String>,
    /// The signing key generated in place of discarded ones; it signs at once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generated: Option<String>,
    /// Sealed secrets (the sign-in key) resealed or discarded; a discarded sign-in key
    /// is generated anew when a server next starts, which ends every sign-in session.
    pub secrets_resealed: Vec<String>,
    pub secrets_discarded: Vec<String>,
    /// What the operator does next, in words.
    pub next: String,
}

/// The stored keys and secrets sealed under `new`: each opened with `current` (a key
/// stored in plain, or already sealed under `new`, needs none). One that cannot be
/// opened fails the whole plan unless `discard`; then it is dropped, and a signing key is
/// generated at `now` to sign in place of dropped ones. `None` for `current` is a lost
/// key: only `discard` gets past it.
pub fn plan(
    keys: &[StoredKey],
    secrets: &[SealedSecret],
    current: Option<&KeyEncryptionKey>,
    new: &KeyEncryptionKey,
    discard: bool,
    now: i64,
) -> Result<Reseal, KekError> {
    let label = new.label();
    let mut reseal = Reseal {
        label: label.clone(),
        ..Reseal::default()
    };
    let open_key = |key: &StoredKey| match (&key.encryption, current) {
        (Some(l), _) if *l == label => new.open(key),
        (None, _) => Ok(key.private_key.clone()),
        (Some(_), Some(current)) => current.open(key),
        (Some(_), None) => Err(KekError::Missing),
    };
    for key in keys {
        match open_key(key) {
            Ok(plain) => reseal.resealed.push(new.seal(&StoredKey {
                private_key: plain,
                encryption: None,
                ..key.clone()
            })),
            Err(_) if discard => reseal.discarded.push(key.kid.clone()),
            Err(err) => return Err(err),
        }
    }
    for secret in secrets {
        let opened = match current {
            _ if secret.encryption == label => {
                new.open_secret(&secret.name, &secret.sealed, &secret.encryption)
            }
            Some(current) => current.open_secret(&secret.name, &secret.sealed, &secret.encryption),
            None => Err(KekError::Missing),
        };
        match opened {
            Ok(plain) => {
                let (sealed, encryption) = new.seal_secret(&secret.name, &plain);
                reseal.secrets_resealed.push(SealedSecret {
                    sealed,
                    encryption,
                    ..secret.clone()
                });
            }
            Err(_) if discard => reseal.secrets_discarded.push(secret.name.clone()),
            Err(err) => return Err(err),
        }
    }
    if !reseal.discarded.is_empty() {
        let mut key = generate_ed25519();
        // Stamped after every kept key, so that it is the one that signs from `now`.
        key.created_at = keys
            .iter()
            .map(|k| k.created_at.saturating_add(1))
            .fold(now, i64::max);
        key.activates_at = now;
        reseal.generated.push(new.seal(&key));
    }
    Ok(reseal)
}

/// Reseals every stored key under `new` (`keys reseal --new-key-env NAME` reads it from
/// the variable NAME). With `discard`, keys the configured key-encryption key cannot
/// open, or all sealed keys when it is gone, are discarded (see [`plan`]).
pub async fn reseal(
    store: &Store,
    config: &Config,
    new: &KeyEncryptionKey,
    discard: bool,
    now: i64,
) -> Result<Resealed, ResealError> {
    let current = match kek::resolve_always(config) {
        Ok(current) => Some(current),
        Err(_) if discard => None,
        Err(err) => return Err(ResealError::Unreadable(err)),
    };
    let keys = store.signing_keys().await?;
    let secrets = store.sealed_secrets().await?;
    let plan = plan(&keys, &secrets, current.as_ref(), new, discard, now)
        .map_err(ResealError::Unreadable)?;
    if !store.reseal_keys(&plan).await? {
        return Err(ResealError::Raced);
    }
    let kids = |keys: &[StoredKey]| -> Vec<String> { keys.iter().map(|k| k.kid.clone()).collect() };
    let lost = !plan.discarded.is_empty() || !plan.secrets_discarded.is_empty();
    let setting = match new.origin() {
        kek::Origin::Env(name) => format!("jwt.key_encryption_key_env = \"{name}\""),
        origin => format!("the key-encryption key in {origin}"),
    };
    let mut next = format!(
        "configure {setting} on every instance and restart them; until then an instance \
         that restarts with the old key refuses to start"
    );
    if lost {
        next.push_str(
            ". Every token signed by a discarded key now reads inactive, and when the \
             sign-in key was discarded every sign-in session ends",
        );
    }
    Ok(Resealed {
        key_encryption_key: new.id().to_owned(),
        resealed: kids(&plan.resealed),
        discarded: plan.discarded,
        generated: plan.generated.first().map(|k| k.kid.clone()),
        secrets_resealed: plan
            .secrets_resealed
            .iter()
            .map(|s| s.name.clone())
            .collect(),
        secrets_discarded: plan.secrets_discarded,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(kek: &KeyEncryptionKey) -> SealedSecret {
        let (sealed, encryption) = kek.seal_secret("signin", &[5u8; 32]);
        SealedSecret {
            name: "signin".to_owned(),
            sealed,
            encryption,
            created_at: 1,
        }
    }

    #[test]
    fn every_key_is_sealed_under_the_new_key_and_opens_to_the_same_bytes() {
        let (current, new) = (KeyEncryptionKey::ephemeral(), KeyEncryptionKey::ephemeral());
        let plain = generate_ed25519();
        let mut older = generate_ed25519();
        older.kid = "older".to_owned();
        let keys = [current.seal(&plain), older.clone()];
        let plan = plan(&keys, &[secret(&current)], Some(&current), &new, false, 9).unwrap();
        assert_eq!(plan.resealed.len(), 2);
        assert!(plan.discarded.is_empty() && plan.generated.is_empty());
        assert_eq!(new.open(&plan.resealed[0]).unwrap(), plain.private_key);
        assert_eq!(
            new.open(&plan.resealed[1]).unwrap(),
            older.private_key,
            "a plain key too"
        );
        let signin = &plan.secrets_resealed[0];
        assert_eq!(
            new.open_secret("signin", &signin.sealed, &signin.encryption)
                .unwrap(),
            [5u8; 32]
        );
        assert!(current.open(&plan.resealed[0]).is_err());
    }

    #[test]
    fn an_unreadable_key_fails_the_plan_unless_discarded() {
        let (lost, new) = (KeyEncryptionKey::ephemeral(), KeyEncryptionKey::ephemeral());
        let other = KeyEncryptionKey::ephemeral();
        let mut signing = generate_ed25519();
        signing.created_at = 50;
        let keys = [lost.seal(&signing)];
        let secrets = [secret(&lost)];
        for current in [None, Some(&other)] {
            assert!(plan(&keys, &secrets, current, &new, false, 9).is_err());
            let plan = plan(&keys, &secrets, current, &new, true, 9).unwrap();
            assert_eq!(plan.discarded, [signing.kid.clone()]);
            assert_eq!(plan.secrets_discarded, ["signin"]);
            let generated = &plan.generated[0];
            assert_eq!(generated.activates_at, 9, "signs at once");
            assert!(generated.created_at > 50, "after every kept key");
            assert!(new.open(generated).is_ok());
        }
    }
}
