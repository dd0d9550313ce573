//! The sign-in pages' cookies, written and read with the `cookie` crate: their names,
//! their attributes, and which ones a request sent. Values are signed by their owners
//! (`signin::binding`, `signin::key`); here they are only carried.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use cookie::time::Duration;
use cookie::{Cookie, SameSite};

use crate::signin::Signin;
use crate::signin::binding::Browser;
use crate::signin::view::SetCookie;

/// The session cookie: names a session row and the browser it was started in (signed).
pub const SESSION_COOKIE: &str = "introspectd_session";
/// The browser cookie: binds pending sign-ins to this browser (signed).
pub const BROWSER_COOKIE: &str = "introspectd_browser";
/// The prefix of the cookies' names when the issuer is https: a browser then keeps them
/// only when set `Secure`, `Path=/` and without `Domain` by this very host, so that
/// another site of the domain cannot set one (cookie tossing).
const HOST_PREFIX: &str = "__Host-";
/// How long a browser cookie lives, in seconds: the browser's proof that its users
/// signed in from it outlives their sessions.
const BROWSER_COOKIE_SECONDS: i64 = 180 * 24 * 3_600;

/// A cookie's name as set: with the `__Host-` prefix when the issuer is https.
pub fn cookie_name(signin: &Signin, name: &str) -> String {
    match signin.secure_cookies {
        true => format!("{HOST_PREFIX}{name}"),
        false => name.to_owned(),
    }
}

/// `Set-Cookie` for a sign-in cookie: `HttpOnly`, `SameSite=Lax`, `Path=/`, no
/// `Domain`, and on https `Secure` with a `__Host-` name.
fn build(signin: &Signin, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let cookie = Cookie::build((cookie_name(signin, name), value))
        .path("/")
        .max_age(Duration::seconds(max_age))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(signin.secure_cookies)
        .build();
    HeaderValue::from_str(&cookie.to_string()).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Adds cookies to a response.
pub fn with_cookies(
    mut response: Response,
    cookies: impl IntoIterator<Item = HeaderValue>,
) -> Response {
    for cookie in cookies {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `Set-Cookie` for what a sign-in step sets.
pub fn set_cookie(signin: &Signin, cookie: &SetCookie) -> HeaderValue {
    match cookie {
        SetCookie::Browser(value) => build(signin, BROWSER_COOKIE, value, BROWSER_COOKIE_SECONDS),
        SetCookie::Session(value) => build(signin, SESSION_COOKIE, value, signin.session_ttl),
        SetCookie::SessionCleared => build(signin, SESSION_COOKIE, "", 0),
    }
}

/// The browser and the session cookie a request sent. Two cookies of one of our names
/// (another site of the domain may have set one: cookie tossing) leave neither: the
/// visit is a signed-out one of a new browser.
pub fn sent_cookies(headers: &HeaderMap, signin: &Signin) -> (Option<Browser>, Option<String>) {
    let names = [BROWSER_COOKIE, SESSION_COOKIE].map(|name| cookie_name(signin, name));
    let browsers: Vec<String> = cookies(headers, &names[0]).collect();
    let sessions: Vec<String> = cookies(headers, &names[1]).collect();
    match (browsers.as_slice(), sessions.as_slice()) {
        ([_, _, ..], _) | (_, [_, _, ..]) => (None, None),
        (browser, session) => (
            browser
                .first()
                .and_then(|value| Browser::from_cookie(&signin.key, value)),
            session.first().cloned(),
        ),
    }
}

/// The values of the cookies named `name` in the request's `Cookie` headers; empty
/// values count as absent.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(move |cookie| cookie.name() == name && !cookie.value().is_empty())
        .map(|cookie| cookie.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_name_in_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2; a=3"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=4;a="));
        assert_eq!(cookies(&headers, "a").collect::<Vec<_>>(), ["1", "3", "4"]);
        assert_eq!(cookies(&headers, "c").count(), 0);
    }

    #[test]
    fn unreadable_cookie_headers_are_skipped() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_bytes(b"a=\xff").unwrap());
        headers.append(header::COOKIE, HeaderValue::from_static("=x; a=5; ;;"));
        assert_eq!(cookies(&headers, "a").collect::<Vec<_>>(), ["5"]);
    }
}
