//! A browser's visit to a sign-in page: its address, the one `now` the request is judged
//! at, the request's view of the store, and the sign-in cookies it sent, verified.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::AppState;
use super::client_ip::ClientIp;
use super::cookies::sent_cookies;
use crate::cache::View;
use crate::error::ApiError;
use crate::signin::binding::Browser;
use crate::signin::{Context, SignedIn, Signin, SigninError, signed_in};

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
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state).await?;
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
            audit: &state.audit,
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

/// A failure of a sign-in page, shown as the error page.
#[derive(Debug)]
pub enum PageError {
    Signin(SigninError),
    Api(ApiError),
}

impl From<SigninError> for PageError {
    fn from(err: SigninError) -> Self {
        PageError::Signin(err)
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        PageError::Api(err)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        PageError::Signin(SigninError::Store(err))
    }
}
