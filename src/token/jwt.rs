//! JWT access tokens: the key set, verification and minting.
//!
//! Verification picks the key by `kid`, which every token must name, and accepts only
//! that key's algorithm, so neither `alg: none` nor an HS256 token keyed with a public
//! key's bytes can pass.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair,
};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;

use super::claims::AccessClaims;
use super::kek::{KekError, KeyEncryptionKey};
use crate::config::{Config, KeyConfig};
use crate::policy::{TokenState, token_state};
use crate::secret::RawToken;
use crate::store::{Store, StoreError, StoredKey};

/// RFC 9068 §2.1: the `typ` header of JWT access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Shortest HS256 secret accepted: the hash output size (RFC 7518 §3.2).
const MIN_HMAC_SECRET_BYTES: usize = 32;

/// Why a JWT is not an active access token. Each reads inactive; the reason is for logs
/// and metrics only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtRejection {
    Malformed,
    WrongType,
    UnsupportedHeader,
    UnknownKey,
    WrongAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    UntrustedIssuer,
}

/// Problems loading or using keys; these stop start-up with the key named.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("jwt key {kid:?}: cannot read {}: {source}", path.display())]
    Read {
        kid: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("jwt key {kid:?}: {why}")]
    Invalid { kid: String, why: String },
    #[error("loading signing keys: {0}")]
    Store(#[from] StoreError),
    #[error("no configured key can sign: give one key a private_key_file or secret_env")]
    NoSigningKey,
    #[error("signing failed: {0}")]
    Sign(#[source] jsonwebtoken::errors::Error),
    #[error(transparent)]
    Kek(#[from] KekError),
}

struct VerifyingKey {
    alg: Algorithm,
    key: DecodingKey,
    /// Checks the signature, `iss` and the presence of `exp`, `iss` and `sub`; times are
    /// checked by [`check_times`], the same way for fresh and cached tokens.
    validation: Validation,
}

struct SigningKey {
    kid: String,
    alg: Algorithm,
    key: EncodingKey,
    /// When it begins to sign (Unix seconds); `i64::MIN` for a configured key.
    from: i64,
}

/// Every key that verifies access tokens, and those that sign new ones: each signs from
/// its activation time until the next one's. Which key signs is derived from the time
/// alone, so every instance switches at the same moment without a store write, and a
/// key set loaded before a key's activation signs with it once the time has come.
pub struct KeySet {
    verifiers: HashMap<String, VerifyingKey>,
    /// Latest activation first.
    signers: Vec<SigningKey>,
    /// The public keys, as published at `jwks_uri`.
    published: JwkSet,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.verifiers.keys().collect();
        kids.sort();
        f.debug_struct("KeySet")
            .field("kids", &kids)
            .field("signer", &self.signing_kid())
            .finish()
    }
}

impl KeySet {
    /// Configured keys when there are any; otherwise the keys this service generated,
    /// creating an Ed25519 key in the store on first start, with the key-encryption key
    /// of this configuration (see [`crate::token::kek::resolve`]).
    pub async fn load(config: &Config, store: &Store) -> Result<Self, KeyError> {
        let kek = super::kek::resolve(config)?;
        Self::load_with(config, store, kek.as_ref()).await
    }

    /// [`KeySet::load`] with the key-encryption key already resolved. Generated keys
    /// stored in plain PKCS#8 (before keys were encrypted) are sealed on the way.
    pub async fn load_with(
        config: &Config,
        store: &Store,
        kek: Option<&KeyEncryptionKey>,
    ) -> Result<Self, KeyError> {
        let mut builder = Builder::new(config);
        if config.jwt.keys.is_empty() {
            let kek = kek.ok_or(KekError::Missing)?;
            let mut stored = store.signing_keys().await?;
            if stored.is_empty() {
                // The first key has nothing to be published ahead of: it signs at once.
                store
                    .insert_signing_key(&kek.seal(&generate_ed25519()))
                    .await?;
                stored = store.signing_keys().await?;
            }
            let mut sealed = 0;
            // Newest first: published first, and ahead on equal activation times.
            for key in stored.iter().rev() {
                let plain = kek.open(key)?;
                if key.encryption.is_none() && store.seal_signing_key(&kek.seal(key)).await? {
                    sealed += 1;
                }
                builder.add_stored(key, &plain)?;
            }
            if sealed > 0 {
                tracing::info!(keys = sealed, "encrypted the stored signing keys");
            }
        } else {
            for key in &config.jwt.keys {
                builder.add_configured(key)?;
            }
        }
        Ok(builder.finish())
    }

    /// The key that signs at `now`: the latest activated; before any activation (a clock
    /// set back), the earliest.
    fn signer_at(&self, now: i64) -> Option<&SigningKey> {
        self.signers
            .iter()
            .find(|s| s.from <= now)
            .or_else(|| self.signers.last())
    }

    /// The kid of the key that signs now, if any.
    pub fn signing_kid(&self) -> Option<&str> {
        self.signing_kid_at(super::now())
    }

    /// The kid of the key that signs at `now`, if any.
    pub fn signing_kid_at(&self, now: i64) -> Option<&str> {
        self.signer_at(now).map(|s| s.kid.as_str())
    }

    /// Verifies header, key, signature and issuer but not the times: for revocation,
    /// where an expired token is still a token, and for caching, where the times are
    /// checked on every use.
    pub fn verify_ignoring_time(&self, token: &str) -> Result<AccessClaims, JwtRejection> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| JwtRejection::Malformed)?;
        // RFC 7515 §4.1.11: extensions we do not understand must make the token invalid.
        if header.crit.is_some() {
            return Err(JwtRejection::UnsupportedHeader);
        }
        // RFC 9068 §4: the typ header separates access tokens from other JWTs.
        if !header.typ.as_deref().is_some_and(is_access_token_typ) {
            return Err(JwtRejection::WrongType);
        }
        // Every token this service signs names its key; one that names none is not ours,
        // even when a single key would verify it.
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifiers.get(kid))
            .ok_or(JwtRejection::UnknownKey)?;
        if key.alg != header.alg {
            return Err(JwtRejection::WrongAlgorithm);
        }
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key.key, &key.validation)
            .map(|data| data.claims)
            .map_err(|err| rejection(err.kind()))?;
        if !names_everything(&claims) {
            return Err(JwtRejection::Malformed);
        }
        Ok(claims)
    }

    /// Signs access-token claims, `typ: at+jwt`, with the key that signs at their `iat`.
    pub fn sign(&self, claims: &AccessClaims) -> Result<RawToken, KeyError> {
        self.sign_typed(ACCESS_TOKEN_TYP, claims, claims.iat)
    }

    /// Signs any claim set with the key that signs at `at`, under the given `typ` header
    /// (RFC 8725 §3.11: explicit typing keeps one kind of JWT from passing for another).
    pub fn sign_typed<T: Serialize>(
        &self,
        typ: &str,
        claims: &T,
        at: i64,
    ) -> Result<RawToken, KeyError> {
        let signer = self.signer_at(at).ok_or(KeyError::NoSigningKey)?;
        let mut header = Header::new(signer.alg);
        header.typ = Some(typ.to_owned());
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, claims, &signer.key)
            .map(RawToken::new)
            .map_err(KeyError::Sign)
    }

    /// The algorithm of the signing key when others can verify its signatures: an HS256
    /// signer's output proves nothing to a party without the secret.
    pub fn public_signing_alg(&self, now: i64) -> Option<Algorithm> {
        self.signer_at(now)
            .map(|s| s.alg)
            .filter(|alg| !is_symmetric(*alg))
    }

    /// The public verification keys (RFC 7517 §5), for `jwks_uri`. Symmetric keys are
    /// never published.
    pub fn jwks(&self) -> &JwkSet {
        &self.published
    }
}

fn is_symmetric(alg: Algorithm) -> bool {
    matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

/// The public JWK of a verification key, named by its kid and marked for signatures.
fn public_jwk(kid: &str, alg: Algorithm, key: &DecodingKey) -> Option<Jwk> {
    if is_symmetric(alg) {
        return None;
    }
    let mut jwk = Jwk::from_decoding_key(key, Some(alg)).ok()?;
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Some(jwk)
}

/// RFC 7519 §4.1.4-6 with `leeway` seconds of skew: not on or after `exp`, not before
/// `nbf`, not issued in the future.
pub fn check_times(claims: &AccessClaims, now: i64, leeway: i64) -> Result<(), JwtRejection> {
    let earliest = claims.nbf.unwrap_or(claims.iat).max(claims.iat);
    match token_state(false, claims.exp, Some(earliest), now, leeway) {
        TokenState::Expired => Err(JwtRejection::Expired),
        TokenState::NotYetValid => Err(JwtRejection::NotYetValid),
        // Revocation of a JWT is looked up by `jti` by whoever holds the list.
        TokenState::Active | TokenState::Revoked => Ok(()),
    }
}

/// RFC 9068 §2.2: `sub`, `client_id` and `jti` identify the subject, the client and the
/// token; an empty one names nobody (and an empty `jti` could never be revoked).
fn names_everything(claims: &AccessClaims) -> bool {
    ![&claims.sub, &claims.client_id, &claims.jti]
        .iter()
        .any(|claim| claim.is_empty())
}

fn is_access_token_typ(typ: &str) -> bool {
    let typ = typ.strip_prefix("application/").unwrap_or(typ);
    typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYP)
}

fn rejection(kind: &ErrorKind) -> JwtRejection {
    match kind {
        ErrorKind::InvalidSignature => JwtRejection::BadSignature,
        ErrorKind::ExpiredSignature => JwtRejection::Expired,
        ErrorKind::ImmatureSignature => JwtRejection::NotYetValid,
        ErrorKind::InvalidIssuer => JwtRejection::UntrustedIssuer,
        ErrorKind::InvalidAlgorithm => JwtRejection::WrongAlgorithm,
        _ => JwtRejection::Malformed,
    }
}

/// A new Ed25519 key, plain PKCS#8 (seal it before storing it), signing from now.
pub fn generate_ed25519() -> StoredKey {
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system random source failed");
    let now = super::now();
    StoredKey {
        kid: super::random_string(12),
        alg: "EdDSA".to_owned(),
        private_key: pkcs8.as_ref().to_vec(),
        encryption: None,
        created_at: now,
        activates_at: now,
    }
}

struct Builder {
    verifiers: HashMap<String, VerifyingKey>,
    /// In the order added; on equal activation times the first added signs.
    signers: Vec<SigningKey>,
    issuers: Vec<String>,
    published: Vec<Jwk>,
}

impl Builder {
    fn new(config: &Config) -> Self {
        Builder {
            verifiers: HashMap::new(),
            signers: Vec::new(),
            issuers: config.trusted_issuers(),
            published: Vec::new(),
        }
    }

    fn finish(mut self) -> KeySet {
        // Stable: among equal activation times the first added stays ahead.
        self.signers.sort_by_key(|s| std::cmp::Reverse(s.from));
        KeySet {
            verifiers: self.verifiers,
            signers: self.signers,
            published: JwkSet {
                keys: self.published,
            },
        }
    }

    /// Adds a verifying key, and a signing one from `from` on when `signing` holds one.
    fn add(
        &mut self,
        kid: &str,
        alg: Algorithm,
        key: DecodingKey,
        signing: Option<(EncodingKey, i64)>,
    ) {
        let mut validation = Validation::new(alg);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.set_issuer(&self.issuers);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        self.published.extend(public_jwk(kid, alg, &key));
        self.verifiers.insert(
            kid.to_owned(),
            VerifyingKey {
                alg,
                key,
                validation,
            },
        );
        if let Some((key, from)) = signing {
            self.signers.push(SigningKey {
                kid: kid.to_owned(),
                alg,
                key,
                from,
            });
        }
    }

    /// A configured key with a private part: the first one signs, always.
    fn add_configured_pair(
        &mut self,
        kid: &str,
        alg: Algorithm,
        key: DecodingKey,
        signing: EncodingKey,
    ) {
        let signing = self.signers.is_empty().then_some((signing, i64::MIN));
        self.add(kid, alg, key, signing);
    }

    /// A generated key, whose private part `plain` (PKCS#8) was opened from the store.
    fn add_stored(&mut self, stored: &StoredKey, plain: &[u8]) -> Result<(), KeyError> {
        let invalid = |why: &str| KeyError::Invalid {
            kid: stored.kid.clone(),
            why: why.to_owned(),
        };
        if stored.alg != "EdDSA" {
            return Err(invalid("stored keys must be EdDSA"));
        }
        let pair = Ed25519KeyPair::from_pkcs8(plain)
            .map_err(|_| invalid("stored key is not an Ed25519 PKCS#8 key"))?;
        self.add(
            &stored.kid,
            Algorithm::EdDSA,
            DecodingKey::from_ed_der(pair.public_key().as_ref()),
            Some((EncodingKey::from_ed_der(plain), stored.activates_at)),
        );
        Ok(())
    }

    fn add_configured(&mut self, config: &KeyConfig) -> Result<(), KeyError> {
        let kid = config.kid.as_str();
        let invalid = |why: String| KeyError::Invalid {
            kid: kid.to_owned(),
            why,
        };
        let alg: Algorithm = config
            .alg
            .parse()
            .map_err(|_| invalid(format!("unsupported alg {:?}", config.alg)))?;
        if let Some(var) = &config.secret_env {
            let secret = std::env::var(var)
                .map_err(|_| invalid(format!("environment variable {var} is not set")))?;
            if secret.len() < MIN_HMAC_SECRET_BYTES {
                return Err(invalid(format!(
                    "the secret in {var} is shorter than {MIN_HMAC_SECRET_BYTES} bytes"
                )));
            }
            let decoding = DecodingKey::from_secret(secret.as_bytes());
            let encoding = EncodingKey::from_secret(secret.as_bytes());
            self.add_configured_pair(kid, alg, decoding, encoding);
            return Ok(());
        }
        if let Some(path) = &config.public_key_file {
            let pem = read_key_file(kid, path)?;
            let decoding = match alg {
                Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem),
                Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                _ => return Err(invalid(format!("unsupported alg {:?}", config.alg))),
            }
            .map_err(|e| {
                invalid(format!(
                    "{} is not a {} public key: {e}",
                    path.display(),
                    config.alg
                ))
            })?;
            self.add(kid, alg, decoding, None);
            return Ok(());
        }
        let Some(path) = &config.private_key_file else {
            return Err(invalid("no key material".to_owned()));
        };
        let pem_bytes = read_key_file(kid, path)?;
        let not_a_key = |e: &dyn fmt::Display| {
            invalid(format!(
                "{} is not a {} private key: {e}",
                path.display(),
                config.alg
            ))
        };
        let parsed = pem::parse(&pem_bytes).map_err(|e| not_a_key(&e))?;
        let der = parsed.contents();
        let (decoding, encoding) = match alg {
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|e| not_a_key(&e))?;
                (
                    DecodingKey::from_ed_der(pair.public_key().as_ref()),
                    EncodingKey::from_ed_pem(&pem_bytes).map_err(|e| not_a_key(&e))?,
                )
            }
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(|e| not_a_key(&e))?;
                (
                    DecodingKey::from_ec_der(pair.public_key().as_ref()),
                    EncodingKey::from_ec_pem(&pem_bytes).map_err(|e| not_a_key(&e))?,
                )
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(der)
                    .or_else(|_| RsaKeyPair::from_der(der))
                    .map_err(|e| not_a_key(&e))?;
                (
                    DecodingKey::from_rsa_der(pair.public_key().as_ref()),
                    EncodingKey::from_rsa_pem(&pem_bytes).map_err(|e| not_a_key(&e))?,
                )
            }
            _ => return Err(invalid(format!("unsupported alg {:?}", config.alg))),
        };
        self.add_configured_pair(kid, alg, decoding, encoding);
        Ok(())
    }
}

fn read_key_file(kid: &str, path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        kid: kid.to_owned(),
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token::claims::Audience;

    fn key_set() -> KeySet {
        let mut builder = Builder::new(&Config::default());
        let key = generate_ed25519();
        builder.add_stored(&key, &key.private_key).unwrap();
        builder.finish()
    }

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: "http://127.0.0.1:8080".to_owned(),
            sub: "alice".to_owned(),
            aud: Audience(vec!["https://api".to_owned()]),
            client_id: "c1".to_owned(),
            scope: Some("read".to_owned()),
            username: None,
            exp: now + 60,
            iat: now,
            nbf: None,
            jti: "j1".to_owned(),
            act: None,
        }
    }

    /// What introspection does with a JWT: signature and issuer, then times.
    fn verify_at(keys: &KeySet, token: &str, now: i64) -> Result<AccessClaims, JwtRejection> {
        let claims = keys.verify_ignoring_time(token)?;
        check_times(&claims, now, 0)?;
        Ok(claims)
    }

    #[test]
    fn signed_token_verifies() {
        let keys = key_set();
        let now = crate::token::now();
        let token = keys.sign(&claims(now)).unwrap();
        assert_eq!(verify_at(&keys, token.expose(), now).unwrap(), claims(now));
    }

    #[test]
    fn token_from_another_key_set_is_unknown_key() {
        let now = crate::token::now();
        let token = key_set().sign(&claims(now)).unwrap();
        assert_eq!(
            verify_at(&key_set(), token.expose(), now),
            Err(JwtRejection::UnknownKey)
        );
    }

    #[test]
    fn issued_in_the_future_is_not_yet_valid() {
        let keys = key_set();
        let now = crate::token::now();
        let mut c = claims(now);
        c.iat = now + 3_600;
        c.exp = now + 7_200;
        let token = keys.sign(&c).unwrap();
        assert_eq!(
            verify_at(&keys, token.expose(), now),
            Err(JwtRejection::NotYetValid)
        );
    }

    #[test]
    fn expired_token_verifies_for_revocation_only() {
        let keys = key_set();
        let now = crate::token::now();
        let mut c = claims(now - 7_200);
        c.exp = now - 3_600;
        let token = keys.sign(&c).unwrap();
        assert_eq!(
            verify_at(&keys, token.expose(), now),
            Err(JwtRejection::Expired)
        );
        assert_eq!(keys.verify_ignoring_time(token.expose()).unwrap(), c);
    }

    #[test]
    fn times_are_checked_with_leeway() {
        let c = claims(1_000);
        assert_eq!(check_times(&c, 1_000, 0), Ok(()));
        assert_eq!(check_times(&c, 1_060, 0), Err(JwtRejection::Expired));
        assert_eq!(check_times(&c, 1_060, 5), Ok(()));
        assert_eq!(check_times(&c, 990, 0), Err(JwtRejection::NotYetValid));
        let mut later = c.clone();
        later.nbf = Some(1_030);
        assert_eq!(
            check_times(&later, 1_020, 0),
            Err(JwtRejection::NotYetValid)
        );
        assert_eq!(check_times(&later, 1_020, 10), Ok(()));
    }

    #[test]
    fn typ_accepts_media_type_form() {
        assert!(is_access_token_typ("at+jwt"));
        assert!(is_access_token_typ("application/AT+JWT"));
        assert!(!is_access_token_typ("JWT"));
    }

    #[test]
    fn published_key_verifies_what_the_set_signs() {
        let keys = key_set();
        let jwk = &keys.jwks().keys[0];
        assert_eq!(jwk.common.key_id.as_deref(), keys.signing_kid());
        assert_eq!(
            keys.public_signing_alg(crate::token::now()),
            Some(Algorithm::EdDSA)
        );
        let now = crate::token::now();
        let token = keys.sign(&claims(now)).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_aud = false;
        let key = DecodingKey::from_jwk(jwk).unwrap();
        assert!(jsonwebtoken::decode::<AccessClaims>(token.expose(), &key, &validation).is_ok());
    }

    #[test]
    fn symmetric_keys_are_never_published() {
        let mut builder = Builder::new(&Config::default());
        let secret = b"0123456789abcdef0123456789abcdef";
        builder.add_configured_pair(
            "shared",
            Algorithm::HS256,
            DecodingKey::from_secret(secret),
            EncodingKey::from_secret(secret),
        );
        let public = generate_ed25519();
        builder.add(
            &public.kid,
            Algorithm::EdDSA,
            DecodingKey::from_ed_der(
                Ed25519KeyPair::from_pkcs8(&public.private_key)
                    .unwrap()
                    .public_key()
                    .as_ref(),
            ),
            None,
        );
        let keys = builder.finish();
        assert_eq!(keys.jwks().keys.len(), 1);
        assert_ne!(keys.jwks().keys[0].common.key_id.as_deref(), Some("shared"));
        assert_eq!(keys.signing_kid(), Some("shared"));
        assert_eq!(keys.public_signing_alg(crate::token::now()), None);
    }

    #[test]
    fn a_staged_key_signs_from_its_activation_and_verifies_before() {
        let mut builder = Builder::new(&Config::default());
        let mut old = generate_ed25519();
        old.activates_at = 1_000;
        let mut next = generate_ed25519();
        next.created_at = 2_000;
        next.activates_at = 2_300;
        for key in [&old, &next] {
            builder.add_stored(key, &key.private_key).unwrap();
        }
        let keys = builder.finish();
        assert_eq!(keys.signing_kid_at(2_299), Some(old.kid.as_str()));
        assert_eq!(keys.signing_kid_at(2_300), Some(next.kid.as_str()));
        assert_eq!(
            keys.signing_kid_at(999),
            Some(old.kid.as_str()),
            "clock set back"
        );
        let kid_of = |iat: i64| {
            let mut c = claims(iat);
            c.exp = iat + 60;
            let token = keys.sign(&c).unwrap();
            jsonwebtoken::decode_header(token.expose()).unwrap().kid
        };
        // The same loaded set switches when the time comes, with nothing reloaded.
        assert_eq!(kid_of(2_299), Some(old.kid.clone()));
        assert_eq!(kid_of(2_300), Some(next.kid.clone()));
        // Both are published and verify from the start.
        let published: Vec<_> = keys
            .jwks()
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert!(published.contains(&old.kid) && published.contains(&next.kid));
        let mut c = claims(2_000);
        c.exp = 2_060;
        let early = keys.sign(&c).unwrap();
        assert!(keys.verify_ignoring_time(early.expose()).is_ok());
    }

    #[test]
    fn on_equal_activation_the_first_added_key_signs() {
        // The store's keys are added newest first.
        let mut builder = Builder::new(&Config::default());
        let first = generate_ed25519();
        let mut second = generate_ed25519();
        second.activates_at = first.activates_at;
        for key in [&second, &first] {
            builder.add_stored(key, &key.private_key).unwrap();
        }
        let keys = builder.finish();
        assert_eq!(
            keys.signing_kid_at(first.activates_at),
            Some(second.kid.as_str())
        );
    }

    #[test]
    fn debug_shows_kids_not_keys() {
        let keys = key_set();
        let shown = format!("{keys:?}");
        assert!(shown.contains(keys.signing_kid().unwrap()));
        assert!(!shown.contains("der"));
    }
}
