//! The claims of an Identity Assertion JWT Authorization Grant (ID-JAG,
//! draft-ietf-oauth-identity-assertion-authz-grant; the MCP enterprise-managed
//! authorization extension), as an organisation's provider issues it for one of its
//! people and one MCP client, and the rules they must meet here: plain functions of the
//! claims, what is expected of them and `now`. [`verify`] checks the header and the
//! signature against the provider's published keys before these rules run.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Header, Validation};
use serde::Deserialize;

use super::identity::Identity;
use crate::auth::assertion::{ALGORITHMS, select_key};
use crate::token::claims::Audience;

/// The `typ` header of an ID-JAG.
pub const TYP: &str = "oauth-id-jag+jwt";

/// Longest `jti` remembered for replay protection.
pub const MAX_JTI_LEN: usize = 256;

/// How far in the future `iat` may be: clocks differ a little.
pub const IAT_LEEWAY_SECONDS: i64 = 60;

/// What an ID-JAG says. Claims beyond these are ignored.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct IdJagClaims {
    /// The provider that issued it.
    pub iss: String,
    /// The person, as the provider names them.
    pub sub: String,
    /// This server's issuer.
    pub aud: Audience,
    /// The client it was issued for, which must be the one presenting it.
    pub client_id: String,
    /// Used once, across every instance.
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
    /// The resources the token may be for (RFC 8707), one or several.
    #[serde(default)]
    pub resource: Option<Audience>,
    /// Space-separated scopes.
    #[serde(default)]
    pub scope: Option<String>,
    /// Who the person is, as in an ID token (OIDC Core §5.1): what a first use links or
    /// creates a user from.
    #[serde(default)]
    pub email: Option<String>,
    /// Only `true` verifies the email; anything else does not.
    #[serde(default)]
    pub email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl IdJagClaims {
    /// The person, as a provider sign-in would name them.
    pub fn identity(&self) -> Identity {
        Identity {
            subject: self.sub.clone(),
            email: self.email.clone(),
            email_verified: self.email_verified == Some(serde_json::Value::Bool(true)),
            preferred_username: self.preferred_username.clone(),
            name: self.name.clone(),
        }
    }
}

/// What an ID-JAG must say to be used here.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    /// The provider's issuer, as configured.
    pub issuer: &'a str,
    /// This server's issuer.
    pub audience: &'a str,
    /// The authenticated client.
    pub client_id: &'a str,
    /// `login.id_jag_max_lifetime_seconds`.
    pub max_lifetime: i64,
}

/// Why an ID-JAG was refused: for the log only, since every refusal answers the one
/// `invalid_grant`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Not a JWT, or its claims are not an ID-JAG's.
    Malformed,
    /// The `typ` header is not [`TYP`].
    OtherType,
    /// An algorithm not accepted, or a critical extension.
    Algorithm,
    /// No key of the provider's fits the header.
    UnknownKey,
    BadSignature,
    /// No provider with `id_jag = true` has this issuer.
    UnknownProvider,
    /// The provider has not been discovered yet.
    ProviderUnavailable,
    OtherIssuer,
    OtherAudience,
    OtherClient,
    NoSubject,
    NoJti,
    Expired,
    IssuedInFuture,
    LivesTooLong,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Malformed => "not a JWT with the claims of an ID-JAG",
            Refusal::OtherType => "the typ header is not oauth-id-jag+jwt",
            Refusal::Algorithm => "the algorithm is not accepted, or a header is critical",
            Refusal::UnknownKey => "signed with a key the provider does not publish",
            Refusal::BadSignature => "the signature does not verify",
            Refusal::UnknownProvider => "no provider with id_jag = true has this issuer",
            Refusal::ProviderUnavailable => "the provider is not discovered yet",
            Refusal::OtherIssuer => "iss is not the provider",
            Refusal::OtherAudience => "aud does not name this server",
            Refusal::OtherClient => "client_id is not the authenticated client",
            Refusal::NoSubject => "sub is empty",
            Refusal::NoJti => "jti is empty or too long",
            Refusal::Expired => "expired",
            Refusal::IssuedInFuture => "iat is in the future",
            Refusal::LivesTooLong => "exp is too far after iat",
        }
    }
}

/// Judges the claims of an ID-JAG whose signature verified, at `now`: issued by the
/// provider, for this server alone, for the client presenting it, about someone, once
/// (a `jti`), current, and short-lived.
pub fn judge(claims: &IdJagClaims, expected: &Expected<'_>, now: i64) -> Result<(), Refusal> {
    if claims.iss != expected.issuer {
        return Err(Refusal::OtherIssuer);
    }
    // The draft names one audience: this server. A list naming others as well would let
    // one assertion be spent at several servers.
    if claims.aud.0.as_slice() != [expected.audience] {
        return Err(Refusal::OtherAudience);
    }
    if claims.client_id != expected.client_id {
        return Err(Refusal::OtherClient);
    }
    if claims.sub.is_empty() {
        return Err(Refusal::NoSubject);
    }
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err(Refusal::NoJti);
    }
    if claims.exp <= now {
        return Err(Refusal::Expired);
    }
    if claims.iat > now.saturating_add(IAT_LEEWAY_SECONDS) {
        return Err(Refusal::IssuedInFuture);
    }
    if claims.exp.saturating_sub(claims.iat) > expected.max_lifetime {
        return Err(Refusal::LivesTooLong);
    }
    Ok(())
}

/// The issuer an assertion names, before anything is verified: only to find which
/// provider's keys to verify it with.
pub fn named_issuer(jwt: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Unverified {
        iss: String,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(jwt)
        .ok()
        .map(|claims| claims.iss)
}

/// The claims of an assertion whose header says it is an ID-JAG (RFC 8725 §3.11: the
/// explicit type keeps an ID token or an access token of the same provider from being
/// taken for one) and whose signature verifies with one of `keys`, by an asymmetric
/// algorithm. Nothing of the claims is judged here: see [`judge`].
pub fn verify(jwt: &str, keys: &JwkSet) -> Result<IdJagClaims, Refusal> {
    let header = jsonwebtoken::decode_header(jwt).map_err(|_| Refusal::Malformed)?;
    if !header.typ.as_deref().is_some_and(is_id_jag_type) {
        return Err(Refusal::OtherType);
    }
    check_header(&header)?;
    let key = select_key(keys, &header).ok_or(Refusal::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    // The claims are judged against the request's `now` by `judge`.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    match jsonwebtoken::decode::<IdJagClaims>(jwt, &key, &validation) {
        Ok(data) => Ok(data.claims),
        Err(err) if *err.kind() == ErrorKind::InvalidSignature => Err(Refusal::BadSignature),
        Err(_) => Err(Refusal::Malformed),
    }
}

/// A `typ` naming the ID-JAG media type: with or without `application/`, in any case
/// (RFC 7515 §4.1.9).
fn is_id_jag_type(typ: &str) -> bool {
    let typ = typ.to_ascii_lowercase();
    typ.strip_prefix("application/").unwrap_or(&typ) == TYP
}

fn check_header(header: &Header) -> Result<(), Refusal> {
    if !ALGORITHMS.contains(&header.alg) || header.crit.is_some() {
        return Err(Refusal::Algorithm);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn expected() -> Expected<'static> {
        Expected {
            issuer: "https://idp.example",
            audience: "https://as.example",
            client_id: "mcp-client",
            max_lifetime: 300,
        }
    }

    fn claims() -> IdJagClaims {
        IdJagClaims {
            iss: "https://idp.example".to_owned(),
            sub: "00u123".to_owned(),
            aud: Audience(vec!["https://as.example".to_owned()]),
            client_id: "mcp-client".to_owned(),
            jti: "9f3c".to_owned(),
            iat: NOW - 10,
            exp: NOW + 290,
            resource: None,
            scope: None,
            email: None,
            email_verified: None,
            preferred_username: None,
            name: None,
        }
    }

    #[test]
    fn a_current_assertion_for_this_server_and_client_is_accepted() {
        assert_eq!(judge(&claims(), &expected(), NOW), Ok(()));
    }

    #[test]
    fn each_wrong_claim_is_refused_for_its_own_reason() {
        type Spoil = fn(&mut IdJagClaims);
        let cases: [(Spoil, Refusal); 11] = [
            (
                |c| c.iss = "https://other-idp.example".to_owned(),
                Refusal::OtherIssuer,
            ),
            (
                |c| c.aud.0 = vec!["https://other-as.example".to_owned()],
                Refusal::OtherAudience,
            ),
            (
                |c| c.aud.0.push("https://other-as.example".to_owned()),
                Refusal::OtherAudience,
            ),
            (|c| c.aud.0.clear(), Refusal::OtherAudience),
            (
                |c| c.client_id = "another-client".to_owned(),
                Refusal::OtherClient,
            ),
            (|c| c.sub.clear(), Refusal::NoSubject),
            (|c| c.jti.clear(), Refusal::NoJti),
            (|c| c.jti = "j".repeat(MAX_JTI_LEN + 1), Refusal::NoJti),
            (|c| c.exp = NOW, Refusal::Expired),
            (
                |c| c.iat = NOW + IAT_LEEWAY_SECONDS + 1,
                Refusal::IssuedInFuture,
            ),
            (|c| c.exp = c.iat + 301, Refusal::LivesTooLong),
        ];
        for (spoil, refusal) in cases {
            let mut claims = claims();
            spoil(&mut claims);
            assert_eq!(judge(&claims, &expected(), NOW), Err(refusal), "{claims:?}");
        }
    }

    #[test]
    fn clocks_may_differ_a_little() {
        let mut claims = claims();
        claims.iat = NOW + IAT_LEEWAY_SECONDS;
        claims.exp = claims.iat + 300;
        assert_eq!(judge(&claims, &expected(), NOW), Ok(()));
    }

    #[test]
    fn resource_and_scope_read_as_the_draft_writes_them() {
        let json = r#"{"iss":"https://idp.example","sub":"00u123","aud":"https://as.example",
            "client_id":"mcp-client","jti":"9f3c","iat":1,"exp":2,
            "resource":["https://mcp.example/a","https://mcp.example/b"],"scope":"read write",
            "email":"alice@example.com"}"#;
        let claims: IdJagClaims = serde_json::from_str(json).unwrap();
        assert_eq!(claims.aud.0, ["https://as.example"]);
        assert_eq!(claims.resource.unwrap().0.len(), 2);
        assert_eq!(claims.scope.as_deref(), Some("read write"));
        let one = json.replace(
            r#"["https://mcp.example/a","https://mcp.example/b"]"#,
            r#""https://mcp.example/a""#,
        );
        let claims: IdJagClaims = serde_json::from_str(&one).unwrap();
        assert_eq!(claims.resource.unwrap().0, ["https://mcp.example/a"]);
    }

    #[test]
    fn the_type_is_the_id_jag_media_type() {
        for typ in [TYP, "application/oauth-id-jag+jwt", "OAuth-ID-JAG+JWT"] {
            assert!(is_id_jag_type(typ), "{typ}");
        }
        for typ in ["JWT", "at+jwt", "oauth-id-jag", "text/oauth-id-jag+jwt", ""] {
            assert!(!is_id_jag_type(typ), "{typ}");
        }
    }

    #[test]
    fn only_a_verified_email_counts() {
        let mut claims = claims();
        claims.email = Some("alice@example.com".to_owned());
        assert!(!claims.identity().email_verified);
        claims.email_verified = Some(serde_json::Value::String("true".to_owned()));
        assert!(!claims.identity().email_verified);
        claims.email_verified = Some(serde_json::Value::Bool(true));
        assert!(claims.identity().email_verified);
        assert_eq!(claims.identity().subject, "00u123");
    }
}
