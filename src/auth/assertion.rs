//! `private_key_jwt` client authentication (RFC 7523 §2.2, §3): the client signs a short
//! JWT with a key from the JWK Set it registered, and the server checks it.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Header, Validation};
use serde::Deserialize;

use super::{AuthError, client_may_authenticate};
use crate::cache::View;
use crate::secret::RawToken;
use crate::store::ClientRecord;
use crate::token::claims::Audience;
use crate::vocabulary::AuthMethod;

/// RFC 7523 §2.2: the `client_assertion_type` of a JWT client assertion.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Algorithms a client may sign assertions with: asymmetric only, never HS* or none.
pub const ALGORITHMS: [Algorithm; 3] = [Algorithm::EdDSA, Algorithm::ES256, Algorithm::RS256];

/// Longest an assertion may still be valid when it arrives (RFC 7523 §3 item 4 lets the
/// server refuse an `exp` unreasonably far in the future).
pub const MAX_LIFETIME_SECONDS: i64 = 300;

/// Longest `jti` remembered for replay protection.
const MAX_JTI_LEN: usize = 256;

/// Smallest RSA modulus accepted in a client's JWK Set (RFC 7518 §3.3).
const MIN_RSA_BITS: usize = 2048;

/// A client assertion as presented, before any check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientAssertion {
    /// The `client_id` parameter, when the request carried one (RFC 7521 §4.2).
    pub client_id: Option<String>,
    pub jwt: RawToken,
}

/// Reads the assertion parameters (RFC 7521 §4.2).
pub fn presented(
    client_id: Option<&str>,
    assertion_type: Option<&str>,
    assertion: Option<&str>,
) -> Result<ClientAssertion, AuthError> {
    match (assertion_type, assertion) {
        (Some(JWT_BEARER), Some(jwt)) => Ok(ClientAssertion {
            client_id: client_id.map(str::to_owned),
            jwt: RawToken::new(jwt),
        }),
        (Some(_), Some(_)) => Err(AuthError::failed("unsupported client_assertion_type")),
        _ => Err(AuthError::Malformed(
            "client_assertion and client_assertion_type go together",
        )),
    }
}

#[derive(Deserialize)]
struct Unverified {
    sub: String,
}

impl ClientAssertion {
    /// The client the assertion names, before anything is verified: its `client_id`
    /// parameter, else its `sub`. Only to find which client to look up.
    pub fn named_client(&self) -> Option<String> {
        self.client_id.clone().or_else(|| {
            jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(self.jwt.expose())
                .ok()
                .map(|claims| claims.sub)
        })
    }
}

/// RFC 7523 §3: the claims of a client assertion.
#[derive(Deserialize)]
struct AssertionClaims {
    aud: Audience,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    jti: String,
}

/// Checks client assertions against the clients' registered keys, read through the view
/// each request hands it.
#[derive(Clone)]
pub struct AssertionVerifier {
    issuer: Arc<str>,
    leeway: u64,
}

impl AssertionVerifier {
    pub fn new(issuer: &str, leeway: u64) -> Self {
        AssertionVerifier {
            issuer: issuer.into(),
            leeway,
        }
    }

    /// The client that signed `presented`, if the assertion is good for `endpoint` (the
    /// full URL of the endpoint receiving it) and was not used before.
    ///
    /// Nothing about the client named by `sub` is revealed before the signature verifies:
    /// an unknown client, a disabled one, one that uses a secret and one whose keys did
    /// not sign all answer with the same [`FAILED`], with the same store work.
    pub async fn verify(
        &self,
        view: &View,
        presented: &ClientAssertion,
        endpoint: &str,
        now: i64,
    ) -> Result<Arc<ClientRecord>, AuthError> {
        let jwt = presented.jwt.expose();
        let header = jsonwebtoken::decode_header(jwt).map_err(|_| FAILED)?;
        check_header(&header)?;
        let sub = jsonwebtoken::dangerous::insecure_decode_claims::<Unverified>(jwt)
            .map_err(|_| FAILED)?
            .sub;
        // RFC 7521 §4.2: a client_id parameter must name the client the assertion names.
        if presented.client_id.as_ref().is_some_and(|id| *id != sub) {
            return Err(FAILED);
        }
        // Both lookups run whether or not the client exists.
        let client = view.client(&sub).await?;
        let jwks = view.client_jwks(&sub).await?;
        let (client, jwks) = match (client, jwks) {
            (Some(client), Some(jwks)) if client.auth_method == AuthMethod::PrivateKeyJwt => {
                (client, jwks)
            }
            _ => return Err(FAILED),
        };
        let jwks = serde_json::from_str::<JwkSet>(&jwks).map_err(|_| FAILED)?;
        let key = select_key(&jwks, &header).ok_or(FAILED)?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway;
        validation.validate_aud = false;
        // Times are checked against the request's `now` below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&client.client_id]);
        validation.sub = Some(client.client_id.clone());
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        let claims = jsonwebtoken::decode::<AssertionClaims>(jwt, &key, &validation)
            .map_err(|_| FAILED)?
            .claims;
        // The caller holds one of the client's keys: from here on it may learn why.
        client_may_authenticate(&client, AuthMethod::PrivateKeyJwt)?;
        let leeway = i64::try_from(self.leeway).unwrap_or(0);
        check_claims(&claims, now, leeway, [&*self.issuer, endpoint]).map_err(|_| FAILED)?;
        if !view
            .use_assertion_jti(&client.client_id, &claims.jti, claims.exp)
            .await?
        {
            return Err(FAILED);
        }
        Ok(client)
    }
}

/// The one answer to an assertion that does not authenticate its client, whatever the
/// reason: a caller that cannot sign for a client learns nothing about it.
const FAILED: AuthError = AuthError::failed("client assertion is not valid");

/// Only the asymmetric algorithms we accept, and no extension we do not understand
/// (RFC 7515 §4.1.11).
fn check_header(header: &Header) -> Result<(), AuthError> {
    if !ALGORITHMS.contains(&header.alg) || header.crit.is_some() {
        return Err(FAILED);
    }
    Ok(())
}

/// RFC 7523 §3 and draft-ietf-oauth-rfc7523bis: the audience is this server, as its
/// sole value — the issuer identifier, or the URL of the endpoint that received it; the
/// assertion is short-lived, neither issued nor valid only in the future (`iat`, `nbf`,
/// with `leeway`), and carries a `jti`. The error says why, for tests; callers answer
/// [`FAILED`] whatever it is.
fn check_claims(
    claims: &AssertionClaims,
    now: i64,
    leeway: i64,
    accepted_audiences: [&str; 2],
) -> Result<(), &'static str> {
    match claims.aud.0.as_slice() {
        [aud] if accepted_audiences.contains(&aud.as_str()) => {}
        _ => return Err("audience is not this server alone"),
    }
    if claims.exp < now - leeway {
        return Err("expired");
    }
    if claims.exp > now + MAX_LIFETIME_SECONDS + leeway {
        return Err("expires too far in the future");
    }
    if claims.iat.is_some_and(|iat| iat > now + leeway) {
        return Err("issued in the future");
    }
    if claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err("not valid yet");
    }
    if claims.jti.is_empty() || claims.jti.len() > MAX_JTI_LEN {
        return Err("no usable jti");
    }
    Ok(())
}

/// Whether a key of the client's set can verify `alg`: same key type and curve, and the
/// key's own `alg` and `use`, when given, agree.
fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let type_fits = match (&jwk.algorithm, alg) {
        (AlgorithmParameters::OctetKeyPair(p), Algorithm::EdDSA) => {
            p.curve == EllipticCurve::Ed25519
        }
        (AlgorithmParameters::EllipticCurve(p), Algorithm::ES256) => p.curve == EllipticCurve::P256,
        (AlgorithmParameters::RSA(_), Algorithm::RS256) => true,
        _ => false,
    };
    type_fits
        && jwk.common.key_algorithm.is_none_or(|a| a == alg.into())
        && jwk
            .common
            .public_key_use
            .as_ref()
            .is_none_or(|u| *u == PublicKeyUse::Signature)
}

/// The one key that verifies this assertion: named by `kid`, or the only fitting key when
/// the header names none.
pub(crate) fn select_key(jwks: &JwkSet, header: &Header) -> Option<DecodingKey> {
    let mut fitting = jwks.keys.iter().filter(|jwk| {
        key_fits(jwk, header.alg)
            && header
                .kid
                .as_ref()
                .is_none_or(|kid| jwk.common.key_id.as_ref() == Some(kid))
    });
    match (fitting.next(), fitting.next()) {
        (Some(jwk), None) => DecodingKey::from_jwk(jwk).ok(),
        _ => None,
    }
}

/// Private or symmetric key members (RFC 7518 §6.2.2, §6.3.2, §6.4.1), which a client's
/// public JWK Set must not carry.
const PRIVATE_MEMBERS: [&str; 9] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k", "priv"];

/// Checks a JWK Set a client registers (RFC 7517 §5): public keys only, each usable for
/// one of [`ALGORITHMS`], named by distinct `kid`s when there are several. Returns the
/// set as it will be stored.
pub fn parse_client_jwks(text: &str) -> Result<String, String> {
    let raw: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the JWK Set is not JSON: {e}"))?;
    let raw_keys = raw
        .get("keys")
        .and_then(|k| k.as_array())
        .filter(|k| !k.is_empty())
        .ok_or("the JWK Set needs a non-empty \"keys\" array")?;
    for key in raw_keys {
        let object = key.as_object().ok_or("each JWK must be a JSON object")?;
        if let Some(member) = PRIVATE_MEMBERS.iter().find(|m| object.contains_key(**m)) {
            return Err(format!(
                "a JWK carries the private or symmetric member {member:?}; register public keys only"
            ));
        }
    }
    let set: JwkSet = serde_json::from_value(raw.clone())
        .map_err(|e| format!("the JWK Set is malformed: {e}"))?;
    for (i, jwk) in set.keys.iter().enumerate() {
        if !ALGORITHMS.iter().any(|alg| key_fits(jwk, *alg)) {
            return Err(format!(
                "key {i} is not an Ed25519, P-256 or RSA signing key (EdDSA, ES256, RS256)"
            ));
        }
        DecodingKey::from_jwk(jwk).map_err(|e| format!("key {i} is not usable: {e}"))?;
        if let AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            if modulus_bits(&rsa.n) < MIN_RSA_BITS {
                return Err(format!(
                    "key {i} is an RSA key shorter than {MIN_RSA_BITS} bits"
                ));
            }
        }
        if set.keys.len() > 1 {
            let Some(kid) = &jwk.common.key_id else {
                return Err(format!("key {i} needs a kid: the set has several keys"));
            };
            if set.keys[..i]
                .iter()
                .any(|k| k.common.key_id.as_ref() == Some(kid))
            {
                return Err(format!("kid {kid:?} is used twice"));
            }
        }
    }
    serde_json::to_string(&set).map_err(|e| e.to_string())
}

/// The size of a base64url RSA modulus in bits, leading zeros aside.
fn modulus_bits(n: &str) -> usize {
    let bytes = URL_SAFE_NO_PAD.decode(n).unwrap_or_default();
    match bytes.iter().position(|b| *b != 0) {
        Some(first) => (bytes.len() - first) * 8 - bytes[first].leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use serde_json::json;

    fn ed_jwk(kid: &str) -> serde_json::Value {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        })
    }

    fn claims(aud: &[&str], exp: i64, jti: &str) -> AssertionClaims {
        AssertionClaims {
            aud: Audience(aud.iter().map(|a| (*a).to_owned()).collect()),
            exp,
            iat: None,
            nbf: None,
            jti: jti.to_owned(),
        }
    }

    const ISSUER: &str = "https://as.example";
    const TOKEN: &str = "https://as.example/token";

    #[test]
    fn audience_is_the_issuer_or_the_endpoint_as_sole_value() {
        let ok = |aud: &[&str]| check_claims(&claims(aud, 60, "j"), 0, 0, [ISSUER, TOKEN]).is_ok();
        assert!(ok(&[ISSUER]));
        assert!(ok(&[TOKEN]));
        assert!(!ok(&["https://other.example"]));
        assert!(!ok(&[ISSUER, "https://other.example"]));
        assert!(!ok(&[]));
    }

    #[test]
    fn assertion_lifetime_is_bounded() {
        let at = |exp| check_claims(&claims(&[ISSUER], exp, "j"), 1_000, 10, [ISSUER, TOKEN]);
        assert!(at(1_000 + MAX_LIFETIME_SECONDS + 10).is_ok());
        assert!(at(1_000 + MAX_LIFETIME_SECONDS + 11).is_err());
    }

    #[test]
    fn assertion_not_yet_valid_is_refused_past_the_leeway() {
        let with_nbf = |nbf| {
            let mut c = claims(&[ISSUER], 1_060, "j");
            c.nbf = Some(nbf);
            check_claims(&c, 1_000, 10, [ISSUER, TOKEN])
        };
        assert!(with_nbf(1_010).is_ok());
        assert_eq!(with_nbf(1_011), Err("not valid yet"));
        assert!(with_nbf(1_000 + 3_600).is_err());
    }

    #[test]
    fn jti_is_required_and_bounded() {
        let with = |jti: &str| check_claims(&claims(&[ISSUER], 60, jti), 0, 0, [ISSUER, TOKEN]);
        assert!(with("").is_err());
        assert!(with(&"j".repeat(MAX_JTI_LEN + 1)).is_err());
    }

    #[test]
    fn modulus_size_ignores_leading_zeros() {
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0, 0x01, 0xff])), 9);
        assert_eq!(modulus_bits(&URL_SAFE_NO_PAD.encode([0x80; 256])), 2048);
        assert_eq!(modulus_bits("!"), 0);
    }

    #[test]
    fn symmetric_and_unsigned_algorithms_are_refused() {
        for alg in [Algorithm::HS256, Algorithm::HS512, Algorithm::PS256] {
            assert!(check_header(&Header::new(alg)).is_err(), "{alg:?}");
        }
        assert!(check_header(&Header::new(Algorithm::EdDSA)).is_ok());
    }

    #[test]
    fn registered_jwks_hold_public_signing_keys_only() {
        let one = json!({"keys": [ed_jwk("a")]}).to_string();
        assert!(parse_client_jwks(&one).is_ok());
        let mut private = ed_jwk("a");
        private["d"] = json!("secret");
        assert!(parse_client_jwks(&json!({"keys": [private]}).to_string()).is_err());
        let hmac = json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}).to_string();
        assert!(parse_client_jwks(&hmac).is_err());
        assert!(parse_client_jwks(r#"{"keys": []}"#).is_err());
        assert!(parse_client_jwks("not json").is_err());
        let twice = json!({"keys": [ed_jwk("a"), ed_jwk("a")]}).to_string();
        assert!(parse_client_jwks(&twice).is_err());
        let mut unnamed = ed_jwk("b");
        unnamed.as_object_mut().unwrap().remove("kid");
        let several = json!({"keys": [ed_jwk("a"), unnamed]}).to_string();
        assert!(parse_client_jwks(&several).is_err());
    }

    #[test]
    fn key_is_chosen_by_kid_and_type() {
        let set: JwkSet =
            serde_json::from_value(json!({"keys": [ed_jwk("a"), ed_jwk("b")]})).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        assert!(select_key(&set, &header).is_none(), "two keys and no kid");
        header.kid = Some("b".to_owned());
        assert!(select_key(&set, &header).is_some());
        header.kid = Some("c".to_owned());
        assert!(select_key(&set, &header).is_none());
        let mut es = Header::new(Algorithm::ES256);
        es.kid = Some("a".to_owned());
        assert!(
            select_key(&set, &es).is_none(),
            "an Ed25519 key cannot verify ES256"
        );
    }
}
