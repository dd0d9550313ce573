//! Who a provider says signed in, and the rules that turn that into a local user: which
//! emails are admitted, and which username a new user gets.

use crate::policy::{MAX_USERNAME_LEN, normalize_display_name, normalize_username};

/// The user as a provider's verified ID token names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// `sub`: stable and unique at the provider.
    pub subject: String,
    pub email: Option<String>,
    /// `email_verified`; absent counts as not verified.
    pub email_verified: bool,
    pub preferred_username: Option<String>,
    pub name: Option<String>,
}

/// Longest `sub` taken (OIDC Core §2: at most 255 ASCII characters).
const MAX_SUBJECT_LEN: usize = 255;
/// Longest email kept (RFC 5321's path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Longest `preferred_username` kept.
const MAX_NAME_LEN: usize = 200;

/// The identity as it may be stored: `None` when its `sub` is empty, too long or holds
/// control characters (it could not name a link); an email or name that is too long or
/// holds control characters (for a name, also format characters: the rule of every
/// display name) is dropped rather than stored.
pub fn storable(mut identity: Identity) -> Option<Identity> {
    let clean =
        |value: &str, max: usize| value.len() <= max && !value.chars().any(char::is_control);
    if identity.subject.is_empty() || !clean(&identity.subject, MAX_SUBJECT_LEN) {
        return None;
    }
    identity.email = identity
        .email
        .filter(|e| clean(e, MAX_EMAIL_LEN) && !e.chars().any(char::is_whitespace));
    identity.name = identity.name.and_then(|n| normalize_display_name(&n).ok());
    identity.preferred_username = identity
        .preferred_username
        .filter(|u| clean(u, MAX_NAME_LEN));
    Some(identity)
}

/// Whether `allowed_email_domains` admits the identity: any identity when the list is
/// empty; otherwise only a verified email whose domain is one of the list (exactly: a
/// subdomain is another domain).
pub fn email_admitted(identity: &Identity, allowed_domains: &[String]) -> bool {
    if allowed_domains.is_empty() {
        return true;
    }
    let Some(email) = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified)
    else {
        return false;
    };
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let domain = domain.to_ascii_lowercase();
    !local.is_empty() && allowed_domains.contains(&domain)
}

/// The username a new user would like: `preferred_username`, else a verified email, as
/// [`normalize_username`] makes them, else those reduced to the characters a username may
/// hold, else `user`. Room is left for a suffix.
pub fn username_base(identity: &Identity) -> String {
    let email = identity
        .email
        .as_deref()
        .filter(|_| identity.email_verified);
    let wanted = [identity.preferred_username.as_deref(), email];
    let room = MAX_USERNAME_LEN - SUFFIX_ROOM;
    let fits = |u: String| (u.len() <= room).then_some(u);
    if let Some(name) = wanted
        .iter()
        .flatten()
        .find_map(|w| normalize_username(w).and_then(fits))
    {
        return name;
    }
    let reduced = wanted.iter().flatten().find_map(|w| {
        let kept: String = w
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-'))
            .take(room)
            .collect();
        normalize_username(&kept)
    });
    reduced.unwrap_or_else(|| "user".to_owned())
}

/// Characters kept free for a suffix such as `-19`.
const SUFFIX_ROOM: usize = 4;

/// The username to try at the `attempt`th try: the base, then `base-2`, `base-3`, …
pub fn username_candidate(base: &str, attempt: u32) -> String {
    match attempt {
        0 => base.to_owned(),
        n => format!("{base}-{}", n + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(email: Option<&str>, verified: bool, preferred: Option<&str>) -> Identity {
        Identity {
            subject: "sub-1".to_owned(),
            email: email.map(str::to_owned),
            email_verified: verified,
            preferred_username: preferred.map(str::to_owned),
            name: None,
        }
    }

    #[test]
    fn any_identity_without_allowed_domains() {
        assert!(email_admitted(&identity(None, false, None), &[]));
    }

    #[test]
    fn allowed_domains_need_a_verified_email_at_one_of_them() {
        let domains = vec!["example.com".to_owned()];
        let admitted = |email, verified| email_admitted(&identity(email, verified, None), &domains);
        assert!(admitted(Some("alice@example.com"), true));
        assert!(admitted(Some("alice@EXAMPLE.com"), true));
        assert!(!admitted(Some("alice@example.com"), false));
        assert!(!admitted(Some("alice@example.org"), true));
        assert!(!admitted(Some("alice@sub.example.com"), true));
        assert!(!admitted(Some("alice@example.com.evil.org"), true));
        assert!(!admitted(Some("@example.com"), true));
        assert!(!admitted(Some("example.com"), true));
        assert!(!admitted(None, true));
    }

    #[test]
    fn usernames_come_from_preferred_username_then_verified_email() {
        let base = |e, v, p| username_base(&identity(e, v, p));
        assert_eq!(base(Some("a@x.org"), true, Some("Alice")), "alice");
        assert_eq!(base(Some("A@x.org"), true, None), "a@x.org");
        assert_eq!(base(Some("a@x.org"), false, None), "user");
        assert_eq!(base(None, false, Some("Alice Smith")), "alicesmith");
        assert_eq!(base(None, false, Some("élise")), "lise");
        assert_eq!(base(None, false, Some("ééé")), "user");
        let long = "x".repeat(200);
        assert!(base(None, false, Some(&long)).len() <= MAX_USERNAME_LEN - SUFFIX_ROOM);
    }

    #[test]
    fn only_storable_identities_are_taken() {
        let good = identity(Some("a@example.com"), true, Some("al"));
        assert_eq!(storable(good.clone()), Some(good.clone()));
        for subject in ["", "a\0b", "a\nb"] {
            let bad = Identity {
                subject: subject.to_owned(),
                ..good.clone()
            };
            assert_eq!(storable(bad), None, "{subject:?}");
        }
        let long = Identity {
            subject: "s".repeat(256),
            ..good.clone()
        };
        assert_eq!(storable(long), None);
        let odd = Identity {
            email: Some("a\0@example.com".to_owned()),
            name: Some("n".repeat(201)),
            preferred_username: Some("x\u{7}".to_owned()),
            ..good.clone()
        };
        let kept = storable(odd).unwrap();
        assert_eq!(
            (kept.email, kept.name, kept.preferred_username),
            (None, None, None)
        );
        let spoofed = Identity {
            name: Some("Alice\u{202E}nimda".to_owned()),
            ..good.clone()
        };
        assert_eq!(storable(spoofed).unwrap().name, None);
    }

    #[test]
    fn clashes_get_a_suffix() {
        assert_eq!(username_candidate("alice", 0), "alice");
        assert_eq!(username_candidate("alice", 1), "alice-2");
        assert_eq!(username_candidate("alice", 18), "alice-19");
    }
}
