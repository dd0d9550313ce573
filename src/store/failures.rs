//! Failed password sign-ins, counted in the store so that every instance spends one
//! budget: one row per budget key (by SHA-256 digest) with failures in its current
//! window. Written only when a password is refused; read before each attempt.

use super::{Store, StoreError};

/// Rows kept at most: past this, new budget keys go untracked (and a warning is logged)
/// rather than grow the table without bound. Expired rows are purged.
pub const MAX_FAILURE_ROWS: i64 = 1_000_000;

/// The failures counted under one budget key in its current window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureCount {
    pub digest: [u8; 32],
    pub failures: u32,
    /// When the window began: the first failure of it.
    pub first_at: i64,
    /// The latest failure.
    pub last_at: i64,
    /// When the window ends and the count is forgotten.
    pub expires_at: i64,
}

/// How a budget's window runs: `seconds` long, from its first failure, or, when
/// `sliding`, from its latest one (failures are forgotten after that long without any).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailureWindow {
    pub seconds: i64,
    pub sliding: bool,
}

#[derive(sqlx::FromRow)]
struct FailureRow {
    digest: Vec<u8>,
    failures: i32,
    first_at: i64,
    last_at: i64,
    expires_at: i64,
}

impl TryFrom<FailureRow> for FailureCount {
    type Error = StoreError;

    fn try_from(row: FailureRow) -> Result<Self, StoreError> {
        Ok(FailureCount {
            digest: row.digest.try_into().map_err(|_| StoreError::Corrupt {
                what: "sign-in failure digest",
            })?,
            failures: u32::try_from(row.failures).unwrap_or(0),
            first_at: row.first_at,
            last_at: row.last_at,
            expires_at: row.expires_at,
        })
    }
}

macro_rules! failure_columns {
    () => {
        "digest, failures, first_at, last_at, expires_at"
    };
}

/// Digests read by one query; fewer are padded with the first.
const READ_AT_ONCE: usize = 4;

impl Store {
    /// The current windows of these budget keys that have failures at `now`.
    pub async fn signin_failures(
        &self,
        digests: &[[u8; 32]],
        now: i64,
    ) -> Result<Vec<FailureCount>, StoreError> {
        let sql = concat!(
            "SELECT ",
            failure_columns!(),
            " FROM signin_failures WHERE digest IN ($1, $2, $3, $4) AND expires_at > $5"
        );
        let mut found = Vec::new();
        for chunk in digests.chunks(READ_AT_ONCE) {
            let slot = |i: usize| chunk.get(i).unwrap_or(&chunk[0]).to_vec();
            let rows = on_pool!(self, pool => sqlx::query_as::<_, FailureRow>(sql)
                .bind(slot(0))
                .bind(slot(1))
                .bind(slot(2))
                .bind(slot(3))
                .bind(now)
                .fetch_all(pool)
                .await)?;
            for row in rows {
                found.push(FailureCount::try_from(row)?);
            }
        }
        Ok(found)
    }

    /// Counts one failure under a budget key at `now`, starting a new window when the
    /// last one ended; the count after it, or `None` when the table is full and the key
    /// had no row (then it goes untracked).
    pub async fn record_signin_failure(
        &self,
        digest: &[u8; 32],
        window: FailureWindow,
        now: i64,
    ) -> Result<Option<FailureCount>, StoreError> {
        let update = concat!(
            "UPDATE signin_failures SET \
             failures = CASE WHEN expires_at <= $2 THEN 1 ELSE failures + 1 END, \
             first_at = CASE WHEN expires_at <= $2 THEN $2 ELSE first_at END, \
             expires_at = CASE WHEN expires_at <= $2 OR $4 THEN $2 + $3 ELSE expires_at END, \
             last_at = $2 WHERE digest = $1 RETURNING ",
            failure_columns!()
        );
        let insert = concat!(
            "INSERT INTO signin_failures (",
            failure_columns!(),
            ") SELECT $1, 1, $2, $2, $2 + $3 \
             WHERE (SELECT COUNT(*) FROM (SELECT 1 FROM signin_failures LIMIT $4) AS kept) < $4 \
             ON CONFLICT (digest) DO UPDATE SET failures = signin_failures.failures + 1, \
             last_at = excluded.last_at RETURNING ",
            failure_columns!()
        );
        let row = on_pool!(self, pool => {
            let updated = sqlx::query_as::<_, FailureRow>(update)
                .bind(&digest[..])
                .bind(now)
                .bind(window.seconds)
                .bind(window.sliding)
                .fetch_optional(pool)
                .await?;
            match updated {
                Some(row) => Some(row),
                None => {
                    sqlx::query_as::<_, FailureRow>(insert)
                        .bind(&digest[..])
                        .bind(now)
                        .bind(window.seconds)
                        .bind(MAX_FAILURE_ROWS)
                        .fetch_optional(pool)
                        .await?
                }
            }
        });
        row.map(FailureCount::try_from).transpose()
    }

    /// Forgets the failures of these budget keys (a right password ends the count).
    pub async fn clear_signin_failures(&self, digests: &[[u8; 32]]) -> Result<u64, StoreError> {
        let mut cleared = 0;
        for digest in digests {
            cleared += execute!(
                self,
                "DELETE FROM signin_failures WHERE digest = $1",
                &digest[..]
            )?;
        }
        Ok(cleared)
    }

    /// Forgets failure windows that ended before `before`.
    pub(super) async fn purge_signin_failures(&self, before: i64) -> Result<u64, StoreError> {
        let sql = "DELETE FROM signin_failures WHERE expires_at < $1";
        Ok(execute!(self, sql, before)?)
    }
}
