//! The authorization request (OAuth 2.1 §4.1.1, RFC 7636, RFC 8707) read into a typed
//! value, and which of its errors may be sent back to the client.
//!
//! OAuth 2.1 §4.1.2.1: while the client or its redirect URI is not verified, an error is
//! shown to the user and never redirected to; once both are, errors go back to the
//! client at the redirect URI.

use std::fmt;

use serde::Deserialize;
use utoipa::IntoParams;

use crate::grant::{GrantError, granted_scope};
use crate::params::{self, Parameters};
use crate::policy::{RedirectKind, redirect_kind, redirect_uri_matches, valid_resource_uri};
use crate::store::ClientRecord;
pub use crate::vocabulary::ErrorCode;
use crate::vocabulary::GrantType;

use crate::policy::pkce;

/// Longest `state` accepted; a client needs far less to bind a response to its request.
pub const MAX_STATE_LEN: usize = 1024;

/// Most `resource` parameters one request may carry.
pub const MAX_RESOURCES: usize = 8;

/// Longest `client_id` and `redirect_uri` considered at all.
const MAX_ID_LEN: usize = 2048;

/// A verified authorization request: its client and redirect URI are registered and
/// every other parameter is valid. `scope` is what will be granted, normalised.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub code_challenge: String,
    /// The scope asked for, within the client's registered scope; the registered scope
    /// when none was asked. `None` when that is empty.
    pub scope: Option<String>,
    /// RFC 8707 resources asked for, each an absolute URI, without repeats.
    pub resources: Vec<String>,
    /// Whether `scope` was given in the request; kept so that the request reads back
    /// exactly as it was made.
    scope_requested: bool,
}

/// `Debug` leaves out `state` and the challenge: they are the client's, and bind its
/// session.
impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scope", &self.scope)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// An error shown to the user as a page (OAuth 2.1 §4.1.2.1): the client cannot be told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shown {
    /// No `client_id`, or one given twice.
    MissingClient,
    /// No client with that id, or a disabled one: answered alike.
    UnknownClient,
    /// No `redirect_uri`, one given twice, or one not registered for the client.
    BadRedirectUri,
}

impl Shown {
    /// What the error page says; never what the request sent.
    pub fn message(self) -> &'static str {
        match self {
            Shown::MissingClient => "The request does not name the application that sent you here.",
            Shown::UnknownClient => {
                "The application that sent you here is not registered with this server."
            }
            Shown::BadRedirectUri => {
                "The address this application wants to return you to is not registered for it."
            }
        }
    }
}

/// An error for the client: its code and a fixed description, never an echo of input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ErrorResponse {
    pub code: ErrorCode,
    pub description: &'static str,
}

impl ErrorResponse {
    pub const fn new(code: ErrorCode, description: &'static str) -> Self {
        ErrorResponse { code, description }
    }
}

/// Where a redirectable error goes: the verified redirect URI, with the request's
/// `state` (when it was given once).
#[derive(Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: ErrorResponse,
}

impl fmt::Debug for ErrorRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorRedirect")
            .field("redirect_uri", &self.redirect_uri)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// Why an authorization request was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    Shown(Shown),
    Redirect(ErrorRedirect),
}

/// The query of `GET /authorize` (OAuth 2.1 section 4.1.1, RFC 7636, RFC 8707): the
/// parameters of an authorization request as sent, before anything is checked against
/// the client. Each is read as a list of what was sent, since which parameter was given
/// twice decides how the request is refused (shown to the user, or sent back to the
/// client: OAuth 2.1 section 4.1.2.1).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RawRequest {
    /// `code`.
    #[serde(default)]
    #[param(value_type = String, required = true)]
    response_type: Vec<String>,
    #[serde(default)]
    #[param(value_type = String, required = true)]
    client_id: Vec<String>,
    /// Registered for the client; a loopback `http` URI matches on any port.
    #[serde(default)]
    #[param(value_type = String, required = true)]
    redirect_uri: Vec<String>,
    /// The S256 challenge of the client's PKCE verifier.
    #[serde(default)]
    #[param(value_type = String, required = true)]
    code_challenge: Vec<String>,
    /// `S256`.
    #[serde(default)]
    #[param(value_type = String, required = true)]
    code_challenge_method: Vec<String>,
    /// Returned unchanged to the client.
    #[serde(default)]
    #[param(value_type = String, required = false)]
    state: Vec<String>,
    /// Space-separated, within the client's registered scope; none asked: all of it.
    #[serde(default)]
    #[param(value_type = String, required = false)]
    scope: Vec<String>,
    /// RFC 8707 resource indicator; repeatable.
    #[serde(default)]
    #[param(value_type = String, required = false)]
    resource: Vec<String>,
}

impl Parameters for RawRequest {
    /// Every parameter is read as a list: [`RawRequest`] says what a repeat means.
    const REPEATABLE: &'static [&'static str] = &[
        "response_type",
        "client_id",
        "redirect_uri",
        "code_challenge",
        "code_challenge_method",
        "state",
        "scope",
        "resource",
    ];
}

impl fmt::Debug for RawRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawRequest")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// Reads the query of an authorization request: the one the browser sent, or the one a
/// sign-in page carries. Parameters sent without a value count as omitted (OAuth 2.1
/// §3.1); unknown ones are ignored.
pub fn parse(query: &str) -> RawRequest {
    // Every parameter may repeat and none is required: nothing here can be refused.
    params::parse(query.as_bytes()).unwrap_or_default()
}

/// The one value of a parameter sent once.
fn once(values: &[String]) -> Option<&String> {
    match values {
        [value] => Some(value),
        _ => None,
    }
}

impl RawRequest {
    /// The client the request names, when it names exactly one.
    pub fn client_id(&self) -> Result<&str, Shown> {
        match once(&self.client_id) {
            Some(id) if id.len() <= MAX_ID_LEN => Ok(id),
            _ => Err(Shown::MissingClient),
        }
    }

    /// The `redirect_uri` as sent (the first, when it was sent twice).
    pub fn redirect_uri(&self) -> Option<&str> {
        self.redirect_uri.first().map(String::as_str)
    }

    /// The scopes sent: a scope of spaces alone names no scope item, as if none was
    /// sent.
    fn scopes(&self) -> impl Iterator<Item = &String> {
        self.scope
            .iter()
            .filter(|s| !s.trim_matches(' ').is_empty())
    }

    /// Whether a parameter that may be given once was given more often.
    fn repeated(&self) -> bool {
        let lists = [
            &self.response_type,
            &self.client_id,
            &self.redirect_uri,
            &self.code_challenge,
            &self.code_challenge_method,
            &self.state,
        ];
        lists.iter().any(|list| list.len() > 1) || self.scopes().count() > 1
    }

    /// Checks the request against its client as registered (`None`: no such client).
    /// Until the client and the redirect URI are verified, errors are [`Shown`]; after,
    /// they go back to the client.
    pub fn validate(
        &self,
        client: Option<&ClientRecord>,
    ) -> Result<AuthorizationRequest, RequestError> {
        let client_id = self.client_id().map_err(RequestError::Shown)?;
        let client = client
            .filter(|c| !c.disabled && c.client_id == client_id)
            .ok_or(RequestError::Shown(Shown::UnknownClient))?;
        let redirect_uri = match once(&self.redirect_uri) {
            Some(uri)
                if uri.len() <= MAX_ID_LEN && redirect_uri_matches(&client.redirect_uris, uri) =>
            {
                uri.clone()
            }
            _ => return Err(RequestError::Shown(Shown::BadRedirectUri)),
        };
        let state = once(&self.state)
            .filter(|s| s.len() <= MAX_STATE_LEN)
            .cloned();
        let refuse = |error: ErrorResponse| {
            RequestError::Redirect(ErrorRedirect {
                redirect_uri: redirect_uri.clone(),
                state: state.clone(),
                error,
            })
        };
        self.checks(client).map_err(refuse)?;
        let asked = self.scopes().next().map(String::as_str);
        let scope = granted_scope(asked, &client.scope).map_err(|err| {
            refuse(match err {
                GrantError::InvalidScope(why) => ErrorResponse::new(ErrorCode::InvalidScope, why),
                _ => ErrorResponse::new(ErrorCode::InvalidScope, "scope is not valid"),
            })
        })?;
        let mut resources: Vec<String> = Vec::new();
        for resource in &self.resource {
            if !resources.contains(resource) {
                resources.push(resource.clone());
            }
        }
        Ok(AuthorizationRequest {
            client_id: client.client_id.clone(),
            redirect_uri: redirect_uri.clone(),
            state,
            code_challenge: self.code_challenge.first().cloned().unwrap_or_default(),
            scope: Some(scope).filter(|s| !s.is_empty()),
            resources,
            scope_requested: asked.is_some(),
        })
    }

    /// Every check once the redirect URI is verified, in the order a client would fix
    /// them.
    fn checks(&self, client: &ClientRecord) -> Result<(), ErrorResponse> {
        use ErrorCode::*;
        let fail = |code, why| Err(ErrorResponse::new(code, why));
        if self.repeated() {
            return fail(InvalidRequest, "a parameter is repeated");
        }
        if self.state.iter().any(|s| s.len() > MAX_STATE_LEN) {
            return fail(InvalidRequest, "state is too long");
        }
        match self.response_type.first().map(String::as_str) {
            None => return fail(InvalidRequest, "missing parameter response_type"),
            Some("code") => {}
            Some(_) => return fail(UnsupportedResponseType, "response_type must be code"),
        }
        if !client
            .policy
            .grant_types
            .contains(&GrantType::AuthorizationCode)
        {
            return fail(
                UnauthorizedClient,
                "the client is not registered for the authorization code grant",
            );
        }
        let Some(challenge) = self.code_challenge.first() else {
            return fail(
                InvalidRequest,
                "code_challenge is required (PKCE with S256)",
            );
        };
        if self.code_challenge_method.first().map(String::as_str) != Some(pkce::S256) {
            return fail(InvalidRequest, "code_challenge_method must be S256");
        }
        if !pkce::valid_challenge(challenge) {
            return fail(
                InvalidRequest,
                "code_challenge is not a valid S256 challenge",
            );
        }
        if self.resource.len() > MAX_RESOURCES {
            return fail(InvalidTarget, "too many resource parameters");
        }
        if !self.resource.iter().all(|r| valid_resource_uri(r)) {
            return fail(
                InvalidTarget,
                "resource must be an absolute URI without a fragment",
            );
        }
        Ok(())
    }
}

impl AuthorizationRequest {
    /// The request as a query string that [`parse`] and [`RawRequest::validate`] read
    /// back to this same value: what carries it through the sign-in pages.
    pub fn to_query(&self) -> String {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("response_type", "code");
        query.append_pair("client_id", &self.client_id);
        query.append_pair("redirect_uri", &self.redirect_uri);
        query.append_pair("code_challenge", &self.code_challenge);
        query.append_pair("code_challenge_method", pkce::S256);
        if let Some(state) = &self.state {
            query.append_pair("state", state);
        }
        if self.scope_requested {
            query.append_pair("scope", self.scope.as_deref().unwrap_or(""));
        }
        for resource in &self.resources {
            query.append_pair("resource", resource);
        }
        query.finish()
    }

    /// Where a refusal of this request is sent.
    pub fn refusal(&self, error: ErrorResponse) -> ErrorRedirect {
        ErrorRedirect {
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.clone(),
            error,
        }
    }

    /// Where the browser goes back to, for the consent page.
    pub fn return_to(&self) -> ReturnTo {
        match redirect_kind(&self.redirect_uri) {
            Some(RedirectKind::Https) => url::Url::parse(&self.redirect_uri)
                .ok()
                .and_then(|url| url.host_str().map(ReturnTo::host))
                .unwrap_or(ReturnTo::ThisDevice),
            Some(RedirectKind::Loopback) => ReturnTo::ThisComputer,
            // A private-use scheme names no host, and any application may claim it: never
            // shown as if it were one.
            Some(RedirectKind::PrivateUse) | None => ReturnTo::ThisDevice,
        }
    }
}

/// Where the consent page says the browser returns to (RFC 8252 §7).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnTo {
    /// An https redirect URI: its host.
    Host(String),
    /// A loopback redirect URI: a program on this computer, whatever its port.
    ThisComputer,
    /// A private-use scheme: an application on this device.
    ThisDevice,
}

impl ReturnTo {
    fn host(host: &str) -> Self {
        ReturnTo::Host(host.to_owned())
    }

    /// The host, when it is one.
    pub fn host_name(&self) -> Option<&str> {
        match self {
            ReturnTo::Host(host) => Some(host),
            _ => None,
        }
    }

    /// What the page says when it is not a host.
    pub fn described(&self) -> &'static str {
        match self {
            ReturnTo::Host(_) => "a web site",
            ReturnTo::ThisComputer => "an application on this computer",
            ReturnTo::ThisDevice => "an application on this device",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretHash;
    use crate::store::ClientPolicy;
    use crate::vocabulary::AuthMethod;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    const REDIRECT: &str = "https://app.example/callback?tenant=1";

    fn client() -> ClientRecord {
        ClientRecord {
            client_id: "app".to_owned(),
            name: "App".to_owned(),
            secret_hash: SecretHash::new(""),
            auth_method: AuthMethod::None,
            scope: "read write".to_owned(),
            audiences: vec![],
            redirect_uris: vec![REDIRECT.to_owned(), "http://127.0.0.1/cb".to_owned()],
            policy: ClientPolicy {
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                ..ClientPolicy::default()
            },
            disabled: false,
            created_at: 0,
            updated_at: 0,
            origin: Default::default(),
            last_used_at: None,
            client_uri: None,
            logo_uri: None,
            application_type: None,
            previous_secret: None,
        }
    }

    fn query(extra: &[(&str, &str)], without: &[&str]) -> String {
        let mut pairs = vec![
            ("response_type", "code"),
            ("client_id", "app"),
            ("redirect_uri", REDIRECT),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("state", "xyz"),
        ];
        pairs.retain(|(name, _)| !without.contains(name));
        pairs.extend_from_slice(extra);
        serde_urlencoded::to_string(pairs).unwrap()
    }

    fn validate(query: &str) -> Result<AuthorizationRequest, RequestError> {
        parse(query).validate(Some(&client()))
    }

    fn redirected(result: Result<AuthorizationRequest, RequestError>) -> ErrorRedirect {
        match result {
            Err(RequestError::Redirect(to)) => to,
            other => panic!("expected a redirect, got {other:?}"),
        }
    }

    fn code(result: Result<AuthorizationRequest, RequestError>) -> ErrorCode {
        redirected(result).error.code
    }

    #[test]
    fn a_complete_request_is_read() {
        let request = validate(&query(
            &[
                ("scope", "read"),
                ("resource", "https://mcp.example/"),
                ("resource", "https://mcp.example/"),
            ],
            &[],
        ))
        .unwrap();
        assert_eq!(request.client_id, "app");
        assert_eq!(request.redirect_uri, REDIRECT);
        assert_eq!(request.state.as_deref(), Some("xyz"));
        assert_eq!(request.code_challenge, CHALLENGE);
        assert_eq!(request.scope.as_deref(), Some("read"));
        assert_eq!(request.resources, vec!["https://mcp.example/"]);
    }

    #[test]
    fn the_request_reads_back_from_its_query() {
        for extra in [
            vec![],
            vec![("scope", "write read"), ("resource", "urn:a")],
            vec![("resource", "urn:a"), ("resource", "urn:b")],
        ] {
            let request = validate(&query(&extra, &[])).unwrap();
            assert_eq!(validate(&request.to_query()).unwrap(), request);
        }
        let request = validate(&query(&[], &["state"])).unwrap();
        assert_eq!(validate(&request.to_query()).unwrap(), request);
    }

    #[test]
    fn no_scope_asked_means_the_registered_scope() {
        let request = validate(&query(&[], &[])).unwrap();
        assert_eq!(request.scope.as_deref(), Some("read write"));
        let mut narrow = client();
        narrow.scope = String::new();
        let request = parse(&query(&[], &[])).validate(Some(&narrow)).unwrap();
        assert_eq!(request.scope, None);
    }

    #[test]
    fn an_unknown_client_is_shown_never_redirected_to() {
        let raw = parse(&query(&[], &[]));
        assert_eq!(
            raw.validate(None),
            Err(RequestError::Shown(Shown::UnknownClient))
        );
        let mut disabled = client();
        disabled.disabled = true;
        assert_eq!(
            raw.validate(Some(&disabled)),
            Err(RequestError::Shown(Shown::UnknownClient))
        );
        let raw = parse(&query(&[], &["client_id"]));
        assert_eq!(raw.client_id(), Err(Shown::MissingClient));
        let raw = parse(&query(&[("client_id", "app")], &[]));
        assert_eq!(raw.client_id(), Err(Shown::MissingClient), "repeated");
    }

    #[test]
    fn a_redirect_uri_not_registered_is_shown_never_redirected_to() {
        for bad in [
            query(&[], &["redirect_uri"]),
            query(
                &[("redirect_uri", "https://evil.example/")],
                &["redirect_uri"],
            ),
            query(
                &[("redirect_uri", "https://app.example/callback")],
                &["redirect_uri"],
            ),
            query(&[("redirect_uri", REDIRECT)], &[]),
        ] {
            assert_eq!(
                validate(&bad),
                Err(RequestError::Shown(Shown::BadRedirectUri)),
                "{bad}"
            );
        }
        // Even with every other parameter wrong, the redirect URI is judged first.
        let bad = query(
            &[("redirect_uri", "https://evil.example/")],
            &["redirect_uri", "response_type", "code_challenge"],
        );
        assert_eq!(
            validate(&bad),
            Err(RequestError::Shown(Shown::BadRedirectUri))
        );
    }

    #[test]
    fn loopback_redirects_match_on_any_port() {
        let request = validate(&query(
            &[("redirect_uri", "http://127.0.0.1:49152/cb")],
            &["redirect_uri"],
        ))
        .unwrap();
        assert_eq!(request.redirect_uri, "http://127.0.0.1:49152/cb");
    }

    #[test]
    fn errors_after_the_redirect_uri_go_back_with_state() {
        let to = redirected(validate(&query(&[], &["response_type"])));
        assert_eq!(to.redirect_uri, REDIRECT);
        assert_eq!(to.state.as_deref(), Some("xyz"));
        assert_eq!(to.error.code, ErrorCode::InvalidRequest);
        assert_eq!(
            code(validate(&query(
                &[("response_type", "token")],
                &["response_type"]
            ))),
            ErrorCode::UnsupportedResponseType
        );
    }

    #[test]
    fn pkce_is_required_with_s256() {
        for without in ["code_challenge", "code_challenge_method"] {
            assert_eq!(
                code(validate(&query(&[], &[without]))),
                ErrorCode::InvalidRequest,
                "{without}"
            );
        }
        let plain = query(
            &[("code_challenge_method", "plain")],
            &["code_challenge_method"],
        );
        assert_eq!(code(validate(&plain)), ErrorCode::InvalidRequest);
        let short = query(&[("code_challenge", "abc")], &["code_challenge"]);
        assert_eq!(code(validate(&short)), ErrorCode::InvalidRequest);
    }

    #[test]
    fn a_client_without_the_grant_is_unauthorized() {
        let mut other = client();
        other.policy.grant_types = vec![GrantType::ClientCredentials];
        let result = parse(&query(&[], &[])).validate(Some(&other));
        assert_eq!(code(result), ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn scope_beyond_the_registered_one_is_invalid_scope() {
        assert_eq!(
            code(validate(&query(&[("scope", "read admin")], &[]))),
            ErrorCode::InvalidScope
        );
        assert_eq!(
            code(validate(&query(&[("scope", "a\"b")], &[]))),
            ErrorCode::InvalidScope
        );
    }

    #[test]
    fn resources_must_be_absolute_uris() {
        for bad in ["api", "https://a.example/#f"] {
            assert_eq!(
                code(validate(&query(&[("resource", bad)], &[]))),
                ErrorCode::InvalidTarget,
                "{bad}"
            );
        }
        let many: Vec<(&str, &str)> = (0..=MAX_RESOURCES).map(|_| ("resource", "urn:a")).collect();
        assert_eq!(code(validate(&query(&many, &[]))), ErrorCode::InvalidTarget);
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let to = redirected(validate(&query(
            &[("scope", "read"), ("scope", "write")],
            &[],
        )));
        assert_eq!(to.error.code, ErrorCode::InvalidRequest);
        assert_eq!(to.state.as_deref(), Some("xyz"));
        let to = redirected(validate(&query(&[("state", "abc")], &[])));
        assert_eq!(to.error.code, ErrorCode::InvalidRequest);
        assert_eq!(to.state, None, "which state is meant cannot be told");
    }

    #[test]
    fn a_long_state_is_refused_and_not_sent_back() {
        let long = "s".repeat(MAX_STATE_LEN + 1);
        let to = redirected(validate(&query(&[("state", &long)], &["state"])));
        assert_eq!(to.error.code, ErrorCode::InvalidRequest);
        assert_eq!(to.state, None);
    }

    #[test]
    fn empty_values_count_as_omitted() {
        let to = redirected(validate(&query(
            &[("response_type", "")],
            &["response_type"],
        )));
        assert_eq!(to.error.description, "missing parameter response_type");
    }

    #[test]
    fn debug_leaves_out_state_and_challenge() {
        let request = validate(&query(&[("state", "secret-state")], &["state"])).unwrap();
        let shown = format!(
            "{request:?} {:?}",
            request.refusal(ErrorResponse::new(ErrorCode::AccessDenied, "x"))
        );
        assert!(!shown.contains("secret-state"), "{shown}");
        assert!(!shown.contains(CHALLENGE), "{shown}");
    }

    #[test]
    fn the_page_names_a_host_only_for_https() {
        let mut request = validate(&query(&[], &[])).unwrap();
        assert_eq!(request.return_to(), ReturnTo::host("app.example"));
        request.redirect_uri = "http://127.0.0.1:49152/cb".to_owned();
        assert_eq!(request.return_to(), ReturnTo::ThisComputer);
        for private in ["com.example.app:/oauth", "com.example.app://callback"] {
            request.redirect_uri = private.to_owned();
            assert_eq!(request.return_to(), ReturnTo::ThisDevice, "{private}");
            assert_eq!(request.return_to().host_name(), None);
        }
    }

    #[test]
    fn every_client_but_an_operators_is_self_registered() {
        use crate::vocabulary::ClientOrigin;
        for origin in ClientOrigin::ALL {
            let client = ClientRecord { origin, ..client() };
            assert_eq!(
                crate::signin::self_registered(&client),
                origin != ClientOrigin::Operator,
                "{origin:?}"
            );
            assert_eq!(ClientOrigin::parse(origin.as_str()), Some(origin));
        }
    }
}
