//! RFC 7523 §2.1 with an Identity Assertion JWT Authorization Grant (ID-JAG; the MCP
//! enterprise-managed authorization extension): the organisation's provider has decided
//! that one of its people may use an MCP client, and the client presents the assertion
//! it got for them. No page is shown; the provider's word is the consent.

use super::{AccessToken, GrantError, Issued, granted_audiences, granted_scope, may_use};
use super::{mint_access, non_empty, warn_no_audience};
use crate::config::Config;
use crate::federation::id_jag::{self, Expected, IdJagClaims, Refusal};
use crate::federation::{Provider, Providers, identity, link};
use crate::store::{ClientRecord, Store};
use crate::token::jwt::KeySet;
use crate::vocabulary::{AuthMethod, GrantType};

/// An identity assertion as the client presented it.
pub struct IdentityAssertion<'a> {
    /// The `assertion` parameter.
    pub assertion: &'a str,
    /// The configured providers; none when sign-in is off.
    pub providers: Option<&'a Providers>,
}

/// A JWT access token for the person an identity assertion names, without a refresh
/// token. Deny by default: the client needs the grant type; the assertion must come from
/// a provider with `id_jag = true`, signed by it, and pass every rule of
/// [`id_jag::judge`]; its `jti` is used once across every instance. Every assertion
/// that cannot be used gets one answer, its reason logged; a `resource` or `scope` the
/// client may not hold gets `invalid_target` or `invalid_scope`.
pub async fn identity_assertion(
    store: &Store,
    keys: &KeySet,
    config: &Config,
    client: &ClientRecord,
    presented: IdentityAssertion<'_>,
    now: i64,
) -> Result<Issued, GrantError> {
    may_assert(client)?;
    let (provider, claims) = verified(config, client, &presented, now)
        .await
        .map_err(|refusal| refused(client, None, refusal.as_str()))?;
    let refuse = |why: &str| refused(client, Some(provider), why);
    let resources: Vec<&str> = claims
        .resource
        .iter()
        .flat_map(|r| r.0.iter().map(String::as_str))
        .collect();
    let audiences = granted_audiences(&resources, &client.policy.resources)?;
    let scope = granted_scope(claims.scope.as_deref(), &client.scope)?;
    let identity = identity::storable(claims.identity())
        .ok_or_else(|| refuse("the sub cannot name a user"))?;
    if !identity::email_admitted(&identity, &provider.allowed_email_domains) {
        return Err(refuse("email domain not admitted"));
    }
    if !store
        .use_identity_assertion_jti(provider.issuer(), &claims.jti, claims.exp)
        .await?
    {
        return Err(refuse("the jti was used before"));
    }
    let user = link::linked_user(store, &provider.id, &identity, now)
        .await?
        .ok_or_else(|| refuse("no free username for a new user"))?;
    if user.disabled {
        return Err(refuse("the user is disabled"));
    }
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
    store
        .insert_user_grant(&user.user_id, &client.client_id, (&access.jti, access.exp))
        .await?;
    // Disabled or deleted meanwhile: the revocation may have run before the grant was
    // recorded, so the token is revoked here.
    let current = store.user_by_id(&user.user_id).await?;
    if current.is_none_or(|u| u.disabled) {
        store.revoke_jti(&access.jti, access.exp, now).await?;
        return Err(refuse("the user was disabled meanwhile"));
    }
    Ok(Issued {
        access,
        expires_in,
        refresh: None,
        scope: non_empty(scope),
        issued_token_type: None,
    })
}

/// Deny by default: only a confidential client given the grant type presents identity
/// assertions. A public client proves nothing of itself, so anyone holding an assertion
/// could spend it in the client's name.
pub fn may_assert(client: &ClientRecord) -> Result<(), GrantError> {
    if client.auth_method == AuthMethod::None {
        return Err(GrantError::UnauthorizedClient(
            "a public client cannot present identity assertions",
        ));
    }
    may_use(&client.policy, GrantType::JwtBearer)
}

/// The provider that signed the assertion and its claims, judged for this server and
/// client at `now`.
async fn verified<'a>(
    config: &Config,
    client: &ClientRecord,
    presented: &IdentityAssertion<'a>,
    now: i64,
) -> Result<(&'a Provider, IdJagClaims), Refusal> {
    let issuer = id_jag::named_issuer(presented.assertion).ok_or(Refusal::Malformed)?;
    let provider: &'a Provider = presented
        .providers
        .and_then(|providers| providers.asserting(&issuer))
        .map(|provider| provider.as_ref())
        .ok_or(Refusal::UnknownProvider)?;
    let claims = provider.id_jag_claims(presented.assertion).await?;
    let expected = Expected {
        issuer: provider.issuer(),
        audience: &config.issuer,
        client_id: &client.client_id,
        max_lifetime: i64::try_from(config.login.id_jag_max_lifetime_seconds).unwrap_or(i64::MAX),
    };
    id_jag::judge(&claims, &expected, now)?;
    Ok((provider, claims))
}

/// The one answer to an unusable assertion; why goes to the log, for the operator.
fn refused(client: &ClientRecord, provider: Option<&Provider>, why: &str) -> GrantError {
    tracing::info!(
        client_id = %client.client_id,
        provider = provider.map(|p| p.id.as_str()).unwrap_or("-"),
        reason = why,
        "identity assertion refused"
    );
    GrantError::InvalidAssertion
}
