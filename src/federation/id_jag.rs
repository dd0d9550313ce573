//! The claims of an Identity Assertion JWT Authorization Grant (ID-JAG,
//! draft-ietf-oauth-identity-assertion-authz-grant; the MCP enterprise-managed
//! authorization extension), as an organisation's provider issues it for one of its
//! people and one MCP client, and the rules they must meet here: plain functions of the
//! claims, what is expected of them and `now`. The signature is checked before these
//! rules run, against the provider's published keys.

use serde::Deserialize;

use crate::token::claims::Audience;

/// The `typ` header of an ID-JAG.
pub const TYP: &str = "oauth-id-jag+jwt";

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
            Refusal::OtherIssuer => "iss is not the provider",
            Refusal::OtherAudience => "aud does not name this server",
            Refusal::OtherClient => "client_id is not the authenticated client",
            Refusal::NoSubject => "sub is empty",
            Refusal::NoJti => "jti is empty",
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
    if claims.jti.is_empty() {
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
        }
    }

    #[test]
    fn a_current_assertion_for_this_server_and_client_is_accepted() {
        assert_eq!(judge(&claims(), &expected(), NOW), Ok(()));
    }

    #[test]
    fn each_wrong_claim_is_refused_for_its_own_reason() {
        type Spoil = fn(&mut IdJagClaims);
        let cases: [(Spoil, Refusal); 10] = [
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
}
