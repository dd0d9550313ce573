//! The redirect back to the client (OAuth 2.1 §4.1.2, RFC 9207): the code or the error,
//! the request's `state` and the issuer, added to the query the registered redirect URI
//! already has.

use url::Url;

use super::request::ErrorRedirect;

/// `redirect_uri?code=…&state=…&iss=…`; `None` when the URI is not one (never for a
/// registered one, which was read as a URL when it was registered).
pub fn with_code(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> Option<Url> {
    let mut params = vec![("code", code)];
    params.extend(state.map(|state| ("state", state)));
    params.push(("iss", issuer));
    with_params(redirect_uri, &params)
}

/// `redirect_uri?error=…&error_description=…&state=…&iss=…`.
pub fn with_error(to: &ErrorRedirect, issuer: &str) -> Option<Url> {
    let mut params = vec![
        ("error", to.error.code.as_str()),
        ("error_description", to.error.description),
    ];
    params.extend(to.state.as_deref().map(|state| ("state", state)));
    params.push(("iss", issuer));
    with_params(&to.redirect_uri, &params)
}

/// The URI with `params` appended to its query, which is kept as it is (OAuth 2.1
/// §4.1.2: the query component of a registered redirect URI must be retained).
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> Option<Url> {
    let mut url = Url::parse(redirect_uri).ok()?;
    url.query_pairs_mut().extend_pairs(params);
    Some(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::request::{ErrorCode, ErrorResponse};

    const ISSUER: &str = "https://as.example";

    fn code(redirect_uri: &str, code: &str, state: Option<&str>) -> String {
        with_code(redirect_uri, code, state, ISSUER)
            .unwrap()
            .to_string()
    }

    fn pairs(uri: &str) -> Vec<(String, String)> {
        url::Url::parse(uri)
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn a_code_goes_back_with_state_and_issuer() {
        let uri = code("https://app.example/cb", "c0de", Some("a b&c"));
        assert!(
            uri.starts_with("https://app.example/cb?code=c0de&"),
            "{uri}"
        );
        assert_eq!(
            pairs(&uri),
            owned(&[("code", "c0de"), ("state", "a b&c"), ("iss", ISSUER)])
        );
        let uri = code("https://app.example/cb", "c0de", None);
        assert_eq!(pairs(&uri), owned(&[("code", "c0de"), ("iss", ISSUER)]));
    }

    #[test]
    fn the_registered_query_is_kept_as_it_was() {
        let uri = code("https://app.example/cb?tenant=a%2Fb&x", "c", None);
        assert!(
            uri.starts_with("https://app.example/cb?tenant=a%2Fb&x&code=c&iss="),
            "{uri}"
        );
        let uri = code("https://app.example/cb?", "c", None);
        assert!(uri.starts_with("https://app.example/cb?code=c&"), "{uri}");
    }

    #[test]
    fn private_use_and_loopback_uris_take_the_parameters_too() {
        let uri = code("com.example.app:/oauth", "c", Some("s"));
        assert_eq!(
            uri,
            "com.example.app:/oauth?code=c&state=s&iss=https%3A%2F%2Fas.example"
        );
        let uri = code("http://127.0.0.1:5173/cb", "c", None);
        assert_eq!(pairs(&uri), owned(&[("code", "c"), ("iss", ISSUER)]));
    }

    #[test]
    fn what_is_not_a_uri_goes_nowhere() {
        assert!(with_code("not a uri", "c", None, ISSUER).is_none());
    }

    #[test]
    fn an_error_goes_back_with_its_description_state_and_issuer() {
        let to = ErrorRedirect {
            redirect_uri: "https://app.example/cb?tenant=1".to_owned(),
            state: Some("xyz".to_owned()),
            error: ErrorResponse::new(ErrorCode::AccessDenied, "the user denied the request"),
        };
        let uri = with_error(&to, ISSUER).unwrap().to_string();
        assert_eq!(
            pairs(&uri),
            owned(&[
                ("tenant", "1"),
                ("error", "access_denied"),
                ("error_description", "the user denied the request"),
                ("state", "xyz"),
                ("iss", ISSUER),
            ])
        );
        let without_state = ErrorRedirect { state: None, ..to };
        let uri = with_error(&without_state, ISSUER).unwrap().to_string();
        assert!(!uri.contains("state="));
    }
}
