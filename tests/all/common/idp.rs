//! An organisation's identity provider as far as identity assertions go: on loopback, it
//! serves OpenID Connect discovery and a JWKS, and mints Identity Assertion JWT
//! Authorization Grants (ID-JAG) signed with its own P-256 key (ES256), as Okta or Entra
//! ID would for one of their people and one MCP client.

use std::sync::{Arc, Mutex};

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The media type of an ID-JAG (`typ`).
pub const ID_JAG_TYPE: &str = "oauth-id-jag+jwt";

/// A signing key of the provider and its public JWK.
pub struct SigningKey {
    pub kid: String,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl SigningKey {
    pub fn generate(kid: &str) -> SigningKey {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        // The uncompressed point: 0x04, then x and y.
        let point = pair.public_key().as_ref();
        let jwk = json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        SigningKey {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk,
        }
    }

    /// `claims` signed with this key under `header` (its `kid` set to this key's).
    pub fn sign(&self, mut header: Header, claims: &Value) -> String {
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// The header of an ID-JAG.
pub fn id_jag_header() -> Header {
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(ID_JAG_TYPE.to_owned());
    header
}

/// The provider, serving until dropped with the test's runtime.
pub struct IdentityProvider {
    pub issuer: String,
    pub key: SigningKey,
    published: Arc<Mutex<Vec<Value>>>,
    /// How many times the JWKS was fetched.
    pub jwks_fetches: Arc<Mutex<u32>>,
}

impl IdentityProvider {
    pub async fn start() -> IdentityProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let key = SigningKey::generate("k1");
        let published = Arc::new(Mutex::new(vec![key.jwk.clone()]));
        let jwks_fetches = Arc::new(Mutex::new(0));
        let metadata = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/authorize"),
            "token_endpoint": format!("{issuer}/token"),
            "jwks_uri": format!("{issuer}/jwks"),
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
            "grant_types_supported": ["authorization_code",
                "urn:ietf:params:oauth:grant-type:token-exchange"],
            "identity_chaining_requested_token_types_supported":
                ["urn:ietf:params:oauth:token-type:id-jag"],
        });
        let (keys, fetches) = (published.clone(), jwks_fetches.clone());
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                axum::routing::get(move || async move { axum::Json(metadata) }),
            )
            .route(
                "/jwks",
                axum::routing::get(move || async move {
                    *fetches.lock().unwrap() += 1;
                    let keys = keys.lock().unwrap().clone();
                    axum::Json(json!({ "keys": keys }))
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        IdentityProvider {
            issuer,
            key,
            published,
            jwks_fetches,
        }
    }

    /// Publishes another key beside the current ones (a rotation under way).
    pub fn publish(&self, key: &SigningKey) {
        self.published.lock().unwrap().push(key.jwk.clone());
    }

    pub fn fetches(&self) -> u32 {
        *self.jwks_fetches.lock().unwrap()
    }

    /// The claims of an ID-JAG for `sub` and `client_id`, meant for `audience` (the
    /// authorization server's issuer), issued now for two minutes, with a fresh `jti`.
    pub fn claims(&self, audience: &str, client_id: &str, sub: &str) -> Value {
        let now = introspectd::token::now();
        json!({
            "iss": self.issuer,
            "sub": sub,
            "aud": audience,
            "client_id": client_id,
            "jti": introspectd::token::random_string(16),
            "iat": now,
            "exp": now + 120,
        })
    }

    /// `claims` as an ID-JAG signed with the provider's key.
    pub fn mint(&self, claims: &Value) -> String {
        self.key.sign(id_jag_header(), claims)
    }
}
