//! RFC 7662 introspection: find the token, decide whether it is active and whether the
//! caller may see it. The decisions are plain functions over plain data.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use utoipa::PartialSchema;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};

use crate::cache::View;
use crate::config::Config;
use crate::policy::{Source, TokenState, search_order, token_state};
use crate::store::{ClientRecord, StoreError, TokenRecord};
use crate::token::claims::TokenInfo;
use crate::token::jwt::{JwtRejection, check_times};
use crate::token::keyring::KeyRing;
use crate::token::opaque;
use crate::vocabulary::TokenUse;

/// Why a token reads inactive. Never shown to callers (RFC 7662 §2.2 answers only
/// `{"active": false}`); kept for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Inactive {
    Unknown,
    Malformed,
    Expired,
    NotYetValid,
    Revoked,
    BadSignature,
    UnknownKey,
    UntrustedIssuer,
    ClientUnusable,
    NotVisible,
}

impl Inactive {
    pub fn as_str(self) -> &'static str {
        match self {
            Inactive::Unknown => "unknown",
            Inactive::Malformed => "malformed",
            Inactive::Expired => "expired",
            Inactive::NotYetValid => "not_yet_valid",
            Inactive::Revoked => "revoked",
            Inactive::BadSignature => "bad_signature",
            Inactive::UnknownKey => "unknown_key",
            Inactive::UntrustedIssuer => "untrusted_issuer",
            Inactive::ClientUnusable => "client_unusable",
            Inactive::NotVisible => "not_visible",
        }
    }
}

impl From<JwtRejection> for Inactive {
    fn from(rejection: JwtRejection) -> Self {
        match rejection {
            JwtRejection::Malformed | JwtRejection::WrongType | JwtRejection::UnsupportedHeader => {
                Inactive::Malformed
            }
            JwtRejection::UnknownKey | JwtRejection::WrongAlgorithm => Inactive::UnknownKey,
            JwtRejection::BadSignature => Inactive::BadSignature,
            JwtRejection::Expired => Inactive::Expired,
            JwtRejection::NotYetValid => Inactive::NotYetValid,
            JwtRejection::UntrustedIssuer => Inactive::UntrustedIssuer,
        }
    }
}

/// The outcome of introspecting one token.
// Built once per request and consumed at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Active(TokenInfo),
    Inactive(Inactive),
}

/// The JSON body of an RFC 7662 §2.2 answer.
#[derive(Serialize)]
pub struct Response<'a> {
    pub active: bool,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub info: Option<&'a TokenInfo>,
}

/// `ActiveToken` or `InactiveToken`: the active answer is [`TokenInfo`] with
/// `"active": true`, and nothing beyond it.
impl utoipa::PartialSchema for Response<'_> {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name("ActiveToken"))
            .item(Ref::from_schema_name("InactiveToken"))
            .into()
    }
}

impl utoipa::ToSchema for Response<'_> {
    fn name() -> Cow<'static, str> {
        "IntrospectionResponse".into()
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        let active = |value: bool| {
            ObjectBuilder::new()
                .schema_type(Type::Boolean)
                .enum_values(Some([value]))
        };
        let mut token = ObjectBuilder::new()
            .property("active", active(true))
            .required("active");
        if let RefOr::T(Schema::Object(info)) = TokenInfo::schema() {
            token = token.description(info.description);
            for (name, property) in info.properties {
                token = token.property(name, property);
            }
            for name in info.required {
                token = token.required(name);
            }
        }
        let closed = Some(AdditionalProperties::FreeForm(false));
        schemas.push((
            "ActiveToken".into(),
            token.additional_properties(closed.clone()).into(),
        ));
        let inactive = ObjectBuilder::new()
            .description(Some(INACTIVE))
            .property("active", active(false))
            .required("active")
            .additional_properties(closed);
        schemas.push(("InactiveToken".into(), inactive.into()));
        TokenInfo::schemas(schemas);
    }
}

/// What an inactive answer stands for, as published.
const INACTIVE: &str = "Unknown, malformed, expired, not yet valid, revoked, signed by an \
    unknown key or algorithm, from an untrusted issuer, held by a disabled or deleted client, \
    or not visible to the caller: nothing else is said (RFC 7662 section 2.2).";

impl Answer {
    pub fn response(&self) -> Response<'_> {
        match self {
            Answer::Active(info) => Response {
                active: true,
                info: Some(info),
            },
            Answer::Inactive(_) => Response {
                active: false,
                info: None,
            },
        }
    }
}

/// A compact JWS has exactly three dot-separated parts.
fn looks_like_jwt(token: &str) -> bool {
    token.bytes().filter(|b| *b == b'.').count() == 2
}

/// Whether a stored opaque token is usable at `now`.
pub fn opaque_state(record: &TokenRecord, now: i64) -> Result<(), Inactive> {
    let revoked = record.revoked_at.is_some();
    match token_state(revoked, record.exp, record.nbf, now, 0) {
        TokenState::Active => Ok(()),
        TokenState::Revoked => Err(Inactive::Revoked),
        TokenState::Expired => Err(Inactive::Expired),
        TokenState::NotYetValid => Err(Inactive::NotYetValid),
    }
}

/// RFC 7662 §4: a client sees tokens issued to itself and access tokens meant for one
/// of the audiences registered for it. A refresh token stays between its client and the
/// authorization server (RFC 9700 §4.14): only its own client sees it.
pub fn visible_to(info: &TokenInfo, caller: &ClientRecord) -> bool {
    info.client_id == caller.client_id
        || (info.token_use == TokenUse::AccessToken && info.aud.contains_any(&caller.audiences))
}

/// A token is only as good as the client holding it: gone or disabled means inactive.
pub fn owner_usable(owner: Option<&ClientRecord>) -> bool {
    owner.is_some_and(|c| !c.disabled)
}

/// Finds and judges tokens, with the key ring and the view each request hands it.
#[derive(Clone)]
pub struct Introspector {
    issuer: Arc<str>,
    leeway: i64,
}

impl Introspector {
    pub fn new(config: &Config) -> Self {
        Introspector {
            issuer: config.issuer.as_str().into(),
            leeway: i64::try_from(config.jwt.leeway_seconds).unwrap_or(0),
        }
    }

    /// Answers for `token` as seen by `caller`, an authenticated and enabled client, at
    /// `now`; a JWT is verified with `keys`.
    pub async fn introspect(
        &self,
        keys: &KeyRing,
        view: &View,
        caller: &ClientRecord,
        token: &str,
        hint: Option<TokenUse>,
        now: i64,
    ) -> Result<Answer, StoreError> {
        let info = match self.find(keys, view, token, hint, now).await? {
            Ok(info) => info,
            Err(reason) => return Ok(Answer::Inactive(reason)),
        };
        if !visible_to(&info, caller) {
            return Ok(Answer::Inactive(Inactive::NotVisible));
        }
        let usable = if info.client_id == caller.client_id {
            owner_usable(Some(caller))
        } else {
            owner_usable(view.client(&info.client_id).await?.as_deref())
        };
        if !usable {
            return Ok(Answer::Inactive(Inactive::ClientUnusable));
        }
        Ok(Answer::Active(info))
    }

    async fn find(
        &self,
        keys: &KeyRing,
        view: &View,
        token: &str,
        hint: Option<TokenUse>,
        now: i64,
    ) -> Result<Result<TokenInfo, Inactive>, StoreError> {
        let mut reason = Inactive::Unknown;
        for source in search_order(hint) {
            let found = match source {
                Source::Signed if looks_like_jwt(token) => {
                    self.find_jwt(keys, view, token, now).await?
                }
                Source::Signed => continue,
                Source::Stored => self.find_opaque(view, token, now).await?,
            };
            match found {
                Ok(info) => return Ok(Ok(info)),
                // The most telling reason wins: a JWT's rejection over "not in the store".
                Err(Inactive::Unknown) => {}
                Err(other) => reason = other,
            }
        }
        Ok(Err(reason))
    }

    async fn find_jwt(
        &self,
        keys: &KeyRing,
        view: &View,
        token: &str,
        now: i64,
    ) -> Result<Result<TokenInfo, Inactive>, StoreError> {
        let claims = match keys
            .verify(view.keys_generation(), view.cached(), token)
            .await
        {
            Ok(claims) => claims,
            Err(rejection) => return Ok(Err(rejection.into())),
        };
        if let Err(rejection) = check_times(&claims, now, self.leeway) {
            return Ok(Err(rejection.into()));
        }
        if view.is_jti_revoked(&claims.jti).await? {
            return Ok(Err(Inactive::Revoked));
        }
        Ok(Ok(TokenInfo::from((*claims).clone())))
    }

    async fn find_opaque(
        &self,
        view: &View,
        token: &str,
        now: i64,
    ) -> Result<Result<TokenInfo, Inactive>, StoreError> {
        let Some(record) = view.token(&opaque::digest(token)).await? else {
            return Ok(Err(Inactive::Unknown));
        };
        Ok(opaque_state(&record, now)
            .map(|()| TokenInfo::from_record((*record).clone(), &self.issuer)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::SecretHash;
    use crate::token::claims::{Audience, TokenType};
    use crate::vocabulary::AuthMethod;

    fn client(id: &str, audiences: &[&str]) -> ClientRecord {
        ClientRecord {
            client_id: id.to_owned(),
            name: id.to_owned(),
            secret_hash: SecretHash::new("x"),
            auth_method: AuthMethod::ClientSecretBasic,
            scope: String::new(),
            audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
            redirect_uris: vec![],
            policy: Default::default(),
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

    fn info(client_id: &str, aud: &[&str]) -> TokenInfo {
        TokenInfo {
            scope: None,
            client_id: client_id.to_owned(),
            username: None,
            token_type: Some(TokenType::Bearer),
            token_use: TokenUse::AccessToken,
            exp: 10,
            iat: 0,
            nbf: None,
            sub: None,
            aud: Audience(aud.iter().map(|a| (*a).to_owned()).collect()),
            iss: None,
            jti: "j".to_owned(),
            act: None,
        }
    }

    fn record(exp: i64) -> TokenRecord {
        TokenRecord {
            digest: [0; 32],
            token_use: TokenUse::RefreshToken,
            client_id: "c".to_owned(),
            sub: None,
            username: None,
            scope: None,
            audiences: vec![],
            jti: "j".to_owned(),
            iat: 0,
            nbf: None,
            exp,
            revoked_at: None,
            user_id: None,
        }
    }

    #[test]
    fn owner_sees_its_own_token() {
        assert!(visible_to(&info("a", &[]), &client("a", &[])));
    }

    #[test]
    fn resource_server_sees_tokens_for_its_audience_only() {
        let rs = client("rs", &["https://api.example"]);
        assert!(visible_to(&info("a", &["https://api.example", "x"]), &rs));
        assert!(!visible_to(&info("a", &["https://other.example"]), &rs));
        assert!(!visible_to(&info("a", &[]), &rs));
    }

    #[test]
    fn refresh_tokens_are_seen_by_their_own_client_only() {
        let rs = client("rs", &["https://api.example"]);
        let mut refresh = info("a", &["https://api.example"]);
        refresh.token_use = TokenUse::RefreshToken;
        assert!(!visible_to(&refresh, &rs));
        assert!(visible_to(&refresh, &client("a", &[])));
    }

    #[test]
    fn opaque_token_is_expired_at_exp() {
        assert_eq!(opaque_state(&record(100), 99), Ok(()));
        assert_eq!(opaque_state(&record(100), 100), Err(Inactive::Expired));
    }

    #[test]
    fn revoked_wins_over_everything() {
        let mut r = record(100);
        r.revoked_at = Some(1);
        assert_eq!(opaque_state(&r, 0), Err(Inactive::Revoked));
    }

    #[test]
    fn not_yet_valid_opaque_token() {
        let mut r = record(100);
        r.nbf = Some(50);
        assert_eq!(opaque_state(&r, 49), Err(Inactive::NotYetValid));
        assert_eq!(opaque_state(&r, 50), Ok(()));
    }

    #[test]
    fn disabled_or_missing_owner_is_unusable() {
        let mut c = client("a", &[]);
        assert!(owner_usable(Some(&c)));
        c.disabled = true;
        assert!(!owner_usable(Some(&c)));
        assert!(!owner_usable(None));
    }

    #[test]
    fn inactive_answer_is_bare() {
        let answer = Answer::Inactive(Inactive::Revoked);
        assert_eq!(
            serde_json::to_string(&answer.response()).unwrap(),
            r#"{"active":false}"#
        );
    }

    #[test]
    fn active_answer_omits_absent_fields() {
        let answer = Answer::Active(info("a", &["x"]));
        let json = serde_json::to_value(answer.response()).unwrap();
        assert_eq!(json["active"], true);
        assert_eq!(json["aud"], "x");
        assert!(json.get("scope").is_none());
        assert!(json.get("username").is_none());
        assert!(json.as_object().unwrap().values().all(|v| !v.is_null()));
    }
}
