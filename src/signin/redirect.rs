//! The redirect back to the client (OAuth 2.1 §4.1.2, RFC 9207): the code or the error,
//! the request's `state` and the issuer, added to the query the registered redirect URI
//! already has.

use super::request::ErrorRedirect;

/// `redirect_uri?code=…&state=…&iss=…`.
pub fn with_code(redirect_uri: &str, code: &str, state: Option<&str>, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    params.extend(state.map(|state| ("state", state)));
    params.push(("iss", issuer));
    with_params(redirect_uri, &params)
}

/// `redirect_uri?error=…&error_description=…&state=…&iss=…`.
pub fn with_error(to: &ErrorRedirect, issuer: &str) -> String {
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
fn with_params(redirect_uri: &str, params: &[(&str, &str)]) -> String {
    let (base, query) = match redirect_uri.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (redirect_uri, None),
    };
    let mut added = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in params {
        added.append_pair(name, value);
    }
    let added = added.finish();
    match query {
        Some(query) if !query.is_empty() => format!("{base}?{query}&{added}"),
        _ => format!("{base}?{added}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signin::request::{ErrorCode, ErrorResponse};

    const ISSUER: &str = "https://as.example";

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
        let uri = with_code("https://app.example/cb", "c0de", Some("a b&c"), ISSUER);
        assert!(
            uri.starts_with("https://app.example/cb?code=c0de&"),
            "{uri}"
        );
        assert_eq!(
            pairs(&uri),
            owned(&[("code", "c0de"), ("state", "a b&c"), ("iss", ISSUER)])
        );
        let uri = with_code("https://app.example/cb", "c0de", None, ISSUER);
        assert_eq!(pairs(&uri), owned(&[("code", "c0de"), ("iss", ISSUER)]));
    }

    #[test]
    fn the_registered_query_is_kept_as_it_was() {
        let uri = with_code("https://app.example/cb?tenant=a%2Fb&x", "c", None, ISSUER);
        assert!(
            uri.starts_with("https://app.example/cb?tenant=a%2Fb&x&code=c&iss="),
            "{uri}"
        );
        let uri = with_code("https://app.example/cb?", "c", None, ISSUER);
        assert!(uri.starts_with("https://app.example/cb?code=c&"), "{uri}");
    }

    #[test]
    fn private_use_and_loopback_uris_take_the_parameters_too() {
        let uri = with_code("com.example.app:/oauth", "c", Some("s"), ISSUER);
        assert_eq!(
            uri,
            "com.example.app:/oauth?code=c&state=s&iss=https%3A%2F%2Fas.example"
        );
        let uri = with_code("http://127.0.0.1:5173/cb", "c", None, ISSUER);
        assert_eq!(pairs(&uri), owned(&[("code", "c"), ("iss", ISSUER)]));
    }

    #[test]
    fn an_error_goes_back_with_its_description_state_and_issuer() {
        let to = ErrorRedirect {
            redirect_uri: "https://app.example/cb?tenant=1".to_owned(),
            state: Some("xyz".to_owned()),
            error: ErrorResponse::new(ErrorCode::AccessDenied, "the user denied the request"),
        };
        let uri = with_error(&to, ISSUER);
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
        assert!(!with_error(&without_state, ISSUER).contains("state="));
    }
}
