//! A browser's visit to a sign-in page: its address, the one `now` the request is judged
//! at, the request's view of the store, and the sign-in cookies it sent, verified.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::client_ip::ClientIp;
use super::pages::{BROWSER_COOKIE, PageError, SESSION_COOKIE, cookie_name};
use crate::cache::View;
use crate::error::ApiError;
use crate::signin::binding::Browser;
use crate::signin::{Context, SignedIn, Signin, signed_in};

pub struct Visit {
    pub ip: IpAddr,
    pub now: i64,
    pub view: View,
    pub signin: Arc<Signin>,
    /// The browser its cookie names, when it sent one of ours.
    pub browser: Option<Browser>,
    /// The browser this visit names when it sent no cookie of ours.
    first_visit: Browser,
    /// The session cookie as sent; [`Visit::signed_in`] says whom it signs in.
    session_cookie: Option<String>,
}

impl FromRequestParts<AppState> for Visit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let signin = state.signin.clone().ok_or(ApiError::NotFound)?;
        let ip = parts
            .extensions
            .get::<ClientIp>()
            .map(|ClientIp(ip)| *ip)
            .ok_or_else(|| ApiError::Internal("no client address resolved".to_owned()))?;
        let (browser, session_cookie) = sent_cookies(&parts.headers, &signin);
        Ok(Visit {
            ip,
            now: crate::token::now(),
            view: state.directory.view().await,
            signin,
            browser,
            first_visit: Browser::new(),
            session_cookie,
        })
    }
}

impl Visit {
    /// What the sign-in steps of this request work with.
    pub fn context<'a>(&'a self, state: &'a AppState) -> Context<'a> {
        Context {
            view: &self.view,
            store: state.store(),
            signin: &self.signin,
            issuer: &state.config.issuer,
            documents: state.documents.as_deref(),
            ip: self.ip,
            now: self.now,
        }
    }

    /// The user the session cookie signs in, if any: only in the browser the session
    /// was started in.
    pub async fn signed_in(&self, state: &AppState) -> Result<Option<SignedIn>, PageError> {
        let (Some(cookie), Some(browser)) = (&self.session_cookie, &self.browser) else {
            return Ok(None);
        };
        Ok(signed_in(&self.context(state), cookie, browser).await?)
    }

    /// The browser, or a new one for a first visit (the same one every call).
    pub fn browser(&self) -> Browser {
        self.browser
            .clone()
            .unwrap_or_else(|| self.first_visit.clone())
    }
}

/// The browser and the session cookie a request sent. Two cookies of one of our names
/// (another site of the domain may have set one: cookie tossing) leave neither: the
/// visit is a signed-out one of a new browser.
fn sent_cookies(headers: &HeaderMap, signin: &Signin) -> (Option<Browser>, Option<String>) {
    let names = [BROWSER_COOKIE, SESSION_COOKIE].map(|name| cookie_name(signin, name));
    let browsers: Vec<&str> = cookies(headers, &names[0]).collect();
    let sessions: Vec<&str> = cookies(headers, &names[1]).collect();
    match (browsers.as_slice(), sessions.as_slice()) {
        ([_, _, ..], _) | (_, [_, _, ..]) => (None, None),
        (browser, session) => (
            browser
                .first()
                .and_then(|value| Browser::from_cookie(&signin.key, value)),
            session.first().map(|value| (*value).to_owned()),
        ),
    }
}

/// The values of the cookies named `name` in the request's `Cookie` headers.
fn cookies<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(move |pair| {
            let (n, v) = pair.trim().split_once('=')?;
            (n == name && !v.is_empty()).then_some(v)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_by_name_in_every_header() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; b=2; a=3"));
        headers.append(header::COOKIE, HeaderValue::from_static("a=4;a="));
        assert_eq!(cookies(&headers, "a").collect::<Vec<_>>(), ["1", "3", "4"]);
        assert_eq!(cookies(&headers, "c").count(), 0);
    }
}
