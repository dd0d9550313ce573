//! Who a provider says signed in, and the rules that turn that into a local user: which
//! emails are admitted, and which username a new user gets.

use crate::policy::{MAX_USERNAME_LEN, normalize_username};

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
    fn clashes_get_a_suffix() {
        assert_eq!(username_candidate("alice", 0), "alice");
        assert_eq!(username_candidate("alice", 1), "alice-2");
        assert_eq!(username_candidate("alice", 18), "alice-19");
    }
}
