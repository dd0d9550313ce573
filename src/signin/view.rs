//! What a sign-in step answers, complete: the page to show with everything it carries
//! (its form already bound to the browser, its sign-out token), the cookies to set with
//! their signed values, or where the browser goes next. The page layer
//! (`http/pages.rs`) renders these and decides nothing.

use url::Url;

use super::binding::{Browser, PendingForm, pending_form, sign_out_token};
use super::request::AuthorizationRequest;
use super::{Context, LoginProblem, Prompt, SignedIn};

/// Where the browser goes next.
#[derive(Clone, Debug)]
pub enum Location {
    /// The client's redirect URI, with a code or an error (`redirect.rs`).
    Client(Url),
    /// A provider's authorization endpoint.
    Provider(String),
    /// `/authorize` again with this request: after a sign-in, or where the login page
    /// is served.
    Authorize(AuthorizationRequest),
}

/// A cookie a step sets.
#[derive(Clone, Debug)]
pub enum SetCookie {
    /// The browser cookie, signed: renewed on every page that binds a form to the
    /// browser, and whenever it learns that its user proved their password.
    Browser(String),
    /// The cookie of a new session, signed.
    Session(String),
    /// The session cookie, cleared.
    SessionCleared,
}

/// The login page of a request: its form bound to the browser, and, after a failed
/// try, the username typed and why it failed.
#[derive(Debug)]
pub struct LoginView {
    pub prompt: Prompt,
    pub form: PendingForm,
    pub retry: Option<(String, LoginProblem)>,
}

/// The consent page of a request for the signed-in user: its form bound to the
/// browser, and the token of its sign-out form bound to the session.
#[derive(Debug)]
pub struct ConsentView {
    pub prompt: Prompt,
    pub username: String,
    pub form: PendingForm,
    pub sign_out_token: String,
}

/// What the browser is shown.
#[derive(Debug)]
pub enum Shown {
    Login(LoginView),
    Consent(ConsentView),
    /// The signed-out page.
    SignedOut,
    /// A `303 See Other`.
    Redirect(Location),
}

/// A step's whole answer.
#[derive(Debug)]
pub struct Answer {
    pub shown: Shown,
    pub cookies: Vec<SetCookie>,
}

impl Answer {
    /// A redirect that sets no cookie.
    pub fn redirect(to: Location) -> Self {
        Answer {
            shown: Shown::Redirect(to),
            cookies: Vec::new(),
        }
    }

    /// The login page of `prompt` for `browser`, which the page's browser cookie names.
    pub fn login(
        cx: &Context<'_>,
        browser: &Browser,
        prompt: Prompt,
        retry: Option<(String, LoginProblem)>,
    ) -> Self {
        let form = bound_form(cx, browser, &prompt);
        Answer {
            shown: Shown::Login(LoginView {
                prompt,
                form,
                retry,
            }),
            cookies: vec![browser_cookie(cx, browser)],
        }
    }

    /// The consent page of `prompt` for the signed-in user in `browser`.
    pub fn consent(
        cx: &Context<'_>,
        browser: &Browser,
        prompt: Prompt,
        signed_in: SignedIn,
    ) -> Self {
        let form = bound_form(cx, browser, &prompt);
        let sign_out_token = sign_out_token(&cx.signin.key, &signed_in.session_id);
        Answer {
            shown: Shown::Consent(ConsentView {
                prompt,
                username: signed_in.user.username,
                form,
                sign_out_token,
            }),
            cookies: vec![browser_cookie(cx, browser)],
        }
    }

    /// Signed in: on to `/authorize` with the request, the new session's cookie, and the
    /// browser cookie that now remembers the user.
    pub fn signed_in(
        cx: &Context<'_>,
        browser: &Browser,
        request: AuthorizationRequest,
        session: String,
    ) -> Self {
        Answer {
            shown: Shown::Redirect(Location::Authorize(request)),
            cookies: vec![SetCookie::Session(session), browser_cookie(cx, browser)],
        }
    }
}

/// The browser cookie naming `browser`.
pub fn browser_cookie(cx: &Context<'_>, browser: &Browser) -> SetCookie {
    SetCookie::Browser(browser.to_cookie(&cx.signin.key))
}

/// The hidden fields of a page's form: the request, signed and bound to the browser,
/// with its CSRF token.
fn bound_form(cx: &Context<'_>, browser: &Browser, prompt: &Prompt) -> PendingForm {
    let query = prompt.request.to_query();
    pending_form(&cx.signin.key, browser, &query, cx.now)
}
