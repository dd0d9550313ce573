//! The grants of the token endpoint: authorization codes with PKCE (OAuth 2.1 §4.1.3,
//! RFC 7636), client credentials (RFC 6749 §4.4), refresh tokens (RFC 6749 §6) with
//! rotation and reuse detection (RFC 9700 §4.14.2), token exchange (RFC 8693), and
//! identity assertions from the organisation's provider ([`identity_assertion`]).
//! Access tokens are JWTs (RFC 9068); refresh tokens are opaque and stored by digest.

mod identity_assertion;

pub use identity_assertion::{IdentityAssertion, identity_assertion, may_assert};

use crate::cache::View;
use crate::config::Config;
use crate::introspection::{Answer, Introspector};
use crate::policy::pkce;
use crate::policy::{
    TokenState, normalize_scope, scope_outside, scope_within, token_state, valid_resource_uri,
};
use crate::secret::RawToken;
use crate::store::{
    ClientPolicy, ClientRecord, CodeRecord, ExchangedSubject, FamilyRecord, Redemption, Rotation,
    Store, StoreError, TokenRecord,
};
use crate::token::claims::{Actor, TokenInfo};
use crate::token::jwt::KeySet;
use crate::token::keyring::KeyRing;
use crate::token::mint::{MintError, MintRequest, Minted, TokenFormat, mint};
use crate::token::{new_jti, opaque};
use crate::vocabulary::{ACCESS_TOKEN_TYPE, AuthMethod, GrantType, TokenUse};

/// Why a grant was refused; each maps to an RFC 6749 §5.2 or RFC 8707 error code. No
/// description carries anything the request sent.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// One answer for every refresh token that cannot be used, whatever the reason, so
    /// that no client learns anything of a token it does not hold.
    #[error("invalid_grant")]
    InvalidGrant,
    /// One answer for every authorization code that cannot be used: unknown, expired,
    /// used, another client's, or presented with the wrong redirect URI or verifier.
    #[error("invalid_grant")]
    InvalidCode,
    /// One answer for every subject token of a token exchange that cannot be used.
    #[error("invalid_grant")]
    InvalidSubject,
    /// One answer for every identity assertion (ID-JAG) that cannot be used.
    #[error("invalid_grant")]
    InvalidAssertion,
    /// A retired refresh token or a used code presented again by its client: its grant
    /// was revoked. Answered as [`GrantError::InvalidGrant`] or
    /// [`GrantError::InvalidCode`]; recorded in the audit trail.
    #[error("invalid_grant")]
    Reused(Reuse),
    #[error("invalid_request: {0}")]
    InvalidRequest(&'static str),
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    #[error("invalid_scope: {0}")]
    InvalidScope(&'static str),
    #[error("invalid_target: {0}")]
    InvalidTarget(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Mint(#[from] MintError),
}

impl GrantError {
    /// Whether the refusal would tell the caller that a token or code it does not hold
    /// is not usable: answers spent from its inactive-answer budget.
    pub fn tells_existence(&self) -> bool {
        matches!(
            self,
            GrantError::InvalidGrant
                | GrantError::InvalidCode
                | GrantError::InvalidSubject
                | GrantError::InvalidAssertion
                | GrantError::Reused(_)
        )
    }
}

/// What was presented again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reused {
    RefreshToken,
    AuthorizationCode,
}

impl Reused {
    pub fn as_str(self) -> &'static str {
        match self {
            Reused::RefreshToken => "refresh_token",
            Reused::AuthorizationCode => "authorization_code",
        }
    }
}

/// A refresh token or code presented again: what it was, and the grant it revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reuse {
    pub what: Reused,
    pub family_id: String,
    pub user_id: Option<String>,
}

const MALFORMED_SCOPE: GrantError = GrantError::InvalidScope("scope is not a valid scope list");
const UNREGISTERED_SCOPE: GrantError =
    GrantError::InvalidScope("scope is not registered for this client");

/// What the token endpoint hands out (RFC 6749 §5.1).
#[derive(Debug)]
pub struct Issued {
    pub access: Minted,
    pub expires_in: i64,
    pub refresh: Option<RawToken>,
    pub scope: Option<String>,
    /// RFC 8693 §2.2.1, for token exchange only.
    pub issued_token_type: Option<&'static str>,
}

/// Deny by default: a client uses only the grant types registered for it, checked on
/// every request, so a change to the client applies to the next one.
pub fn may_use(policy: &ClientPolicy, grant_type: GrantType) -> Result<(), GrantError> {
    if policy.grant_types.contains(&grant_type) {
        Ok(())
    } else {
        Err(GrantError::UnauthorizedClient(
            "the client is not registered for this grant type",
        ))
    }
}

/// The scope of a new grant: the requested one when the client may hold all of it, the
/// registered one when none is requested (RFC 6749 §3.3). An empty registered scope
/// grants no scope.
pub fn granted_scope(requested: Option<&str>, registered: &str) -> Result<String, GrantError> {
    scope_up_to(
        requested,
        registered,
        "scope is not registered for this client",
    )
}

/// The requested scope when it lies within `limit`, else `invalid_scope` saying
/// `beyond`; `limit` itself when none is requested.
fn scope_up_to(
    requested: Option<&str>,
    limit: &str,
    beyond: &'static str,
) -> Result<String, GrantError> {
    let Some(requested) = requested else {
        return Ok(limit.to_owned());
    };
    let requested = normalize_scope(requested).map_err(|_| MALFORMED_SCOPE)?;
    match scope_outside(&requested, limit) {
        Some(_) => Err(GrantError::InvalidScope(beyond)),
        None => Ok(requested),
    }
}

/// The scope of a refreshed access token. RFC 6749 §6: a refresh may ask for part of the
/// original scope, never more; without a request it keeps the original scope. Either
/// way it is limited to what the client may hold now: asked for, an item no longer
/// registered is `invalid_scope`; not asked for, such items are left out (the answer's
/// `scope` says so, RFC 6749 §5.1).
pub fn refreshed_scope(
    requested: Option<&str>,
    original: &str,
    registered: &str,
) -> Result<String, GrantError> {
    let Some(requested) = requested else {
        return Ok(scope_within(original, registered));
    };
    let requested = normalize_scope(requested).map_err(|_| MALFORMED_SCOPE)?;
    if scope_outside(&requested, original).is_some() {
        return Err(GrantError::InvalidScope("scope exceeds the original grant"));
    }
    if scope_outside(&requested, registered).is_some() {
        return Err(UNREGISTERED_SCOPE);
    }
    Ok(requested)
}

/// The resources a refreshed access token may name: those of the grant the client may
/// still obtain tokens for.
pub fn refreshable_resources(original: &[String], registered: &[String]) -> Vec<String> {
    original
        .iter()
        .filter(|r| registered.contains(r))
        .cloned()
        .collect()
}

/// The audiences of a new token (RFC 8707 §2): the requested resources, each an absolute
/// URI without fragment and one of `allowed`; all of `allowed` when none is requested
/// (RFC 9068 §3: the token then carries a default audience; none when `allowed` is empty).
pub fn granted_audiences(
    requested: &[&str],
    allowed: &[String],
) -> Result<Vec<String>, GrantError> {
    if requested.is_empty() {
        return Ok(allowed.to_vec());
    }
    if !requested
        .iter()
        .all(|resource| valid_resource_uri(resource))
    {
        return Err(GrantError::InvalidTarget(
            "resource must be an absolute URI without a fragment",
        ));
    }
    chosen_from(
        requested,
        allowed,
        "resource is not registered for this client",
    )
}

/// The requested targets in order, repeats dropped, each one of `allowed`; else
/// `invalid_target` saying `refused`.
fn chosen_from(
    requested: &[&str],
    allowed: &[String],
    refused: &'static str,
) -> Result<Vec<String>, GrantError> {
    let mut chosen: Vec<String> = Vec::new();
    for target in requested {
        if !allowed.iter().any(|a| a == target) {
            return Err(GrantError::InvalidTarget(refused));
        }
        if !chosen.iter().any(|a| a == target) {
            chosen.push((*target).to_owned());
        }
    }
    Ok(chosen)
}

/// How a presented refresh token stands for the client presenting it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshState {
    Usable,
    /// Not a refresh token of this client, or no longer valid.
    Invalid,
    /// Already exchanged once by this client: presenting it again means it leaked
    /// (RFC 9700 §4.14.2). Another client presenting it gets [`RefreshState::Invalid`].
    Reused,
}

/// Judges a stored token presented as a refresh token by `client_id` at `now`.
pub fn refresh_state(found: &FamilyRecord, client_id: &str, now: i64) -> RefreshState {
    let token = &found.token;
    // RFC 6749 §6: the refresh token must have been issued to the authenticated client.
    if token.token_use != TokenUse::RefreshToken || token.client_id != client_id {
        return RefreshState::Invalid;
    }
    if found.rotated_at.is_some() {
        return RefreshState::Reused;
    }
    match token_state(token.revoked_at.is_some(), token.exp, token.nbf, now, 0) {
        TokenState::Active => RefreshState::Usable,
        _ => RefreshState::Invalid,
    }
}

/// RFC 6749 §4.4: a JWT access token for the client itself (RFC 9068 §2.2: `sub` is the
/// client id when no resource owner is involved).
pub async fn client_credentials(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client: &ClientRecord,
    scope: Option<&str>,
    resources: &[&str],
    now: i64,
) -> Result<Issued, GrantError> {
    may_use(&client.policy, GrantType::ClientCredentials)?;
    let scope = granted_scope(scope, &client.scope)?;
    let access = AccessToken {
        client,
        subject: client.client_id.clone(),
        username: None,
        scope: &scope,
        audiences: granted_audiences(resources, &client.policy.resources)?,
    };
    let (access, expires_in) = mint_access(store, keys, config, access, now).await?;
    Ok(Issued {
        access,
        expires_in,
        refresh: None,
        scope: non_empty(scope),
        issued_token_type: None,
    })
}

/// RFC 6749 §6 with rotation: a new access token and a new refresh token; the presented
/// one is retired. A retired token presented again by its client revokes its whole
/// grant. The client's current registration (grant types, scope, resources) limits the
/// new access token; the new refresh token keeps the grant as it was given.
// The grant's inputs as the request gave them; a struct would only rename them.
#[allow(clippy::too_many_arguments)]
pub async fn refresh(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client: &ClientRecord,
    refresh_token: &str,
    scope: Option<&str>,
    resources: &[&str],
    now: i64,
) -> Result<Issued, GrantError> {
    may_use(&client.policy, GrantType::RefreshToken)?;
    let issued_at = now;
    let digest = opaque::digest(refresh_token);
    let found = store
        .token_family_by_digest(&digest)
        .await?
        .ok_or(GrantError::InvalidGrant)?;
    match refresh_state(&found, &client.client_id, issued_at) {
        RefreshState::Usable => {}
        RefreshState::Invalid => return Err(GrantError::InvalidGrant),
        RefreshState::Reused => return Err(reuse_detected(store, &found, issued_at).await),
    }
    if let Some(user_id) = &found.token.user_id {
        // A grant lives no longer than its user. Disabling or deleting one revokes their
        // grants; a grant that slipped past that (issued while it ran) ends here.
        let user = store.user_by_id(user_id).await?;
        if user.is_none_or(|u| u.disabled) {
            store.revoke_family(&found.family_id, issued_at).await?;
            return Err(GrantError::InvalidGrant);
        }
    }
    let original = &found.token;
    let original_scope = original.scope.as_deref().unwrap_or("");
    let scope = refreshed_scope(scope, original_scope, &client.scope)?;
    // A grant a user gave at sign-in names the resources the user allowed, which need
    // not be registered for the client; any other grant, what the client may still
    // obtain tokens for.
    let allowed = match original.user_id {
        Some(_) => original.audiences.clone(),
        None => refreshable_resources(&original.audiences, &client.policy.resources),
    };
    let access = AccessToken {
        client,
        subject: original
            .sub
            .clone()
            .unwrap_or_else(|| client.client_id.clone()),
        username: original.username.clone(),
        scope: &scope,
        // RFC 8707 §2.2: a refresh may narrow the audience to resources of the grant.
        audiences: granted_audiences(resources, &allowed)?,
    };
    let (access, expires_in) = mint_access(store, keys, config, access, now).await?;
    let next = opaque::generate();
    // RFC 6749 §6: the new refresh token keeps the scope of the one it replaces; rotation
    // never extends the grant, so it also keeps its expiry.
    let record = TokenRecord {
        digest: opaque::digest(next.expose()),
        token_use: TokenUse::RefreshToken,
        client_id: client.client_id.clone(),
        sub: original.sub.clone(),
        username: original.username.clone(),
        scope: original.scope.clone(),
        audiences: original.audiences.clone(),
        jti: new_jti(),
        iat: issued_at,
        nbf: None,
        exp: original.exp,
        revoked_at: None,
        user_id: original.user_id.clone(),
    };
    let rotation = store
        .rotate_refresh_token(
            &digest,
            &record,
            &found.family_id,
            (&access.jti, access.exp),
            issued_at,
        )
        .await?;
    if rotation == Rotation::AlreadyUsed {
        // Another request exchanged the same token first.
        return Err(reuse_detected(store, &found, issued_at).await);
    }
    Ok(Issued {
        access,
        expires_in,
        refresh: Some(next),
        scope: non_empty(scope),
        issued_token_type: None,
    })
}

/// RFC 9700 §4.14.2: a refresh token used twice has leaked, so every token of its grant
/// is revoked and the request refused.
async fn reuse_detected(store: &Store, found: &FamilyRecord, now: i64) -> GrantError {
    tracing::warn!(
        client_id = %found.token.client_id,
        family_id = %found.family_id,
        "refresh token presented again after rotation; revoking its grant"
    );
    match store.revoke_family(&found.family_id, now).await {
        Ok(_) => GrantError::Reused(Reuse {
            what: Reused::RefreshToken,
            family_id: found.family_id.clone(),
            user_id: found.token.user_id.clone(),
        }),
        Err(err) => GrantError::Store(err),
    }
}

/// How a stored authorization code stands for the client presenting it with this
/// redirect URI and PKCE verifier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeState {
    Usable,
    /// Another client's code, expired, or presented with the wrong redirect URI or
    /// verifier: refused like an unknown code.
    Invalid,
    /// Already exchanged by this client: presenting it again means it leaked (OAuth 2.1
    /// §4.1.3), so what the first exchange gave is revoked.
    Reused,
}

/// Judges a stored code presented by `client_id` at `now` (OAuth 2.1 §4.1.3, RFC 7636
/// §4.6).
pub fn code_state(
    code: &CodeRecord,
    client_id: &str,
    redirect_uri: &str,
    code_verifier: &str,
    now: i64,
) -> CodeState {
    if code.client_id != client_id {
        return CodeState::Invalid;
    }
    if code.used_at.is_some() {
        return CodeState::Reused;
    }
    let fresh = now < code.expires_at;
    // Both checks run whatever the first answers: the time taken tells nothing.
    let redirect_ok = code.redirect_uri == redirect_uri;
    let verified = pkce::verify_s256(code_verifier, &code.code_challenge);
    if fresh && redirect_ok && verified {
        CodeState::Usable
    } else {
        CodeState::Invalid
    }
}

/// What a client presents to exchange an authorization code.
#[derive(Clone, Copy)]
pub struct CodeExchange<'a> {
    pub code: &'a str,
    pub redirect_uri: &'a str,
    pub code_verifier: &'a str,
    /// RFC 8707 §2.2: resources that narrow the access token's audience.
    pub resources: &'a [&'a str],
}

/// OAuth 2.1 §4.1.3: a JWT access token for the user who signed in, and, for a client
/// registered for refresh tokens, a refresh token of a new grant (family) that rotates
/// like any other. The code is used once; its second use revokes what the first gave.
pub async fn authorization_code(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client: &ClientRecord,
    exchange: CodeExchange<'_>,
    now: i64,
) -> Result<Issued, GrantError> {
    may_use(&client.policy, GrantType::AuthorizationCode)?;
    let code = store
        .authorization_code(&opaque::digest(exchange.code))
        .await?
        .ok_or(GrantError::InvalidCode)?;
    let state = code_state(
        &code,
        &client.client_id,
        exchange.redirect_uri,
        exchange.code_verifier,
        now,
    );
    match state {
        CodeState::Usable => {}
        CodeState::Invalid => return Err(GrantError::InvalidCode),
        CodeState::Reused => return Err(code_reused(store, &code, now).await),
    }
    let user = store
        .user_by_id(&code.user_id)
        .await?
        .filter(|u| !u.disabled)
        .ok_or(GrantError::InvalidCode)?;
    // The client as registered now limits the scope, as for a refresh.
    let scope = scope_within(code.scope.as_deref().unwrap_or(""), &client.scope);
    let audiences = granted_audiences(exchange.resources, &code.resources)?;
    if audiences.is_empty() {
        warn_no_audience(client);
    }
    let access = AccessToken {
        client,
        subject: user.user_id.clone(),
        username: Some(user.username.clone()),
        scope: &scope,
        audiences,
    };
    let (access, expires_in) = mint_access(store, keys, config, access, now).await?;
    let refresh = may_use(&client.policy, GrantType::RefreshToken)
        .is_ok()
        .then(opaque::generate);
    let record = refresh.as_ref().map(|refresh| TokenRecord {
        digest: opaque::digest(refresh.expose()),
        token_use: TokenUse::RefreshToken,
        client_id: client.client_id.clone(),
        sub: Some(user.user_id.clone()),
        username: Some(user.username.clone()),
        scope: code.scope.clone(),
        audiences: code.resources.clone(),
        jti: new_jti(),
        iat: now,
        nbf: None,
        exp: now.saturating_add(i64::try_from(config.tokens.refresh_token_ttl).unwrap_or(i64::MAX)),
        revoked_at: None,
        user_id: Some(user.user_id.clone()),
    });
    let redeemed = store
        .redeem_authorization_code(&code, record.as_ref(), (&access.jti, access.exp), now)
        .await?;
    match redeemed {
        Redemption::Redeemed => {}
        // Another request exchanged the same code first.
        Redemption::AlreadyUsed => return Err(code_reused(store, &code, now).await),
        // Disabled or deleted since the check above.
        Redemption::UserGone => return Err(GrantError::InvalidCode),
    }
    Ok(Issued {
        access,
        expires_in,
        refresh,
        scope: non_empty(scope),
        issued_token_type: None,
    })
}

/// The most actors a token may name: each exchange adds one, and a chain longer than
/// this is a loop, not a delegation.
pub const MAX_ACTORS: usize = 5;

/// What a token exchange asks for (RFC 8693 §2.1), with how its subject token is read.
pub struct Exchange<'a> {
    /// The subject token as sent.
    pub subject_token: &'a str,
    /// Introspection, which reads the subject token for the caller through the caches of
    /// the request's view.
    pub introspector: &'a Introspector,
    pub ring: &'a KeyRing,
    pub view: &'a View,
    /// The `resource` and `audience` values, in the order given.
    pub targets: &'a [&'a str],
    pub scope: Option<&'a str>,
}

/// RFC 8693: a JWT access token for the subject token's user, meant for the targets,
/// with the caller named as the actor. Deny by default: the caller needs the grant type
/// and each target among its exchange targets. The subject token is read as
/// introspection would answer it to the caller, and every one the caller could not use
/// (inactive, not an access token, not meant for the caller's audiences, too many actors
/// already) gets one answer, so it learns no more than introspection tells it.
pub async fn token_exchange(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client: &ClientRecord,
    exchange: Exchange<'_>,
    now: i64,
) -> Result<Issued, GrantError> {
    may_exchange(client)?;
    let token = exchange.subject_token;
    let answer = exchange
        .introspector
        .introspect(
            exchange.ring,
            exchange.view,
            client,
            token,
            Some(TokenUse::AccessToken),
            now,
        )
        .await?;
    let subject = match answer {
        Answer::Active(info) if exchangeable(&info, client, &config.issuer) => info,
        _ => return Err(GrantError::InvalidSubject),
    };
    let audiences = exchange_targets(exchange.targets, &client.policy.exchange_targets)?;
    let scope = narrowed_scope(exchange.scope, subject.scope.as_deref().unwrap_or(""))?;
    // Never past the subject token: the new one must not outlive what it came from.
    let ttl = i64::try_from(config.tokens.access_token_ttl)
        .unwrap_or(i64::MAX)
        .min(subject.exp.saturating_sub(now));
    let request = MintRequest {
        client,
        subject: subject.sub.clone().ok_or(GrantError::InvalidSubject)?,
        username: subject.username.clone(),
        scope: non_empty(scope.clone()),
        audiences,
        ttl,
        token_use: TokenUse::AccessToken,
        format: TokenFormat::Jwt,
        act: Some(Actor::after(client.client_id.clone(), subject.act.clone())),
    };
    let access = mint(store, keys, &config.issuer, request, now).await?;
    let joined = ExchangedSubject {
        jti: &subject.jti,
        digest: &opaque::digest(token),
    };
    if !store
        .join_subject_grant(&joined, (&access.jti, access.exp), now)
        .await?
    {
        return Err(GrantError::InvalidSubject);
    }
    Ok(Issued {
        access,
        expires_in: ttl,
        refresh: None,
        scope: non_empty(scope),
        issued_token_type: Some(ACCESS_TOKEN_TYPE),
    })
}

/// Deny by default: only a confidential client given the grant type may exchange tokens;
/// a public client has nothing to prove it is the party the token was meant for.
pub fn may_exchange(client: &ClientRecord) -> Result<(), GrantError> {
    if client.auth_method == AuthMethod::None {
        return Err(GrantError::UnauthorizedClient(
            "a public client cannot exchange tokens",
        ));
    }
    may_use(&client.policy, GrantType::TokenExchange)
}

/// Whether an active token may be exchanged by `client`: an access token this server
/// issued (`issuer`: not one of the other `jwt.issuers` introspection accepts) with a
/// subject, meant for one of the audiences the caller serves (RFC 8693 §2.1: the caller
/// is the party the token was given to), naming fewer actors than the limit.
pub fn exchangeable(subject: &TokenInfo, client: &ClientRecord, issuer: &str) -> bool {
    subject.token_use == TokenUse::AccessToken
        && subject.iss.as_deref() == Some(issuer)
        && subject.sub.is_some()
        && subject.aud.contains_any(&client.audiences)
        && subject.act.as_ref().is_none_or(|a| a.depth() < MAX_ACTORS)
}

/// The audiences of an exchanged token: the targets named, each one of the caller's
/// exchange targets. At least one must be named: a token exchanged for no one in
/// particular would be a copy of the subject token.
pub fn exchange_targets(requested: &[&str], allowed: &[String]) -> Result<Vec<String>, GrantError> {
    if requested.is_empty() {
        return Err(GrantError::InvalidRequest(
            "resource or audience must name the target of the exchange",
        ));
    }
    chosen_from(
        requested,
        allowed,
        "the target is not an exchange target of this client",
    )
}

/// The scope of an exchanged token: the requested one when it lies within the subject
/// token's, the subject token's when none is requested. Scopes only narrow.
pub fn narrowed_scope(requested: Option<&str>, subject: &str) -> Result<String, GrantError> {
    scope_up_to(
        requested,
        subject,
        "scope exceeds the subject token's scope",
    )
}

/// A user signed in to a token no resource server may introspect (RFC 7662 §4: it names
/// no audience): the client sent no `resource` and is registered for none. Said to the
/// operator, since the client only sees its token refused later, elsewhere.
fn warn_no_audience(client: &ClientRecord) {
    tracing::warn!(
        client_id = %client.client_id,
        "issued a sign-in access token with no audience: no resource server can introspect \
         it; register the resource with client update ID --resource URI, or have the \
         client send resource"
    );
}

/// OAuth 2.1 §4.1.3: a code used twice has leaked; the tokens its first use gave are
/// revoked and the request refused.
async fn code_reused(store: &Store, code: &CodeRecord, now: i64) -> GrantError {
    tracing::warn!(
        client_id = %code.client_id,
        family_id = %code.family_id,
        "authorization code presented again; revoking what it gave"
    );
    match store.revoke_family(&code.family_id, now).await {
        Ok(_) => GrantError::Reused(Reuse {
            what: Reused::AuthorizationCode,
            family_id: code.family_id.clone(),
            user_id: Some(code.user_id.clone()),
        }),
        Err(err) => GrantError::Store(err),
    }
}

/// What a new access token says.
struct AccessToken<'a> {
    client: &'a ClientRecord,
    subject: String,
    username: Option<String>,
    scope: &'a str,
    audiences: Vec<String>,
}

/// A JWT access token (RFC 9068) with the configured lifetime, and that lifetime.
async fn mint_access(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    access: AccessToken<'_>,
    now: i64,
) -> Result<(Minted, i64), GrantError> {
    let ttl = i64::try_from(config.tokens.access_token_ttl).unwrap_or(i64::MAX);
    let request = MintRequest {
        client: access.client,
        subject: access.subject,
        username: access.username,
        scope: non_empty(access.scope.to_owned()),
        audiences: access.audiences,
        ttl,
        token_use: TokenUse::AccessToken,
        format: TokenFormat::Jwt,
        act: None,
    };
    let minted = mint(store, keys, &config.issuer, request, now).await?;
    // A self-registered client in use is kept (`registration.unused_client_days`).
    // The token is issued already: a failed note of it must not take it back.
    if access.client.origin.self_registered() {
        if let Err(err) = store.touch_client(&access.client.client_id, now).await {
            crate::metrics::store_error(&err);
            tracing::warn!(error = %err, "could not note the client's use");
        }
    }
    Ok((minted, ttl))
}

fn non_empty(scope: String) -> Option<String> {
    Some(scope).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(client_id: &str, token_use: TokenUse) -> FamilyRecord {
        FamilyRecord {
            token: TokenRecord {
                digest: [0; 32],
                token_use,
                client_id: client_id.to_owned(),
                sub: Some("alice".to_owned()),
                username: None,
                scope: Some("read".to_owned()),
                audiences: vec![],
                jti: "j".to_owned(),
                iat: 0,
                nbf: None,
                exp: 100,
                revoked_at: None,
                user_id: None,
            },
            family_id: "j".to_owned(),
            rotated_at: None,
        }
    }

    fn is_invalid(state: RefreshState) -> bool {
        state == RefreshState::Invalid
    }

    #[test]
    fn no_scope_requested_means_the_registered_scope() {
        assert_eq!(granted_scope(None, "read write").unwrap(), "read write");
        assert_eq!(granted_scope(Some("write"), "read write").unwrap(), "write");
        assert!(matches!(
            granted_scope(Some("admin"), "read write"),
            Err(GrantError::InvalidScope(_))
        ));
        assert!(matches!(
            granted_scope(Some("a\"b"), ""),
            Err(GrantError::InvalidScope(_))
        ));
    }

    #[test]
    fn an_empty_registered_scope_grants_no_scope() {
        assert_eq!(granted_scope(None, "").unwrap(), "");
        assert!(matches!(
            granted_scope(Some("admin root:all"), ""),
            Err(GrantError::InvalidScope(_))
        ));
    }

    #[test]
    fn refresh_scope_never_widens() {
        let all = "read write";
        assert_eq!(
            refreshed_scope(None, "read write", all).unwrap(),
            "read write"
        );
        assert_eq!(
            refreshed_scope(Some("read"), "read write", all).unwrap(),
            "read"
        );
        assert!(refreshed_scope(Some("admin"), "read", "read admin").is_err());
        assert!(refreshed_scope(Some("read"), "", all).is_err());
    }

    #[test]
    fn refresh_scope_follows_the_current_registration() {
        assert_eq!(refreshed_scope(None, "read write", "read").unwrap(), "read");
        assert_eq!(refreshed_scope(None, "read write", "").unwrap(), "");
        assert!(matches!(
            refreshed_scope(Some("write"), "read write", "read"),
            Err(GrantError::InvalidScope(_))
        ));
    }

    #[test]
    fn refresh_resources_follow_the_current_registration() {
        let grant = vec!["urn:a".to_owned(), "urn:b".to_owned()];
        assert_eq!(
            refreshable_resources(&grant, &["urn:b".to_owned(), "urn:c".to_owned()]),
            vec!["urn:b"]
        );
        assert!(refreshable_resources(&grant, &[]).is_empty());
    }

    #[test]
    fn exchange_targets_must_be_the_callers_and_named() {
        let allowed = vec!["https://next.example".to_owned(), "urn:x".to_owned()];
        assert!(matches!(
            exchange_targets(&[], &allowed),
            Err(GrantError::InvalidRequest(_))
        ));
        assert_eq!(
            exchange_targets(&["urn:x", "https://next.example", "urn:x"], &allowed).unwrap(),
            vec!["urn:x", "https://next.example"]
        );
        for bad in ["https://other.example", "urn:y", ""] {
            assert!(matches!(
                exchange_targets(&["urn:x", bad], &allowed),
                Err(GrantError::InvalidTarget(_))
            ));
        }
        assert!(exchange_targets(&["urn:x"], &[]).is_err());
    }

    #[test]
    fn an_exchanged_scope_only_narrows() {
        assert_eq!(narrowed_scope(None, "read write").unwrap(), "read write");
        assert_eq!(
            narrowed_scope(Some("write"), "read write").unwrap(),
            "write"
        );
        assert_eq!(narrowed_scope(None, "").unwrap(), "");
        for bad in ["admin", "read admin", "bad\"scope"] {
            assert!(matches!(
                narrowed_scope(Some(bad), "read write"),
                Err(GrantError::InvalidScope(_))
            ));
        }
    }

    const ISSUER: &str = "https://as.example";

    fn subject(aud: &[&str], act: Option<Actor>) -> TokenInfo {
        TokenInfo {
            scope: None,
            client_id: "app".to_owned(),
            username: None,
            token_type: None,
            token_use: TokenUse::AccessToken,
            exp: 100,
            iat: 0,
            nbf: None,
            sub: Some("alice".to_owned()),
            aud: crate::token::claims::Audience(aud.iter().map(|a| (*a).to_owned()).collect()),
            iss: Some(ISSUER.to_owned()),
            jti: "j".to_owned(),
            act,
        }
    }

    #[test]
    fn only_access_tokens_meant_for_the_caller_are_exchangeable() {
        let mut caller = ClientRecord::sample("rs");
        caller.audiences = vec!["https://api.example".to_owned()];
        let usable = |token: &TokenInfo| exchangeable(token, &caller, ISSUER);
        assert!(usable(&subject(&["https://api.example"], None)));
        assert!(!usable(&subject(&["https://other.example"], None)));
        assert!(!usable(&subject(&[], None)));
        let mut refresh = subject(&["https://api.example"], None);
        refresh.token_use = TokenUse::RefreshToken;
        assert!(!usable(&refresh));
        let mut anonymous = subject(&["https://api.example"], None);
        anonymous.sub = None;
        assert!(!usable(&anonymous));
        // Another issuer introspection trusts (`jwt.issuers`) did not issue it here.
        let mut foreign = subject(&["https://api.example"], None);
        foreign.iss = Some("https://old-as.example".to_owned());
        assert!(!usable(&foreign));
        let mut chain = None;
        for depth in 1..=MAX_ACTORS {
            chain = Some(Actor::after(format!("c{depth}"), chain));
            let token = subject(&["https://api.example"], chain.clone());
            assert_eq!(usable(&token), depth < MAX_ACTORS, "{depth}");
        }
    }

    #[test]
    fn public_clients_never_exchange() {
        let mut client = ClientRecord::sample("rs");
        client.policy.grant_types = vec![GrantType::TokenExchange];
        client.auth_method = AuthMethod::ClientSecretBasic;
        assert!(may_exchange(&client).is_ok());
        client.auth_method = AuthMethod::None;
        assert!(matches!(
            may_exchange(&client),
            Err(GrantError::UnauthorizedClient(_))
        ));
        client.auth_method = AuthMethod::ClientSecretBasic;
        client.policy.grant_types = vec![GrantType::ClientCredentials];
        assert!(may_exchange(&client).is_err());
    }

    #[test]
    fn grant_types_are_denied_by_default() {
        let mut policy = ClientPolicy::default();
        for grant_type in GrantType::ALL {
            assert!(matches!(
                may_use(&policy, grant_type),
                Err(GrantError::UnauthorizedClient(_))
            ));
        }
        policy.grant_types = vec![GrantType::RefreshToken];
        assert!(may_use(&policy, GrantType::RefreshToken).is_ok());
        assert!(may_use(&policy, GrantType::ClientCredentials).is_err());
    }

    #[test]
    fn resources_must_be_registered_absolute_uris() {
        let allowed = vec!["https://api.example".to_owned(), "urn:x".to_owned()];
        assert_eq!(granted_audiences(&[], &allowed).unwrap(), allowed);
        assert_eq!(
            granted_audiences(&["urn:x", "urn:x"], &allowed).unwrap(),
            vec!["urn:x"]
        );
        for bad in ["https://other.example", "api", "https://api.example#f"] {
            assert!(
                matches!(
                    granted_audiences(&[bad], &allowed),
                    Err(GrantError::InvalidTarget(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn refresh_token_must_belong_to_the_caller() {
        let found = stored("a", TokenUse::RefreshToken);
        assert_eq!(refresh_state(&found, "a", 0), RefreshState::Usable);
        assert!(is_invalid(refresh_state(&found, "b", 0)));
    }

    #[test]
    fn a_rotated_token_of_another_client_is_just_invalid() {
        let mut found = stored("a", TokenUse::RefreshToken);
        found.rotated_at = Some(5);
        assert_eq!(refresh_state(&found, "b", 0), RefreshState::Invalid);
    }

    #[test]
    fn access_tokens_are_not_refresh_tokens() {
        let found = stored("a", TokenUse::AccessToken);
        assert!(is_invalid(refresh_state(&found, "a", 0)));
    }

    #[test]
    fn rotated_token_presented_again_is_a_reuse_even_when_revoked() {
        let mut found = stored("a", TokenUse::RefreshToken);
        found.rotated_at = Some(5);
        found.token.revoked_at = Some(5);
        assert_eq!(refresh_state(&found, "a", 0), RefreshState::Reused);
        found.rotated_at = None;
        assert!(is_invalid(refresh_state(&found, "a", 0)));
    }

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn code() -> CodeRecord {
        CodeRecord {
            digest: [0; 32],
            client_id: "app".to_owned(),
            user_id: "u".to_owned(),
            redirect_uri: "http://127.0.0.1/cb".to_owned(),
            code_challenge: pkce::challenge_of(VERIFIER),
            scope: None,
            resources: vec![],
            created_at: 0,
            expires_at: 60,
            used_at: None,
            family_id: "f".to_owned(),
        }
    }

    #[test]
    fn a_code_is_usable_by_its_client_with_its_redirect_uri_and_verifier() {
        let code = code();
        let uri = "http://127.0.0.1/cb";
        assert_eq!(
            code_state(&code, "app", uri, VERIFIER, 0),
            CodeState::Usable
        );
        assert_eq!(
            code_state(&code, "app", uri, VERIFIER, 59),
            CodeState::Usable
        );
    }

    #[test]
    fn a_code_expires() {
        let uri = "http://127.0.0.1/cb";
        assert_eq!(
            code_state(&code(), "app", uri, VERIFIER, 60),
            CodeState::Invalid
        );
    }

    #[test]
    fn a_code_refuses_another_client_redirect_uri_or_verifier() {
        let code = code();
        let uri = "http://127.0.0.1/cb";
        assert_eq!(
            code_state(&code, "other", uri, VERIFIER, 0),
            CodeState::Invalid
        );
        let other_uri = "http://127.0.0.1/cb2";
        assert_eq!(
            code_state(&code, "app", other_uri, VERIFIER, 0),
            CodeState::Invalid
        );
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert_eq!(code_state(&code, "app", uri, wrong, 0), CodeState::Invalid);
        // The challenge itself, as a client using `plain` would send it.
        let plain = code.code_challenge.clone();
        assert_eq!(code_state(&code, "app", uri, &plain, 0), CodeState::Invalid);
    }

    #[test]
    fn a_used_code_is_reused_by_its_client_only() {
        let mut code = code();
        code.used_at = Some(5);
        let uri = "http://127.0.0.1/cb";
        assert_eq!(
            code_state(&code, "app", uri, VERIFIER, 0),
            CodeState::Reused
        );
        assert_eq!(
            code_state(&code, "app", uri, "wrong", 500),
            CodeState::Reused
        );
        assert_eq!(
            code_state(&code, "other", uri, VERIFIER, 0),
            CodeState::Invalid
        );
    }

    #[test]
    fn expired_refresh_token_is_invalid() {
        let found = stored("a", TokenUse::RefreshToken);
        assert!(is_invalid(refresh_state(&found, "a", 100)));
    }
}
