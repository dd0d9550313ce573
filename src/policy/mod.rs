//! The rules the command line and the endpoints share, as plain functions of plain data
//! and `now`: scope syntax and containment (RFC 6749 §3.3), resource and audience URIs
//! (RFC 8707 §2), redirect URIs and how they match (RFC 8252), usernames and passwords,
//! the state of a token or a session at a given time, and the order in which a
//! `token_type_hint` has the two places a token can live searched (RFC 7662 §2.1,
//! RFC 7009 §2.1). Beside them: PKCE (`pkce`) and which hosts and addresses a metadata
//! document may be fetched from (`address`).

pub mod address;
pub mod pkce;

use crate::vocabulary::{ApplicationType, AuthMethod, TokenUse};

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

/// The hosts of a loopback redirect URI (RFC 8252 §7.3), as written after `http://`.
const LOOPBACK_HOSTS: [&str; 3] = ["127.0.0.1", "[::1]", "localhost"];

/// Checks a redirect URI a client registers (RFC 8252 §8.4, OAuth 2.1 §2.3.1): an
/// absolute URI of at most [`MAX_URI_LEN`] characters without a fragment, user
/// information, spaces or control characters, that is `https`, `http` on a loopback host
/// (`127.0.0.1`, `[::1]` or `localhost`, any port: §7.3), or a private-use scheme with a
/// dot in it, a reversed domain name such as `com.example.app:/callback` (§7.1). The
/// answer says what is wrong, in words fit for an error message.
pub fn validate_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let url = parse_redirect_uri(uri)?;
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback_parts(uri).is_some() => Ok(()),
        "http" => {
            Err("an http redirect URI must be on a loopback host (127.0.0.1, [::1] or localhost)")
        }
        scheme if scheme.contains('.') => Ok(()),
        _ => Err(
            "redirect URI must be https, loopback http, or a private-use scheme such as com.example.app",
        ),
    }
}

/// Where a redirect URI sends the browser back to (RFC 8252 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectKind {
    /// An https URI: a web site, or an app that claimed it (§7.2).
    Https,
    /// `http` on a loopback host (§7.3): a program on the user's computer, on any port.
    Loopback,
    /// A private-use scheme (§7.1): an application on the user's device.
    PrivateUse,
}

/// The kind of a redirect URI that [`validate_redirect_uri`] accepts; `None` for any
/// other.
pub fn redirect_kind(uri: &str) -> Option<RedirectKind> {
    validate_redirect_uri(uri).ok()?;
    let url = url::Url::parse(uri).ok()?;
    Some(match url.scheme() {
        "https" => RedirectKind::Https,
        "http" => RedirectKind::Loopback,
        _ => RedirectKind::PrivateUse,
    })
}

/// The `application_type` of a client that registers these redirect URIs without
/// naming one: `web` when every one is https, else `native`.
pub fn inferred_application_type(redirect_uris: &[String]) -> ApplicationType {
    let all_https = redirect_uris
        .iter()
        .all(|uri| redirect_kind(uri) == Some(RedirectKind::Https));
    if all_https {
        ApplicationType::Web
    } else {
        ApplicationType::Native
    }
}

/// Whether redirect URIs fit an `application_type` (OpenID Connect Dynamic Client
/// Registration §2): a `web` client's are all https, never loopback or a private-use
/// scheme; a `native` client returns to a loopback or private-use URI, and may have
/// https ones beside it (claimed https URIs, RFC 8252 §7.2, as desktop editors register
/// both). The answer says what is wrong, in words fit for an error message.
pub fn redirect_uris_fit(
    application_type: ApplicationType,
    redirect_uris: &[String],
) -> Result<(), &'static str> {
    let kinds = || redirect_uris.iter().map(|uri| redirect_kind(uri));
    match application_type {
        ApplicationType::Web if kinds().all(|k| k == Some(RedirectKind::Https)) => Ok(()),
        ApplicationType::Web => Err("a web client's redirect URIs must all be https"),
        ApplicationType::Native
            if kinds()
                .any(|k| matches!(k, Some(RedirectKind::Loopback | RedirectKind::PrivateUse))) =>
        {
            Ok(())
        }
        ApplicationType::Native => {
            Err("a native client needs a loopback http or private-use scheme redirect URI")
        }
    }
}

/// A redirect URI as a client registers it, checked by [`validate_redirect_uri`] and put
/// in the one form it is stored and matched in (RFC 3986 §6.2.2.1, §6.2.3): scheme and
/// host lower-cased, a default port (`:443` for https, `:80` for http) dropped. Path and
/// query are kept as written. An http(s) URI must name its host after `//` (RFC 3986
/// §3.2, RFC 9110 §4.2): `https:/app.example/cb` is refused rather than read as the URL
/// a browser would guess, and so is a backslash, which browsers read as a slash.
pub fn normalize_redirect_uri(uri: &str) -> Result<String, &'static str> {
    let url = parse_redirect_uri(uri)?;
    let scheme = url.scheme();
    // The scheme as written is ASCII of the same length, followed by ':'.
    let rest = uri.get(scheme.len() + 1..).unwrap_or_default();
    let normalized = if matches!(scheme, "http" | "https") {
        let (Some(after), Some(host)) = (rest.strip_prefix("//"), url.host_str()) else {
            return Err(
                "an http(s) redirect URI must name its host after //, as in \
                        https://app.example/callback",
            );
        };
        let path_and_query = after.find(['/', '?']).map_or("", |end| &after[end..]);
        let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
        format!("{scheme}://{host}{port}{path_and_query}")
    } else {
        format!("{scheme}:{rest}")
    };
    validate_redirect_uri(&normalized)?;
    Ok(normalized)
}

/// A redirect URI parsed, when it is one at all: an absolute URI of at most
/// [`MAX_URI_LEN`] characters without a fragment, user information, spaces, control
/// characters or backslashes. The URL parser would drop the spaces and read a backslash
/// as a slash; exact matching must not see something else than a browser does.
fn parse_redirect_uri(uri: &str) -> Result<url::Url, &'static str> {
    if uri.len() > MAX_URI_LEN {
        return Err("redirect URI is too long");
    }
    if uri.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("redirect URI contains spaces or control characters");
    }
    if uri.contains('#') {
        return Err("redirect URI must not have a fragment");
    }
    if uri.contains('\\') {
        return Err("redirect URI must not contain a backslash");
    }
    let Ok(url) = url::Url::parse(uri) else {
        return Err("redirect URI must be an absolute URI");
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("redirect URI must not carry user information");
    }
    Ok(url)
}

/// Whether `given` matches one of the redirect URIs a client registered: exactly, as
/// strings (OAuth 2.1 §4.1.3), except that a loopback `http` URI matches on any port
/// (RFC 8252 §7.3) when its host, path and query are exactly the registered ones.
pub fn redirect_uri_matches(registered: &[String], given: &str) -> bool {
    registered.iter().any(|r| {
        r == given
            || matches!(
                (loopback_parts(r), loopback_parts(given)),
                (Some(r), Some(g)) if r == g
            )
    })
}

/// An `http` URI on a loopback host split into that host and what follows the port
/// (path and query), when the port, if any, is a port number and nothing else follows
/// the host: `http://127.0.0.1@evil.example/` and `http://localhost.evil.example/` are
/// not loopback URIs.
fn loopback_parts(uri: &str) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let host = LOOPBACK_HOSTS.into_iter().find(|h| after.starts_with(h))?;
    let mut rest = &after[host.len()..];
    if let Some(port_on) = rest.strip_prefix(':') {
        let end = port_on
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(port_on.len());
        match port_on[..end].parse::<u16>() {
            Ok(port) if port != 0 && end <= 5 => rest = &port_on[end..],
            _ => return None,
        }
    }
    let follows_host = rest.is_empty() || rest.starts_with('/') || rest.starts_with('?');
    let clean = !rest.contains('#') && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    (follows_host && clean).then_some((host, rest))
}

/// Longest username, in characters.
pub const MAX_USERNAME_LEN: usize = 64;

/// A username as stored and looked up: trimmed and lower-cased, 1 to
/// [`MAX_USERNAME_LEN`] characters of `a-z`, `0-9` and `._@+-`; `None` when it is not
/// one. ASCII only, so no two spellings that look alike name two users, and none is
/// folded onto another by Unicode case rules.
pub fn normalize_username(username: &str) -> Option<String> {
    let username = username.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '+' | '-');
    let fits = (1..=MAX_USERNAME_LEN).contains(&username.len());
    (fits && username.chars().all(allowed)).then(|| username.to_ascii_lowercase())
}

/// Longest display name (of a client or a user), in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// A client's or a user's display name as stored and shown: trimmed, 1 to
/// [`MAX_DISPLAY_NAME_CHARS`] characters, none of them a control character, a line or
/// paragraph separator, or another character of Unicode category C: format characters
/// (Cf: bidi overrides and isolates such as U+202E and U+2066, zero-width characters,
/// the Arabic letter mark), private-use or unassigned ones. Those make a name read as
/// another on the consent page (Unicode TR #36 §2.1, "Trojan Source"). The answer says
/// what is wrong, in words fit for an error message after the field's name.
pub fn normalize_display_name(name: &str) -> Result<String, &'static str> {
    use unicode_properties::{GeneralCategory, GeneralCategoryGroup, UnicodeGeneralCategory};
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err("must be 1 to 200 characters");
    }
    let breaks_lines = |c: char| {
        c.is_control()
            || matches!(
                c.general_category(),
                GeneralCategory::LineSeparator | GeneralCategory::ParagraphSeparator
            )
    };
    if name.chars().any(breaks_lines) {
        return Err("must not contain control characters");
    }
    if name
        .chars()
        .any(|c| c.general_category_group() == GeneralCategoryGroup::Other)
    {
        return Err(
            "must not contain format characters (such as bidi controls or zero-width spaces), \
             private-use or unassigned characters",
        );
    }
    Ok(name.to_owned())
}

/// Shortest password an operator may set, in characters (NIST SP 800-63B §3.1.1.2).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted, in bytes: enough for any passphrase, and a bound on what
/// argon2 is given to hash.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Whether a password may be set: [`MIN_PASSWORD_CHARS`] characters or more, at most
/// [`MAX_PASSWORD_BYTES`] bytes, no control characters.
pub fn valid_password(password: &str) -> bool {
    password.chars().count() >= MIN_PASSWORD_CHARS
        && password.len() <= MAX_PASSWORD_BYTES
        && !password.chars().any(char::is_control)
}

/// Whether a user's earlier consent lets a sign-in go straight back to a client that
/// authenticates with `auth_method`. RFC 8252 §8.6: without assurance of the client's
/// identity, a request is processed as if nothing had been approved before. A public
/// client (`none`) names itself by its id alone, and a loopback redirect URI matches on
/// any port, so any program on the user's computer could be it: it is always asked
/// again. A confidential client's code is worth nothing without its credential.
pub fn consent_may_be_remembered(auth_method: AuthMethod) -> bool {
    auth_method != AuthMethod::None
}

/// Whether a session that expires at `expires_at` still signs its browser in at `now`.
pub fn session_active(expires_at: i64, now: i64) -> bool {
    now < expires_at
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
    fn redirect_uris_are_https_loopback_http_or_private_use() {
        for good in [
            "https://app.example/callback",
            "https://app.example/cb?x=1",
            "http://127.0.0.1/callback",
            "http://127.0.0.1:8080/callback",
            "http://[::1]:33418/",
            "http://localhost:6274/oauth/callback",
            "http://localhost",
            "com.example.app:/oauth2redirect",
            "com.example.app://callback",
            "vscode.dev:/redirect",
        ] {
            assert_eq!(validate_redirect_uri(good), Ok(()), "{good}");
        }
        let long = format!("https://app.example/{}", "a".repeat(MAX_URI_LEN));
        for bad in [
            "",
            "/callback",
            "app.example/callback",
            "https://app.example/cb#frag",
            "https://app.example/cb#",
            "http://app.example/callback",
            "http://127.0.0.2/callback",
            "http://localhost.evil.example/",
            "http://127.0.0.1@evil.example/",
            "http://127.0.0.1:0/cb",
            "http://127.0.0.1:99999/cb",
            "https://user:pass@app.example/cb",
            "https://user@app.example/cb",
            "javascript:alert(1)",
            "data:text/html,hi",
            "file:///etc/passwd",
            "myapp:/callback",
            "https://app.example/c b",
            "https://app.example/\ncb",
            " https://app.example/cb",
            "https://app.example/cb\t",
            &long,
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn redirect_uris_are_of_three_kinds() {
        use RedirectKind::*;
        for (uri, kind) in [
            ("https://app.example/cb", Some(Https)),
            ("https://127.0.0.1/cb", Some(Https)),
            ("HTTPS://app.example/cb", Some(Https)),
            ("http://127.0.0.1:5000/cb", Some(Loopback)),
            ("http://[::1]/cb", Some(Loopback)),
            ("http://localhost/cb", Some(Loopback)),
            ("com.example.app:/cb", Some(PrivateUse)),
            ("http://app.example/cb", None),
            ("myapp:/cb", None),
        ] {
            assert_eq!(redirect_kind(uri), kind, "{uri}");
        }
    }

    #[test]
    fn redirect_uris_are_stored_with_scheme_and_host_lower_case_and_no_default_port() {
        for (given, stored) in [
            (
                "HTTPS://App.Example.com:443/cb",
                "https://app.example.com/cb",
            ),
            (
                "https://app.example.com:8443/CB?X=1",
                "https://app.example.com:8443/CB?X=1",
            ),
            ("https://app.example.com", "https://app.example.com"),
            (
                "HTTP://LOCALHOST:6274/oauth/callback",
                "http://localhost:6274/oauth/callback",
            ),
            ("http://127.0.0.1:80/cb", "http://127.0.0.1/cb"),
            ("http://[::1]:33418/", "http://[::1]:33418/"),
            ("http://localhost?x=1", "http://localhost?x=1"),
            ("Com.Example.App:/Callback", "com.example.app:/Callback"),
        ] {
            assert_eq!(
                normalize_redirect_uri(given).as_deref(),
                Ok(stored),
                "{given}"
            );
            assert_eq!(
                normalize_redirect_uri(stored).as_deref(),
                Ok(stored),
                "{stored}"
            );
        }
    }

    #[test]
    fn application_types_follow_the_redirect_uris() {
        use ApplicationType::*;
        let uris = |list: &[&str]| list.iter().map(|u| (*u).to_owned()).collect::<Vec<_>>();
        let web = uris(&["https://app.example/cb"]);
        let loopback = uris(&["http://127.0.0.1/cb"]);
        let private = uris(&["com.example.app:/cb"]);
        let both = uris(&["http://127.0.0.1:33418", "https://vscode.dev/redirect"]);
        assert_eq!(inferred_application_type(&web), Web);
        for native in [&loopback, &private, &both] {
            assert_eq!(inferred_application_type(native), Native, "{native:?}");
        }
        for uris in [&web, &loopback, &private, &both] {
            let inferred = inferred_application_type(uris);
            assert_eq!(redirect_uris_fit(inferred, uris), Ok(()), "{uris:?}");
        }
        assert!(redirect_uris_fit(Native, &web).is_err());
        for not_web in [&loopback, &private, &both] {
            assert!(redirect_uris_fit(Web, not_web).is_err(), "{not_web:?}");
        }
    }

    #[test]
    fn malformed_redirect_uris_are_refused_not_guessed() {
        for (bad, why) in [
            ("https:/app.example.com/cb", "after //"),
            ("https:app.example.com/cb", "after //"),
            ("http:/127.0.0.1/cb", "after //"),
            ("https:\\\\app.example.com\\cb", "backslash"),
            ("https://app.example.com\\@evil.example/", "backslash"),
            ("https://user@app.example.com/cb", "user information"),
            ("HTTP://127.0.0.1@evil.example/", "user information"),
            ("http://app.example.com/cb", "loopback"),
            ("https://app.example.com/cb#x", "fragment"),
            ("cb", "absolute"),
        ] {
            let err = normalize_redirect_uri(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let registered = vec![
            "https://app.example/cb".to_owned(),
            "com.example.app:/oauth2redirect".to_owned(),
        ];
        assert!(redirect_uri_matches(&registered, "https://app.example/cb"));
        assert!(redirect_uri_matches(
            &registered,
            "com.example.app:/oauth2redirect"
        ));
        for other in [
            "https://app.example/cb/",
            "https://app.example/cb?x=1",
            "https://APP.example/cb",
            "https://app.example:443/cb",
            "https://app.example/c",
            "https://app.example/cbx",
            "http://app.example/cb",
            "https://app.example:8443/cb",
            "",
        ] {
            assert!(!redirect_uri_matches(&registered, other), "{other}");
        }
        assert!(!redirect_uri_matches(&[], "https://app.example/cb"));
    }

    #[test]
    fn loopback_redirect_uris_match_on_any_port_only() {
        let registered = vec![
            "http://127.0.0.1/callback".to_owned(),
            "http://[::1]:1234/cb?x=1".to_owned(),
            "http://localhost:6274/oauth/callback".to_owned(),
        ];
        for given in [
            "http://127.0.0.1/callback",
            "http://127.0.0.1:51234/callback",
            "http://[::1]/cb?x=1",
            "http://[::1]:65535/cb?x=1",
            "http://localhost:6274/oauth/callback",
            "http://localhost:9999/oauth/callback",
        ] {
            assert!(redirect_uri_matches(&registered, given), "{given}");
        }
        for given in [
            // Another loopback host than the registered one.
            "http://localhost:51234/callback",
            "http://[::1]:51234/callback",
            // Path and query still match exactly.
            "http://127.0.0.1:51234/callback/",
            "http://127.0.0.1:51234/callback?x=1",
            "http://[::1]:1234/cb",
            "http://[::1]:1234/cb?x=2",
            // Not a port, or not only a port.
            "http://127.0.0.1:/callback",
            "http://127.0.0.1:0/callback",
            "http://127.0.0.1:70000/callback",
            "http://127.0.0.1:5000@evil.example/callback",
            "http://127.0.0.1.evil.example/callback",
            "http://127.0.0.1:5000/callback#x",
            // https on loopback is matched exactly, like any https URI.
            "https://127.0.0.1:51234/callback",
        ] {
            assert!(!redirect_uri_matches(&registered, given), "{given}");
        }
    }

    #[test]
    fn usernames_are_trimmed_lowercased_and_limited() {
        assert_eq!(normalize_username("  Alice ").as_deref(), Some("alice"));
        assert_eq!(
            normalize_username("a.b_c@d+e-f").as_deref(),
            Some("a.b_c@d+e-f")
        );
        assert_eq!(
            normalize_username(&"x".repeat(MAX_USERNAME_LEN)).map(|u| u.len()),
            Some(MAX_USERNAME_LEN)
        );
        for bad in [
            "",
            "   ",
            "a b",
            "al/ice",
            "alice:x",
            "élise",
            // The Kelvin sign lower-cases to an ASCII k under Unicode rules.
            "\u{212A}ate",
            "a\u{0}b",
            &"x".repeat(MAX_USERNAME_LEN + 1),
        ] {
            assert_eq!(normalize_username(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn display_names_refuse_format_and_control_characters() {
        assert_eq!(
            normalize_display_name("  MCP Inspector ").unwrap(),
            "MCP Inspector"
        );
        for good in ["Émile's app", "日本語アプリ", "عربي", "a\u{00A0}b", "app ✓"] {
            assert!(normalize_display_name(good).is_ok(), "{good:?}");
        }
        let length = "must be 1 to 200 characters";
        assert_eq!(normalize_display_name(" "), Err(length));
        assert_eq!(normalize_display_name(&"é".repeat(201)), Err(length));
        assert!(normalize_display_name(&"é".repeat(200)).is_ok());
        for control in [
            "a\nb",
            "a\u{0}b",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{2028}b",
            "a\u{2029}b",
        ] {
            assert_eq!(
                normalize_display_name(control),
                Err("must not contain control characters"),
                "{control:?}"
            );
        }
        // Category Cf: bidi embeddings, overrides, isolates and marks, zero-width
        // characters, the soft hyphen, the byte order mark; then private use and
        // unassigned code points.
        for format in [
            '\u{202E}',
            '\u{202A}',
            '\u{202D}',
            '\u{2066}',
            '\u{2067}',
            '\u{2068}',
            '\u{2069}',
            '\u{200E}',
            '\u{200F}',
            '\u{061C}',
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{00AD}',
            '\u{FEFF}',
            '\u{E000}',
            '\u{F8FF}',
            '\u{10FFFF}',
        ] {
            let name = format!("Good{format}App");
            let refused = normalize_display_name(&name).unwrap_err();
            assert!(
                refused.contains("format characters"),
                "{format:?}: {refused}"
            );
        }
    }

    #[test]
    fn passwords_have_a_length_and_no_control_characters() {
        assert!(valid_password("eight ch"));
        assert!(valid_password("pässwörd"));
        assert!(!valid_password("seven c"));
        assert!(!valid_password("line\nbreak"));
        assert!(!valid_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)));
        assert!(valid_password(&"x".repeat(MAX_PASSWORD_BYTES)));
    }

    #[test]
    fn only_confidential_clients_skip_a_remembered_consent() {
        for method in AuthMethod::ALL {
            assert_eq!(
                consent_may_be_remembered(method),
                method != AuthMethod::None,
                "{method:?}"
            );
        }
    }

    #[test]
    fn a_session_ends_at_its_expiry() {
        assert!(session_active(100, 99));
        assert!(!session_active(100, 100));
        assert!(!session_active(100, 101));
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
