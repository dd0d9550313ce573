//! Registered clients: their records, policies and, for `private_key_jwt`, JWK Sets.

use super::{Change, Pool, Store, StoreError, decode_list, encode_list};
use crate::secret::SecretHash;
use crate::vocabulary::{ApplicationType, AuthMethod, ClientOrigin, GrantType, InactiveBudget};

/// A client's inactive budget, stored as NULL (configured), 0 (off) or the limit.
fn budget_from_column(value: Option<i64>) -> Result<InactiveBudget, StoreError> {
    match value {
        None => Ok(InactiveBudget::Configured),
        Some(0) => Ok(InactiveBudget::Off),
        Some(n) => u32::try_from(n)
            .map(InactiveBudget::Limit)
            .map_err(|_| StoreError::Corrupt {
                what: "client inactive_budget",
            }),
    }
}

fn budget_to_column(budget: InactiveBudget) -> Option<i64> {
    match budget {
        InactiveBudget::Configured => None,
        InactiveBudget::Off => Some(0),
        InactiveBudget::Limit(n) => Some(i64::from(n)),
    }
}

/// What a client may obtain at the token endpoint and how strictly it authenticates.
/// Nothing unless granted: no grant type, no resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientPolicy {
    pub grant_types: Vec<GrantType>,
    /// Resources (RFC 8707) it may obtain tokens for: the `aud` of its tokens.
    pub resources: Vec<String>,
    /// Only the registered `auth_method` is accepted, not its secret sibling.
    pub strict_auth_method: bool,
    pub inactive_budget: InactiveBudget,
    /// Targets (resources or audiences) it may exchange a user's token for (RFC 8693).
    pub exchange_targets: Vec<String>,
}

/// A registered client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientRecord {
    pub client_id: String,
    pub name: String,
    pub secret_hash: SecretHash,
    pub auth_method: AuthMethod,
    /// Registered scopes, space-separated as in RFC 6749 §3.3.
    pub scope: String,
    /// Audiences whose tokens this client may introspect (RFC 7662 §4).
    pub audiences: Vec<String>,
    /// Where it may receive authorization codes, matched by
    /// [`crate::policy::redirect_uri_matches`].
    pub redirect_uris: Vec<String>,
    pub policy: ClientPolicy,
    pub disabled: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// How it came to be registered.
    pub origin: ClientOrigin,
    /// When it last obtained a token, to the hour ([`Store::touch_client`]); a cached
    /// record may lag behind the store.
    pub last_used_at: Option<i64>,
    /// A self-registered client's home page and logo (RFC 7591 §2), https only; stored and
    /// shown to operators, never loaded into a page.
    pub client_uri: Option<String>,
    pub logo_uri: Option<String>,
    /// `native` or `web`, as a self-registered client registered (or had inferred);
    /// `None` for an operator's client.
    pub application_type: Option<ApplicationType>,
    /// The secret a `client rotate-secret --grace` replaced, while it may still be used.
    pub previous_secret: Option<PreviousSecret>,
}

/// A replaced client secret's hash and when it stops working.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreviousSecret {
    pub hash: SecretHash,
    /// Seconds since the epoch; the secret works before this time only.
    pub expires_at: i64,
}

#[cfg(test)]
impl ClientRecord {
    /// A confidential client granted nothing, for the unit tests of the rules.
    pub fn sample(client_id: &str) -> Self {
        ClientRecord {
            client_id: client_id.to_owned(),
            name: client_id.to_owned(),
            secret_hash: SecretHash::new("x"),
            auth_method: AuthMethod::ClientSecretBasic,
            scope: String::new(),
            audiences: Vec::new(),
            redirect_uris: Vec::new(),
            policy: ClientPolicy::default(),
            disabled: false,
            created_at: 0,
            updated_at: 0,
            origin: ClientOrigin::default(),
            last_used_at: None,
            client_uri: None,
            logo_uri: None,
            application_type: None,
            previous_secret: None,
        }
    }
}

impl ClientRecord {
    /// The hashes a presented secret may match at `now`: the current secret's, then,
    /// within its grace period, the replaced one's. Never more than two.
    pub fn secret_hashes(&self, now: i64) -> Vec<&SecretHash> {
        let previous = self.previous_secret.as_ref();
        std::iter::once(&self.secret_hash)
            .chain(previous.filter(|p| now < p.expires_at).map(|p| &p.hash))
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    name: String,
    secret_hash: String,
    auth_method: String,
    scope: String,
    audiences: String,
    disabled: bool,
    created_at: i64,
    updated_at: i64,
    grant_types: String,
    resources: String,
    strict_auth_method: bool,
    inactive_budget: Option<i64>,
    redirect_uris: String,
    origin: String,
    last_used_at: Option<i64>,
    client_uri: Option<String>,
    logo_uri: Option<String>,
    application_type: Option<String>,
    previous_secret_hash: Option<String>,
    previous_secret_expires_at: Option<i64>,
    exchange_targets: String,
}

impl TryFrom<ClientRow> for ClientRecord {
    type Error = StoreError;

    fn try_from(row: ClientRow) -> Result<Self, StoreError> {
        Ok(ClientRecord {
            client_id: row.client_id,
            name: row.name,
            secret_hash: SecretHash::new(row.secret_hash),
            auth_method: AuthMethod::parse(&row.auth_method).ok_or(StoreError::Corrupt {
                what: "client auth_method",
            })?,
            scope: row.scope,
            audiences: decode_list(&row.audiences, "client audiences")?,
            redirect_uris: decode_list(&row.redirect_uris, "client redirect_uris")?,
            policy: ClientPolicy {
                grant_types: decode_list(&row.grant_types, "client grant_types")?
                    .iter()
                    .map(|g| GrantType::parse(g))
                    .collect::<Option<_>>()
                    .ok_or(StoreError::Corrupt {
                        what: "client grant_types",
                    })?,
                resources: decode_list(&row.resources, "client resources")?,
                strict_auth_method: row.strict_auth_method,
                inactive_budget: budget_from_column(row.inactive_budget)?,
                exchange_targets: decode_list(&row.exchange_targets, "client exchange_targets")?,
            },
            disabled: row.disabled,
            created_at: row.created_at,
            updated_at: row.updated_at,
            origin: ClientOrigin::parse(&row.origin).ok_or(StoreError::Corrupt {
                what: "client origin",
            })?,
            last_used_at: row.last_used_at,
            client_uri: row.client_uri,
            logo_uri: row.logo_uri,
            application_type: row
                .application_type
                .map(|t| {
                    ApplicationType::parse(&t).ok_or(StoreError::Corrupt {
                        what: "client application_type",
                    })
                })
                .transpose()?,
            previous_secret: match (row.previous_secret_hash, row.previous_secret_expires_at) {
                (Some(hash), Some(expires_at)) => Some(PreviousSecret {
                    hash: SecretHash::new(hash),
                    expires_at,
                }),
                _ => None,
            },
        })
    }
}

fn encode_grant_types(grant_types: &[GrantType]) -> String {
    serde_json::Value::from(grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()).to_string()
}

/// Seconds between two writes of a client's `last_used_at`.
pub const TOUCH_EVERY: i64 = 3_600;

macro_rules! client_columns {
    () => {
        "client_id, name, secret_hash, auth_method, scope, audiences, disabled, created_at, \
         updated_at, grant_types, resources, strict_auth_method, inactive_budget, redirect_uris, \
         origin, last_used_at, client_uri, logo_uri, application_type, previous_secret_hash, \
         previous_secret_expires_at, exchange_targets"
    };
}

/// Binds every column of [`client_columns!`] of `client`, in order, to `query`.
macro_rules! bind_client_row {
    ($query:expr, $client:expr) => {
        $query
            .bind(&$client.client_id)
            .bind(&$client.name)
            .bind($client.secret_hash.expose())
            .bind($client.auth_method.as_str())
            .bind(&$client.scope)
            .bind(encode_list(&$client.audiences))
            .bind($client.disabled)
            .bind($client.created_at)
            .bind($client.updated_at)
            .bind(encode_grant_types(&$client.policy.grant_types))
            .bind(encode_list(&$client.policy.resources))
            .bind($client.policy.strict_auth_method)
            .bind(budget_to_column($client.policy.inactive_budget))
            .bind(encode_list(&$client.redirect_uris))
            .bind($client.origin.as_str())
            .bind($client.last_used_at)
            .bind(&$client.client_uri)
            .bind(&$client.logo_uri)
            .bind($client.application_type.map(ApplicationType::as_str))
            .bind($client.previous_secret.as_ref().map(|p| p.hash.expose()))
            .bind($client.previous_secret.as_ref().map(|p| p.expires_at))
            .bind(encode_list(&$client.policy.exchange_targets))
    };
}

/// Makes `$jwks` (an `Option<&str>`) the JWK Set stored for `$client_id`, inside the
/// transaction `$tx`: replaced when given, removed when not.
macro_rules! write_client_jwks {
    ($tx:expr, $client_id:expr, $jwks:expr) => {
        match $jwks {
            Some(jwks) => {
                sqlx::query(
                    "INSERT INTO client_jwks (client_id, jwks) VALUES ($1, $2) \
                     ON CONFLICT (client_id) DO UPDATE SET jwks = excluded.jwks",
                )
                .bind($client_id)
                .bind(jwks)
                .execute(&mut *$tx)
                .await?
            }
            None => {
                sqlx::query("DELETE FROM client_jwks WHERE client_id = $1")
                    .bind($client_id)
                    .execute(&mut *$tx)
                    .await?
            }
        }
    };
}

impl Store {
    /// Registers a client and, for `private_key_jwt`, its JWK Set (stored JSON), in one
    /// transaction: a client is never left behind without the keys it was created with.
    pub async fn insert_client(
        &self,
        client: &ClientRecord,
        jwks: Option<&str>,
    ) -> Result<(), StoreError> {
        let sql = concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22)"
        );
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            bind_client_row!(sqlx::query(sql), client)
                .execute(&mut *tx)
                .await?;
            if jwks.is_some() {
                write_client_jwks!(tx, &client.client_id, jwks);
            }
            tx.commit().await?;
        });
        self.changed(Change::Client(client.client_id.clone()));
        Ok(())
    }

    pub async fn client_by_id(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        if !super::nameable(client_id) {
            return Ok(None);
        }
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE client_id = $1"
        );
        let row = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(sql)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        row.map(ClientRecord::try_from).transpose()
    }

    pub async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let sql = concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients ORDER BY created_at, client_id"
        );
        let rows = on_pool!(self, pool => sqlx::query_as::<_, ClientRow>(sql)
            .fetch_all(pool)
            .await)?;
        rows.into_iter().map(ClientRecord::try_from).collect()
    }

    /// Replaces a client's secret hash; false when the client does not exist. The
    /// replaced secret keeps working until `grace_until` when that is after `now`, and
    /// not at all otherwise; a secret replaced earlier stops working at once either way.
    pub async fn set_client_secret_hash(
        &self,
        client_id: &str,
        hash: &SecretHash,
        grace_until: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        // The right-hand `secret_hash` is the row's value before this update.
        let sql = "UPDATE clients SET \
                   previous_secret_hash = CASE WHEN $2 > $3 THEN secret_hash END, \
                   previous_secret_expires_at = CASE WHEN $2 > $3 THEN $2 END, \
                   secret_hash = $1, updated_at = $3 WHERE client_id = $4";
        let done = execute!(self, sql, hash.expose(), grace_until, now, client_id)?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    /// Rewrites what an operator may change of a client in place (name, method, scope,
    /// audiences, redirect URIs, policy); false when the client does not exist. Announced
    /// like every client change, so caches forget the old record before the next request.
    pub async fn update_client(&self, client: &ClientRecord) -> Result<bool, StoreError> {
        let sql = "UPDATE clients SET name = $1, auth_method = $2, scope = $3, audiences = $4, \
                   grant_types = $5, resources = $6, strict_auth_method = $7, \
                   inactive_budget = $8, updated_at = $9, redirect_uris = $10, \
                   exchange_targets = $11 WHERE client_id = $12";
        let done = execute!(
            self,
            sql,
            &client.name,
            client.auth_method.as_str(),
            &client.scope,
            encode_list(&client.audiences),
            encode_grant_types(&client.policy.grant_types),
            encode_list(&client.policy.resources),
            client.policy.strict_auth_method,
            budget_to_column(client.policy.inactive_budget),
            client.updated_at,
            encode_list(&client.redirect_uris),
            encode_list(&client.policy.exchange_targets),
            &client.client_id
        )?;
        self.changed(Change::Client(client.client_id.clone()));
        Ok(done == 1)
    }

    /// Disables or re-enables a client; false when the client does not exist.
    pub async fn set_client_disabled(
        &self,
        client_id: &str,
        disabled: bool,
        now: i64,
    ) -> Result<bool, StoreError> {
        let sql = "UPDATE clients SET disabled = $1, updated_at = $2 WHERE client_id = $3";
        let done = execute!(self, sql, disabled, now, client_id)?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    /// Deletes a client, the opaque tokens it holds and the consents users gave it; false
    /// when it does not exist.
    pub async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let done = execute!(self, "DELETE FROM clients WHERE client_id = $1", client_id)?;
        self.changed(Change::Client(client_id.to_owned()));
        Ok(done == 1)
    }

    /// Notes that a self-registered client obtained a token at `now`: written at most
    /// once per [`TOUCH_EVERY`] seconds per client, so a busy client costs no write per
    /// request. Not announced: nothing a request decides reads it.
    pub async fn touch_client(&self, client_id: &str, now: i64) -> Result<(), StoreError> {
        let sql = "UPDATE clients SET last_used_at = $1 WHERE client_id = $2 \
                   AND (last_used_at IS NULL OR last_used_at <= $3)";
        execute!(self, sql, now, client_id, now.saturating_sub(TOUCH_EVERY))?;
        Ok(())
    }

    /// Deletes the self-registered clients (any origin but `operator`) neither used nor
    /// created since `unused_since`, with their tokens and consents; answers their ids.
    pub async fn delete_unused_clients(
        &self,
        unused_since: i64,
    ) -> Result<Vec<String>, StoreError> {
        let sql = "DELETE FROM clients WHERE origin <> 'operator' \
                   AND COALESCE(last_used_at, created_at) < $1 RETURNING client_id";
        let deleted = on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql)
            .bind(unused_since)
            .fetch_all(pool)
            .await)?;
        for client_id in &deleted {
            self.changed(Change::Client(client_id.clone()));
        }
        Ok(deleted)
    }

    /// Stores what a client ID metadata document says of its client: inserted when new,
    /// else rewritten in place (name, method, scope, grant types, redirect URIs, home page,
    /// logo, application type, keys) keeping what the operator decided (`disabled`), its history
    /// (`created_at`, `last_used_at`) and what users allowed (consents, tokens). False
    /// when the id belongs to a client of another origin, which is left alone. Concurrent
    /// writers of one document (several instances) converge: the insert yields to an
    /// existing row.
    pub async fn put_document_client(
        &self,
        client: &ClientRecord,
        jwks: Option<&str>,
    ) -> Result<bool, StoreError> {
        if client.origin != ClientOrigin::MetadataDocument {
            return Ok(false);
        }
        let insert = concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, \
             $17, $18, $19, $20, $21, $22) ON CONFLICT (client_id) DO NOTHING"
        );
        let update = "UPDATE clients SET name = $1, auth_method = $2, scope = $3, \
                      grant_types = $4, redirect_uris = $5, client_uri = $6, logo_uri = $7, \
                      application_type = $8, updated_at = $9 \
                      WHERE client_id = $10 AND origin = 'metadata_document'";
        let stored = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let inserted = bind_client_row!(sqlx::query(insert), client)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            let stored = inserted
                || sqlx::query(update)
                    .bind(&client.name)
                    .bind(client.auth_method.as_str())
                    .bind(&client.scope)
                    .bind(encode_grant_types(&client.policy.grant_types))
                    .bind(encode_list(&client.redirect_uris))
                    .bind(&client.client_uri)
                    .bind(&client.logo_uri)
                    .bind(client.application_type.map(ApplicationType::as_str))
                    .bind(client.updated_at)
                    .bind(&client.client_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected()
                    == 1;
            if stored {
                write_client_jwks!(tx, &client.client_id, jwks);
            }
            tx.commit().await?;
            stored
        });
        if stored {
            self.changed(Change::Client(client.client_id.clone()));
        }
        Ok(stored)
    }

    /// Whether some enabled client is registered to introspect for `audience`: what
    /// makes a URI a resource that sign-in may grant tokens for.
    pub async fn audience_registered(&self, audience: &str) -> Result<bool, StoreError> {
        // The audiences are a JSON array in a text column; each backend reads it its way.
        let found = match &self.pool {
            Pool::Sqlite(pool) => {
                let sql = "SELECT EXISTS (SELECT 1 FROM clients, json_each(clients.audiences) \
                           WHERE clients.disabled = 0 AND json_each.value = $1)";
                sqlx::query_scalar::<_, bool>(sql)
                    .bind(audience)
                    .fetch_one(pool)
                    .await?
            }
            Pool::Postgres(pool) => {
                let sql = "SELECT EXISTS (SELECT 1 FROM clients WHERE NOT disabled \
                           AND audiences::jsonb @> jsonb_build_array($1::text))";
                sqlx::query_scalar::<_, bool>(sql)
                    .bind(audience)
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(found)
    }

    /// The JWK Set a `private_key_jwt` client registered, as stored JSON.
    pub async fn client_jwks(&self, client_id: &str) -> Result<Option<String>, StoreError> {
        if !super::nameable(client_id) {
            return Ok(None);
        }
        let sql = "SELECT jwks FROM client_jwks WHERE client_id = $1";
        let jwks = on_pool!(self, pool => sqlx::query_scalar::<_, String>(sql)
            .bind(client_id)
            .fetch_optional(pool)
            .await)?;
        Ok(jwks)
    }

    /// Replaces the JWK Set of an existing `private_key_jwt` client and touches its
    /// `updated_at`; false when there is no such client.
    pub async fn set_client_jwks(
        &self,
        client_id: &str,
        jwks: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let touch = "UPDATE clients SET updated_at = $1 \
                     WHERE client_id = $2 AND auth_method = 'private_key_jwt'";
        let found = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(touch)
                .bind(now)
                .bind(client_id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                == 1;
            if found {
                write_client_jwks!(tx, client_id, Some(jwks));
            }
            tx.commit().await?;
            found
        });
        if found {
            self.changed(Change::Client(client_id.to_owned()));
        }
        Ok(found)
    }
}
