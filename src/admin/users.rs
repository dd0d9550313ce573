//! Users: create, list, show, set passwords, disable, enable, delete, revoke consents.

use serde::Serialize;

use super::{AdminError, existing, normalize_name};
use crate::policy::{normalize_username, valid_password};
use crate::secret::Password;
use crate::store::{Store, UserRecord};
use crate::token::random_string;

/// A user as shown to operators: never a password or its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UserView {
    pub user_id: String,
    pub username: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether the user can sign in with a password.
    pub has_password: bool,
    pub disabled: bool,
    pub created_at: i64,
    /// The providers the user signs in through (`user show` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub links: Option<Vec<LinkView>>,
}

/// A provider a user signs in through, and the `sub` it knows the user by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LinkView {
    pub provider: String,
    pub subject: String,
    pub created_at: i64,
}

impl From<UserRecord> for UserView {
    fn from(u: UserRecord) -> Self {
        UserView {
            user_id: u.user_id,
            username: u.username,
            email: u.email,
            name: u.name,
            has_password: u.password_hash.is_some(),
            disabled: u.disabled,
            created_at: u.created_at,
            links: None,
        }
    }
}

/// What `user create` asks for. Without a password one is generated and shown once.
#[derive(Debug, Default)]
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub password: Option<Password>,
}

/// A user's id and name, with the password when it was generated: shown this once.
#[derive(Debug)]
pub struct UserPassword {
    pub user_id: String,
    pub username: String,
    pub generated: Option<Password>,
}

impl UserPassword {
    /// The JSON printed for the operator: the password only when it was generated.
    pub fn to_json(&self) -> serde_json::Value {
        let mut json = serde_json::json!({"user_id": self.user_id, "username": self.username});
        if let Some(password) = &self.generated {
            json["password"] = password.expose().into();
        }
        json
    }
}

/// Registers a user with a fresh id, created at `now`; only the password's argon2id hash
/// is stored.
pub async fn create_user(
    store: &Store,
    new: NewUser,
    now: i64,
) -> Result<UserPassword, AdminError> {
    let username = normalize_username(&new.username).ok_or_else(|| {
        AdminError::Invalid(format!(
            "--username must be 1 to {} characters of a-z, 0-9 and . _ @ + -",
            crate::policy::MAX_USERNAME_LEN
        ))
    })?;
    let email = new.email.as_deref().map(email_arg).transpose()?;
    let name = new.name.as_deref().map(normalize_name).transpose()?;
    let (password, generated) = password_or_generated(new.password)?;
    let user = UserRecord {
        user_id: random_string(16),
        username,
        email,
        name,
        password_hash: Some(crate::auth::hash_password(&password)),
        disabled: false,
        created_at: now,
        updated_at: now,
    };
    if !store.insert_user(&user).await? {
        return Err(AdminError::UsernameTaken(user.username));
    }
    Ok(UserPassword {
        user_id: user.user_id,
        username: user.username,
        generated,
    })
}

pub async fn list_users(store: &Store) -> Result<Vec<UserView>, AdminError> {
    Ok(store
        .list_users()
        .await?
        .into_iter()
        .map(UserView::from)
        .collect())
}

/// A user by id or by username, with the providers they sign in through.
pub async fn show_user(store: &Store, user: &str) -> Result<UserView, AdminError> {
    let user = existing_user(store, user).await?;
    let links = store.user_links(&user.user_id).await?;
    let links = links.into_iter().map(|link| LinkView {
        provider: link.provider_id,
        subject: link.subject,
        created_at: link.created_at,
    });
    Ok(UserView {
        links: Some(links.collect()),
        ..UserView::from(user)
    })
}

/// Replaces a user's password (a generated one, shown once, when none is given) and
/// signs the user out everywhere: whoever knew the old password is signed in nowhere.
pub async fn set_user_password(
    store: &Store,
    user: &str,
    password: Option<Password>,
    now: i64,
) -> Result<UserPassword, AdminError> {
    let found = existing_user(store, user).await?;
    let (password, generated) = password_or_generated(password)?;
    let hash = crate::auth::hash_password(&password);
    if !store
        .set_user_password_hash(&found.user_id, &hash, now)
        .await?
    {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    store.delete_user_sessions(&found.user_id).await?;
    Ok(UserPassword {
        user_id: found.user_id,
        username: found.username,
        generated,
    })
}

/// Disables a user: they can no longer sign in, their sessions end and every token
/// issued to them reads inactive, on every instance's next request.
pub async fn disable_user(store: &Store, user: &str, now: i64) -> Result<UserView, AdminError> {
    set_user_disabled(store, user, true, now).await
}

/// Undoes [`disable_user`]: the user may sign in again from every instance's next
/// request on. What the disable ended (sessions, tokens) stays ended.
pub async fn enable_user(store: &Store, user: &str, now: i64) -> Result<UserView, AdminError> {
    set_user_disabled(store, user, false, now).await
}

async fn set_user_disabled(
    store: &Store,
    user: &str,
    disabled: bool,
    now: i64,
) -> Result<UserView, AdminError> {
    let found = existing_user(store, user).await?;
    if !store
        .set_user_disabled(&found.user_id, disabled, now)
        .await?
    {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    show_user(store, &found.user_id).await
}

/// Deletes a user with their sessions and consents; every token issued to them reads
/// inactive. Returns the user's id.
pub async fn delete_user(store: &Store, user: &str, now: i64) -> Result<String, AdminError> {
    let found = existing_user(store, user).await?;
    if !store.delete_user(&found.user_id, now).await? {
        return Err(AdminError::UnknownUser(user.to_owned()));
    }
    Ok(found.user_id)
}

/// What `user revoke-consent` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ConsentRevoked {
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Remembered consents forgotten: the next sign-in asks again.
    pub consents_revoked: u64,
    /// Tokens of the grants the consent allowed, now revoked.
    pub tokens_revoked: u64,
}

/// Withdraws what a user allowed one client, or every client: the remembered consents
/// are forgotten, so the next sign-in asks again, and the grants given under them are
/// revoked.
pub async fn revoke_consent(
    store: &Store,
    user: &str,
    client_id: Option<&str>,
    now: i64,
) -> Result<ConsentRevoked, AdminError> {
    let found = existing_user(store, user).await?;
    if let Some(client_id) = client_id {
        existing(store, client_id).await?;
    }
    let user_id = found.user_id;
    let consents_revoked = store.forget_consents(Some(&user_id), client_id).await?;
    let tokens_revoked = match client_id {
        Some(client_id) => {
            store
                .revoke_user_client_tokens(&user_id, client_id, now)
                .await?
        }
        None => store.revoke_user_tokens(&user_id, now).await?,
    };
    Ok(ConsentRevoked {
        user_id,
        client_id: client_id.map(str::to_owned),
        consents_revoked,
        tokens_revoked,
    })
}

/// A user named by id, or else by username.
async fn existing_user(store: &Store, user: &str) -> Result<UserRecord, AdminError> {
    if let Some(found) = store.user_by_id(user).await? {
        return Ok(found);
    }
    if let Some(username) = normalize_username(user) {
        if let Some(found) = store.user_by_username(&username).await? {
            return Ok(found);
        }
    }
    Err(AdminError::UnknownUser(user.to_owned()))
}

/// The password given, checked, or a generated one (144 random bits), which is also
/// returned to be shown once.
fn password_or_generated(
    given: Option<Password>,
) -> Result<(Password, Option<Password>), AdminError> {
    match given {
        Some(password) if valid_password(password.expose()) => Ok((password, None)),
        Some(_) => Err(AdminError::Invalid(format!(
            "the password must have at least {} characters, at most {} bytes and no \
             control characters",
            crate::policy::MIN_PASSWORD_CHARS,
            crate::policy::MAX_PASSWORD_BYTES
        ))),
        None => {
            let generated = Password::new(random_string(18));
            Ok((generated.clone(), Some(generated)))
        }
    }
}

/// An email address as an operator gives it: trimmed, one `@` between two non-empty
/// parts, no spaces or control characters, at most 254 bytes (RFC 5321 §4.5.3.1.3).
fn email_arg(email: &str) -> Result<String, AdminError> {
    let email = email.trim();
    let well_formed = email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if well_formed {
        Ok(email.to_owned())
    } else {
        Err(AdminError::Invalid(
            "--email must be an address such as someone@example.com".to_owned(),
        ))
    }
}
