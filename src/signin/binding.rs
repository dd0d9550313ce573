//! What ties a sign-in to one browser: a signed browser cookie, the pending
//! authorization request carried through the login and consent forms (signed, expiring,
//! bound to that browser) and the CSRF token of each form, bound to both.
//!
//! A form posted from another browser (login CSRF: an attacker signing the victim in to
//! the attacker's account), from another pending sign-in, or altered, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::key::{Purpose, SigninKey};
use crate::store::UserRecord;

/// How long the login and consent forms of a pending sign-in stay usable, in seconds.
pub const PENDING_TTL_SECONDS: i64 = 900;

/// Users a browser remembers having proved their password from it, most recent first.
const MAX_PROVEN: usize = 4;

/// Separates the fields of signed values: outside the base64url alphabet of ids.
pub const SEPARATOR: char = '~';

/// A browser as its cookie names it: a random id, and the users who proved their
/// password from it, each with the stamp of the credentials they proved (their
/// failure budgets do not lock them out of it while the stamp holds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browser {
    pub id: String,
    proven: Vec<Proven>,
}

/// A user proven from a browser: their id and the stamp of their credentials then.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Proven {
    user_id: String,
    stamp: String,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser seen for the first time.
    pub fn new() -> Self {
        Browser {
            id: crate::token::random_string(16),
            proven: Vec::new(),
        }
    }

    /// The browser a cookie names, when the cookie is ours and unaltered.
    pub fn from_cookie(key: &SigninKey, cookie: &str) -> Option<Self> {
        let value = key.verify(Purpose::Browser, cookie)?;
        let mut fields = value.split(SEPARATOR).map(str::to_owned);
        let id = fields.next().filter(|id| !id.is_empty())?;
        let fields: Vec<String> = fields.collect();
        let proven = fields
            .chunks_exact(2)
            .filter(|pair| !pair[0].is_empty() && !pair[1].is_empty())
            .map(|pair| Proven {
                user_id: pair[0].clone(),
                stamp: pair[1].clone(),
            })
            .take(MAX_PROVEN)
            .collect();
        Some(Browser { id, proven })
    }

    /// The cookie value naming this browser.
    pub fn to_cookie(&self, key: &SigninKey) -> String {
        let mut value = self.id.clone();
        for proven in &self.proven {
            for field in [&proven.user_id, &proven.stamp] {
                value.push(SEPARATOR);
                value.push_str(field);
            }
        }
        key.sign(Purpose::Browser, &value)
    }

    /// Remembers that `user` proved their password from this browser, with the stamp of
    /// their credentials now. Ids that could not be read back are not kept.
    pub fn proved(&mut self, key: &SigninKey, user: &UserRecord) {
        let user_id = &user.user_id;
        if !user_id.bytes().all(id_byte) || user_id.is_empty() {
            return;
        }
        self.proven.retain(|p| &p.user_id != user_id);
        self.proven.insert(
            0,
            Proven {
                user_id: user_id.clone(),
                stamp: key.token(Purpose::Proven, &stamp_parts(user).each()),
            },
        );
        self.proven.truncate(MAX_PROVEN);
    }

    /// Whether `user`, as stored now, proved their password from this browser: not
    /// since their password changed or they were disabled (or deleted: their id is
    /// never reused), and they may sign in with a password now.
    pub fn has_proved(&self, key: &SigninKey, user: &UserRecord) -> bool {
        if user.disabled || user.password_hash.is_none() {
            return false;
        }
        let parts = stamp_parts(user);
        self.proven.iter().any(|p| {
            p.user_id == user.user_id && key.verify_token(Purpose::Proven, &parts.each(), &p.stamp)
        })
    }
}

/// What a user's credential stamp signs: their id, their password hash and when it or
/// their being disabled last changed. Any such change makes an older stamp fail.
struct StampParts<'a> {
    user_id: &'a str,
    hash: &'a str,
    updated_at: [u8; 8],
}

impl StampParts<'_> {
    fn each(&self) -> [&[u8]; 3] {
        [
            self.user_id.as_bytes(),
            self.hash.as_bytes(),
            &self.updated_at,
        ]
    }
}

fn stamp_parts(user: &UserRecord) -> StampParts<'_> {
    StampParts {
        user_id: &user.user_id,
        hash: user.password_hash.as_ref().map_or("", |h| h.expose()),
        updated_at: user.updated_at.to_be_bytes(),
    }
}

/// Characters of ids kept in signed values: none of them is a separator.
fn id_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// A pending sign-in as its form carries it: the signed request field and the form's
/// CSRF token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingForm {
    pub request: String,
    pub csrf_token: String,
}

/// Why a form of a pending sign-in was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingError {
    /// The browser sent no cookie of ours: cookies are blocked, or the form was posted
    /// from elsewhere.
    NoCookie,
    /// Altered, from another browser or another pending sign-in, or a wrong CSRF token.
    Forged,
    /// Older than [`PENDING_TTL_SECONDS`].
    Expired,
}

/// Binds the authorization request `query` to `browser` until [`PENDING_TTL_SECONDS`]
/// from `now`: the hidden fields of the login and consent forms.
pub fn pending_form(key: &SigninKey, browser: &Browser, query: &str, now: i64) -> PendingForm {
    let expires_at = now.saturating_add(PENDING_TTL_SECONDS);
    let payload = format!(
        "{expires_at}{SEPARATOR}{}{SEPARATOR}{}",
        browser.id,
        URL_SAFE_NO_PAD.encode(query)
    );
    PendingForm {
        csrf_token: csrf_token(key, &browser.id, &payload),
        request: key.sign(Purpose::Request, &payload),
    }
}

fn csrf_token(key: &SigninKey, browser_id: &str, payload: &str) -> String {
    key.token(Purpose::Csrf, &[browser_id.as_bytes(), payload.as_bytes()])
}

/// The authorization request a posted form carries, when the form is ours, from this
/// browser, with the CSRF token of that same pending sign-in, and not expired.
pub fn open_pending(
    key: &SigninKey,
    browser: Option<&Browser>,
    form: &PendingForm,
    now: i64,
) -> Result<String, PendingError> {
    let browser = browser.ok_or(PendingError::NoCookie)?;
    let payload = key
        .verify(Purpose::Request, &form.request)
        .ok_or(PendingError::Forged)?;
    let mut fields = payload.splitn(3, SEPARATOR);
    let (Some(expires_at), Some(bound_to), Some(query)) =
        (fields.next(), fields.next(), fields.next())
    else {
        return Err(PendingError::Forged);
    };
    let csrf_ok = key.verify_token(
        Purpose::Csrf,
        &[browser.id.as_bytes(), payload.as_bytes()],
        &form.csrf_token,
    );
    if bound_to != browser.id || !csrf_ok {
        return Err(PendingError::Forged);
    }
    let expires_at: i64 = expires_at.parse().map_err(|_| PendingError::Forged)?;
    if now >= expires_at {
        return Err(PendingError::Expired);
    }
    let query = URL_SAFE_NO_PAD
        .decode(query)
        .map_err(|_| PendingError::Forged)?;
    String::from_utf8(query).map_err(|_| PendingError::Forged)
}

/// The CSRF token of the sign-out form, bound to the session it ends.
pub fn sign_out_token(key: &SigninKey, session_id: &str) -> String {
    key.token(Purpose::SignOut, &[session_id.as_bytes()])
}

pub fn verify_sign_out_token(key: &SigninKey, session_id: &str, token: &str) -> bool {
    key.verify_token(Purpose::SignOut, &[session_id.as_bytes()], token)
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUERY: &str = "response_type=code&client_id=app&state=a%7Eb";

    fn key() -> SigninKey {
        SigninKey::new(&[7; 32])
    }

    fn user(id: &str) -> UserRecord {
        UserRecord {
            user_id: id.to_owned(),
            username: id.to_lowercase(),
            email: None,
            name: None,
            password_hash: Some(crate::secret::SecretHash::new(format!(
                "$argon2id$hash-of-{id}"
            ))),
            disabled: false,
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn a_browser_cookie_reads_back() {
        let key = key();
        let mut browser = Browser::new();
        assert_eq!(
            Browser::from_cookie(&key, &browser.to_cookie(&key)),
            Some(browser.clone())
        );
        browser.proved(&key, &user("user-1"));
        browser.proved(&key, &user("user_2"));
        let read = Browser::from_cookie(&key, &browser.to_cookie(&key)).unwrap();
        assert!(read.has_proved(&key, &user("user-1")) && read.has_proved(&key, &user("user_2")));
        assert!(!read.has_proved(&key, &user("user-3")));
    }

    #[test]
    fn a_proven_user_is_forgotten_when_their_credentials_change() {
        let key = key();
        let mut browser = Browser::new();
        let alice = user("alice");
        browser.proved(&key, &alice);
        assert!(browser.has_proved(&key, &alice));
        let new_password = UserRecord {
            password_hash: Some(crate::secret::SecretHash::new("$argon2id$other".to_owned())),
            ..alice.clone()
        };
        assert!(!browser.has_proved(&key, &new_password));
        let disabled = UserRecord {
            disabled: true,
            ..alice.clone()
        };
        assert!(!browser.has_proved(&key, &disabled));
        let re_enabled = UserRecord {
            updated_at: 2,
            ..alice.clone()
        };
        assert!(!browser.has_proved(&key, &re_enabled));
        let no_password = UserRecord {
            password_hash: None,
            ..alice.clone()
        };
        assert!(!browser.has_proved(&key, &no_password));
        // Another key (another deployment) proves nothing.
        assert!(!browser.has_proved(&SigninKey::new(&[9; 32]), &alice));
    }

    #[test]
    fn a_browser_cookie_must_be_ours() {
        let browser = Browser::new();
        let other = SigninKey::new(&[8; 32]);
        assert_eq!(
            Browser::from_cookie(&key(), &browser.to_cookie(&other)),
            None
        );
        let forged = format!("{}~victim~stamp.AAAA", browser.id);
        assert_eq!(Browser::from_cookie(&key(), &forged), None);
    }

    #[test]
    fn a_browser_remembers_few_users_and_no_odd_ids() {
        let key = key();
        let mut browser = Browser::new();
        for i in 0..10 {
            browser.proved(&key, &user(&format!("user{i}")));
        }
        assert!(browser.has_proved(&key, &user("user9")));
        assert!(!browser.has_proved(&key, &user("user0")));
        assert_eq!(browser.proven.len(), MAX_PROVEN);
        let read = Browser::from_cookie(&key, &browser.to_cookie(&key)).unwrap();
        assert_eq!(read, browser);
        for odd in ["a~b", "a.b", ""] {
            browser.proved(&key, &user(odd));
            assert!(!browser.has_proved(&key, &user(odd)), "{odd}");
        }
    }

    #[test]
    fn a_pending_form_opens_in_its_browser() {
        let (key, browser) = (key(), Browser::new());
        let form = pending_form(&key, &browser, QUERY, 1_000);
        assert_eq!(
            open_pending(&key, Some(&browser), &form, 1_000),
            Ok(QUERY.to_owned())
        );
        assert_eq!(
            open_pending(&key, Some(&browser), &form, 1_000 + PENDING_TTL_SECONDS - 1),
            Ok(QUERY.to_owned())
        );
    }

    #[test]
    fn a_pending_form_expires() {
        let (key, browser) = (key(), Browser::new());
        let form = pending_form(&key, &browser, QUERY, 1_000);
        assert_eq!(
            open_pending(&key, Some(&browser), &form, 1_000 + PENDING_TTL_SECONDS),
            Err(PendingError::Expired)
        );
    }

    #[test]
    fn a_form_from_another_browser_is_refused() {
        let key = key();
        let attacker = Browser::new();
        let form = pending_form(&key, &attacker, QUERY, 1_000);
        let victim = Browser::new();
        assert_eq!(
            open_pending(&key, Some(&victim), &form, 1_000),
            Err(PendingError::Forged)
        );
        assert_eq!(
            open_pending(&key, None, &form, 1_000),
            Err(PendingError::NoCookie)
        );
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_pending_sign_in() {
        let (key, browser) = (key(), Browser::new());
        let first = pending_form(&key, &browser, QUERY, 1_000);
        let second = pending_form(&key, &browser, "client_id=other", 1_000);
        let mixed = PendingForm {
            request: first.request.clone(),
            csrf_token: second.csrf_token.clone(),
        };
        assert_eq!(
            open_pending(&key, Some(&browser), &mixed, 1_000),
            Err(PendingError::Forged)
        );
        let missing = PendingForm {
            csrf_token: String::new(),
            ..first.clone()
        };
        assert_eq!(
            open_pending(&key, Some(&browser), &missing, 1_000),
            Err(PendingError::Forged)
        );
    }

    #[test]
    fn an_altered_request_is_refused() {
        let (key, browser) = (key(), Browser::new());
        let form = pending_form(&key, &browser, QUERY, 1_000);
        let (payload, tag) = form.request.rsplit_once('.').unwrap();
        let later = payload.replacen("1900", "9900", 1);
        let altered = PendingForm {
            request: format!("{later}.{tag}"),
            ..form.clone()
        };
        assert_eq!(
            open_pending(&key, Some(&browser), &altered, 1_000),
            Err(PendingError::Forged)
        );
        for junk in ["", "a.b", "~~.x"] {
            let junk = PendingForm {
                request: junk.to_owned(),
                ..form.clone()
            };
            assert_eq!(
                open_pending(&key, Some(&browser), &junk, 1_000),
                Err(PendingError::Forged)
            );
        }
    }

    #[test]
    fn sign_out_tokens_are_bound_to_the_session() {
        let key = key();
        let token = sign_out_token(&key, "session-a");
        assert!(verify_sign_out_token(&key, "session-a", &token));
        assert!(!verify_sign_out_token(&key, "session-b", &token));
        assert!(!verify_sign_out_token(&key, "session-a", ""));
    }
}
