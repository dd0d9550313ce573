//! What ties a sign-in to one browser: a signed browser cookie, the pending
//! authorization request carried through the login and consent forms (signed, expiring,
//! bound to that browser) and the CSRF token of each form, bound to both.
//!
//! A form posted from another browser (login CSRF: an attacker signing the victim in to
//! the attacker's account), from another pending sign-in, or altered, is refused.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::key::{Purpose, SigninKey};

/// How long the login and consent forms of a pending sign-in stay usable, in seconds.
pub const PENDING_TTL_SECONDS: i64 = 900;

/// Users a browser remembers having proved their password from it, most recent first.
const MAX_PROVEN: usize = 4;

/// Separates the fields of signed values: outside the base64url alphabet of ids.
const SEPARATOR: char = '~';

/// A browser as its cookie names it: a random id, and the users who proved their
/// password from it (their failure budgets never lock them out of it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Browser {
    pub id: String,
    proven: Vec<String>,
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
        Some(Browser {
            id,
            proven: fields.filter(|u| !u.is_empty()).take(MAX_PROVEN).collect(),
        })
    }

    /// The cookie value naming this browser.
    pub fn to_cookie(&self, key: &SigninKey) -> String {
        let mut value = self.id.clone();
        for user in &self.proven {
            value.push(SEPARATOR);
            value.push_str(user);
        }
        key.sign(Purpose::Browser, &value)
    }

    /// Remembers that `user_id` proved their password from this browser. Ids that
    /// could not be read back are not kept.
    pub fn proved(&mut self, user_id: &str) {
        if !user_id.bytes().all(id_byte) || user_id.is_empty() {
            return;
        }
        self.proven.retain(|u| u != user_id);
        self.proven.insert(0, user_id.to_owned());
        self.proven.truncate(MAX_PROVEN);
    }

    pub fn has_proved(&self, user_id: &str) -> bool {
        self.proven.iter().any(|u| u == user_id)
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

    #[test]
    fn a_browser_cookie_reads_back() {
        let key = key();
        let mut browser = Browser::new();
        assert_eq!(
            Browser::from_cookie(&key, &browser.to_cookie(&key)),
            Some(browser.clone())
        );
        browser.proved("user-1");
        browser.proved("user_2");
        let read = Browser::from_cookie(&key, &browser.to_cookie(&key)).unwrap();
        assert!(read.has_proved("user-1") && read.has_proved("user_2"));
        assert!(!read.has_proved("user-3"));
    }

    #[test]
    fn a_browser_cookie_must_be_ours() {
        let browser = Browser::new();
        let other = SigninKey::new(&[8; 32]);
        assert_eq!(
            Browser::from_cookie(&key(), &browser.to_cookie(&other)),
            None
        );
        let forged = format!("{}~victim.AAAA", browser.id);
        assert_eq!(Browser::from_cookie(&key(), &forged), None);
    }

    #[test]
    fn a_browser_remembers_few_users_and_no_odd_ids() {
        let mut browser = Browser::new();
        for i in 0..10 {
            browser.proved(&format!("user{i}"));
        }
        assert!(browser.has_proved("user9") && !browser.has_proved("user0"));
        assert_eq!(browser.proven.len(), MAX_PROVEN);
        browser.proved("a~b");
        browser.proved("a.b");
        browser.proved("");
        assert!(!browser.has_proved("a~b") && !browser.has_proved("a.b"));
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
