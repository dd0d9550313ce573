//! The rules the command line and the endpoints share, as plain functions of plain data
//! and `now`: scope syntax and containment (RFC 6749 §3.3), resource and audience URIs
//! (RFC 8707 §2), the state of a token at a given time, and the order in which a
//! `token_type_hint` has the two places a token can live searched (RFC 7662 §2.1,
//! RFC 7009 §2.1).

use crate::vocabulary::TokenUse;

/// Longest resource or audience URI accepted.
pub const MAX_URI_LEN: usize = 2048;

/// Splits a space-delimited scope string (RFC 6749 §3.3) into its distinct tokens.
pub fn scope_items(scope: &str) -> Vec<&str> {
    let mut items: Vec<&str> = Vec::new();
    for item in scope.split(' ').filter(|s| !s.is_empty()) {
        if !items.contains(&item) {
            items.push(item);
        }
    }
    items
}

/// Checks RFC 6749 §3.3 syntax: printable ASCII except space, `"` and `\`.
pub fn valid_scope_token(item: &str) -> bool {
    !item.is_empty()
        && item
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

/// Checks scope syntax and returns the distinct items space-joined, or the first item
/// that is not a valid scope token.
pub fn normalize_scope(scope: &str) -> Result<String, &str> {
    let items = scope_items(scope);
    if let Some(bad) = items.iter().find(|i| !valid_scope_token(i)) {
        return Err(bad);
    }
    Ok(items.join(" "))
}

/// The first requested scope item the registered scope does not allow. An empty
/// registered scope allows none: deny by default.
pub fn scope_outside<'a>(requested: &'a str, registered: &str) -> Option<&'a str> {
    let allowed = scope_items(registered);
    scope_items(requested)
        .into_iter()
        .find(|item| !allowed.contains(item))
}

/// The items of `scope` that `registered` still allows, in their order.
pub fn scope_within(scope: &str, registered: &str) -> String {
    let allowed = scope_items(registered);
    let kept: Vec<&str> = scope_items(scope)
        .into_iter()
        .filter(|item| allowed.contains(item))
        .collect();
    kept.join(" ")
}

/// RFC 8707 §2: a resource indicator is an absolute URI and MUST NOT include a fragment.
/// An audience a client is registered for names such a resource, so the same rule holds
/// for it: a token's audience is only ever a granted resource.
pub fn valid_resource_uri(uri: &str) -> bool {
    uri.len() <= MAX_URI_LEN && url::Url::parse(uri).is_ok_and(|u| u.fragment().is_none())
}

/// Resource or audience URIs with repeats dropped, or the first one that is not valid.
pub fn normalize_resource_uris(uris: &[String]) -> Result<Vec<String>, &str> {
    let mut out: Vec<String> = Vec::new();
    for uri in uris {
        if !valid_resource_uri(uri) {
            return Err(uri);
        }
        if !out.contains(uri) {
            out.push(uri.clone());
        }
    }
    Ok(out)
}

/// Where a token stands at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenState {
    Active,
    Revoked,
    Expired,
    NotYetValid,
}

/// The state of a token at `now`. Revocation wins over everything; RFC 7519 §4.1.4: not
/// accepted on or after `exp`; §4.1.5: not before `not_before`. `leeway` allows for
/// clock skew between issuer and verifier (zero for tokens this server keeps itself).
pub fn token_state(
    revoked: bool,
    exp: i64,
    not_before: Option<i64>,
    now: i64,
    leeway: i64,
) -> TokenState {
    if revoked {
        return TokenState::Revoked;
    }
    if now >= exp.saturating_add(leeway) {
        return TokenState::Expired;
    }
    if not_before.is_some_and(|nbf| nbf > now.saturating_add(leeway)) {
        return TokenState::NotYetValid;
    }
    TokenState::Active
}

/// The two places a token can be found: a JWT signed by one of our keys, or the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Signed,
    Stored,
}

/// RFC 7662 §2.1 and RFC 7009 §2.1: the hint only orders the search; both places are
/// always searched. Refresh tokens live in the store, so that hint searches it first.
pub fn search_order(hint: Option<TokenUse>) -> [Source; 2] {
    match hint {
        Some(TokenUse::RefreshToken) => [Source::Stored, Source::Signed],
        _ => [Source::Signed, Source::Stored],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_items_drop_empty_and_repeated() {
        assert_eq!(scope_items(" a  b a "), vec!["a", "b"]);
        assert!(valid_scope_token("read:all"));
        assert!(!valid_scope_token("a\"b"));
        assert!(!valid_scope_token("é"));
    }

    #[test]
    fn scope_is_normalized() {
        assert_eq!(normalize_scope("  b a b ").unwrap(), "b a");
        assert_eq!(normalize_scope("a\\b"), Err("a\\b"));
        assert_eq!(normalize_scope("").unwrap(), "");
    }

    #[test]
    fn scope_within_registered() {
        assert_eq!(scope_outside("read", "read write"), None);
        assert_eq!(scope_outside("read admin", "read write"), Some("admin"));
        assert_eq!(
            scope_outside("anything", ""),
            Some("anything"),
            "an empty registered scope grants nothing"
        );
        assert_eq!(scope_outside("", ""), None);
        assert_eq!(scope_within("read write admin", "write read"), "read write");
        assert_eq!(scope_within("read", ""), "");
    }

    #[test]
    fn resource_uris_are_absolute_without_fragment() {
        for good in ["https://api.example", "urn:x", "https://api.example/p?q=1"] {
            assert!(valid_resource_uri(good), "{good}");
        }
        let long = format!("https://api.example/{}", "a".repeat(MAX_URI_LEN));
        for bad in [
            "api",
            "/relative",
            "",
            "https://api.example#f",
            "urn:x#",
            &long,
        ] {
            assert!(!valid_resource_uri(bad), "{bad}");
        }
    }

    #[test]
    fn resource_uris_are_normalized_or_the_first_bad_one_named() {
        let twice = vec!["urn:a".to_owned(), "urn:a".to_owned(), "urn:b".to_owned()];
        assert_eq!(
            normalize_resource_uris(&twice).unwrap(),
            vec!["urn:a", "urn:b"]
        );
        let bad = vec!["urn:a".to_owned(), "https://a.example#x".to_owned()];
        assert_eq!(normalize_resource_uris(&bad), Err("https://a.example#x"));
    }

    #[test]
    fn token_is_expired_at_exp() {
        assert_eq!(token_state(false, 100, None, 99, 0), TokenState::Active);
        assert_eq!(token_state(false, 100, None, 100, 0), TokenState::Expired);
        assert_eq!(token_state(false, 100, None, 100, 5), TokenState::Active);
        assert_eq!(token_state(false, 100, None, 105, 5), TokenState::Expired);
    }

    #[test]
    fn revoked_wins_over_everything() {
        assert_eq!(token_state(true, 100, Some(50), 0, 0), TokenState::Revoked);
        assert_eq!(token_state(true, 100, None, 200, 0), TokenState::Revoked);
    }

    #[test]
    fn token_not_yet_valid_before_not_before() {
        assert_eq!(
            token_state(false, 100, Some(50), 49, 0),
            TokenState::NotYetValid
        );
        assert_eq!(token_state(false, 100, Some(50), 50, 0), TokenState::Active);
        assert_eq!(token_state(false, 100, Some(50), 45, 5), TokenState::Active);
    }

    #[test]
    fn hint_orders_but_never_narrows_the_search() {
        for hint in [
            None,
            Some(TokenUse::AccessToken),
            Some(TokenUse::RefreshToken),
        ] {
            let order = search_order(hint);
            assert!(order.contains(&Source::Signed) && order.contains(&Source::Stored));
        }
        assert_eq!(search_order(None)[0], Source::Signed);
        assert_eq!(
            search_order(Some(TokenUse::RefreshToken))[0],
            Source::Stored
        );
    }
}
