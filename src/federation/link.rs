//! The local user a provider's user is: the one linked to (provider, `sub`), or, on
//! first use, a new user (without a password) linked to it. The same for a sign-in
//! through the provider and for an identity assertion (ID-JAG) it issued.

use super::identity::{self, Identity};
use crate::store::{LinkRecord, NewLink, Store, StoreError, UserRecord};
use crate::token::random_string;

/// Usernames tried for a new user before giving up (`alice`, `alice-2`, …).
const USERNAME_TRIES: u32 = 20;

/// The user linked to the identity at the provider `provider_id`, created on first use;
/// `None` when no free username was found. A taken username gets a suffix: an existing
/// account is never linked to.
pub async fn linked_user(
    store: &Store,
    provider_id: &str,
    identity: &Identity,
    now: i64,
) -> Result<Option<UserRecord>, StoreError> {
    if let Some(user) = store.linked_user(provider_id, &identity.subject).await? {
        return Ok(Some(user));
    }
    let base = identity::username_base(identity);
    let user_id = random_string(16);
    let link = LinkRecord {
        provider_id: provider_id.to_owned(),
        subject: identity.subject.clone(),
        user_id: user_id.clone(),
        created_at: now,
    };
    for attempt in 0..USERNAME_TRIES {
        let user = UserRecord {
            user_id: user_id.clone(),
            username: identity::username_candidate(&base, attempt),
            email: identity.email.clone(),
            name: identity.name.clone(),
            password_hash: None,
            disabled: false,
            created_at: now,
            updated_at: now,
        };
        match store.insert_linked_user(&user, &link).await? {
            NewLink::Created => return Ok(Some(user)),
            NewLink::UsernameTaken => continue,
            NewLink::AlreadyLinked => {
                return store.linked_user(provider_id, &identity.subject).await;
            }
        }
    }
    Ok(None)
}
