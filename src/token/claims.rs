//! What a token carries, whatever its format, and the JWT claim set of access tokens.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, Object, OneOfBuilder, Schema, Type};

use crate::store::TokenRecord;

use crate::vocabulary::TokenUse;

/// The `aud` claim: one audience is written as a string, several as an array (RFC 7519 §4.1.3).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Audience(pub Vec<String>);

impl Audience {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains_any(&self, others: &[String]) -> bool {
        self.0.iter().any(|a| others.contains(a))
    }
}

/// Described as it is written: a string or an array of strings.
impl utoipa::PartialSchema for Audience {
    fn schema() -> RefOr<Schema> {
        let string = || Object::with_type(Type::String);
        OneOfBuilder::new()
            .item(string())
            .item(ArrayBuilder::new().items(string()))
            .description(Some(
                "One audience as a string, several as an array (RFC 7519 section 4.1.3).",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Audience {}

impl Serialize for Audience {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.as_slice() {
            [one] => serializer.serialize_str(one),
            many => many.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Audience {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(one) => Audience(vec![one]),
            OneOrMany::Many(many) => Audience(many),
        })
    }
}

/// The `act` claim (RFC 8693 §4.1): the party acting for the token's subject, with the
/// party that acted before it nested inside, most recent outermost.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    /// The acting client's id.
    pub sub: String,
    /// The actor before this one, if the token was exchanged more than once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(no_recursion, nullable = false)]
    pub act: Option<Box<Actor>>,
}

impl Actor {
    /// `sub` acting, after whoever acted for the token it was given (`prior`).
    pub fn after(sub: String, prior: Option<Actor>) -> Self {
        Actor {
            sub,
            act: prior.map(Box::new),
        }
    }

    /// How many actors the chain names.
    pub fn depth(&self) -> usize {
        1 + self.act.as_ref().map_or(0, |prior| prior.depth())
    }
}

/// Claims of a JWT access token (RFC 9068 §2.2). Fields RFC 9068 requires, except `aud`,
/// are required here too: a token without them reads inactive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    #[serde(default, skip_serializing_if = "Audience::is_empty")]
    pub aud: Audience,
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    pub exp: i64,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    pub jti: String,
    /// Set on a token obtained by token exchange (RFC 8693 §4.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Actor>,
}

/// What introspection learns about a token that verified, before visibility and client
/// state are checked: the fields of an active RFC 7662 answer. Fields the token does not
/// carry are omitted, never null.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// Space-separated scopes (RFC 6749 section 3.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scope: Option<String>,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub username: Option<String>,
    /// `Bearer`, for access tokens only (RFC 7662 section 2.2).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, inline)]
    pub token_type: Option<TokenType>,
    pub token_use: TokenUse,
    pub exp: i64,
    pub iat: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub nbf: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Audience::is_empty")]
    #[schema(required = false, inline)]
    pub aud: Audience,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub iss: Option<String>,
    pub jti: String,
    /// Who acts for the subject: the client that exchanged a token for this one, with
    /// earlier actors nested (RFC 8693 section 4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub act: Option<Actor>,
}

/// The type of an access token: bearer tokens only (RFC 6750).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub enum TokenType {
    Bearer,
}

fn token_type(token_use: TokenUse) -> Option<TokenType> {
    match token_use {
        TokenUse::AccessToken => Some(TokenType::Bearer),
        TokenUse::RefreshToken => None,
    }
}

impl From<AccessClaims> for TokenInfo {
    fn from(c: AccessClaims) -> Self {
        TokenInfo {
            scope: c.scope,
            client_id: c.client_id,
            username: c.username,
            token_type: token_type(TokenUse::AccessToken),
            token_use: TokenUse::AccessToken,
            exp: c.exp,
            iat: c.iat,
            nbf: c.nbf,
            sub: Some(c.sub),
            aud: c.aud,
            iss: Some(c.iss),
            jti: c.jti,
            act: c.act,
        }
    }
}

impl TokenInfo {
    /// The answer for an opaque token; `issuer` is this server's, which minted it.
    pub fn from_record(record: TokenRecord, issuer: &str) -> Self {
        TokenInfo {
            scope: record.scope,
            client_id: record.client_id,
            username: record.username,
            token_type: token_type(record.token_use),
            token_use: record.token_use,
            exp: record.exp,
            iat: record.iat,
            nbf: record.nbf,
            sub: record.sub,
            aud: Audience(record.audiences),
            iss: Some(issuer.to_owned()),
            jti: record.jti,
            act: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audience_reads_string_or_array_and_writes_back_the_same_shape() {
        let one: Audience = serde_json::from_str("\"https://api\"").unwrap();
        assert_eq!(one.0, vec!["https://api"]);
        assert_eq!(serde_json::to_string(&one).unwrap(), "\"https://api\"");
        let many: Audience = serde_json::from_str("[\"a\",\"b\"]").unwrap();
        assert_eq!(serde_json::to_string(&many).unwrap(), "[\"a\",\"b\"]");
        assert!(serde_json::from_str::<Audience>("3").is_err());
    }

    #[test]
    fn access_claims_without_client_id_are_rejected() {
        let json = r#"{"iss":"i","sub":"s","exp":1,"iat":1,"jti":"j"}"#;
        assert!(serde_json::from_str::<AccessClaims>(json).is_err());
    }

    #[test]
    fn refresh_tokens_have_no_token_type() {
        assert_eq!(token_type(TokenUse::RefreshToken), None);
        assert_eq!(token_type(TokenUse::AccessToken), Some(TokenType::Bearer));
    }
}
