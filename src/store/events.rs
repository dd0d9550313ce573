//! The audit trail's events: appended in batches, read in order, purged after the
//! retention time.

use super::{Store, StoreError};

/// An event as stored: `time` in milliseconds since the epoch, `detail` a JSON object.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct EventRow {
    pub id: i64,
    pub time: i64,
    #[sqlx(rename = "type")]
    pub kind: String,
    pub client_id: Option<String>,
    pub user_id: Option<String>,
    pub address: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

/// Which events to read: those after `after_id`, at or after `since` (milliseconds),
/// of the client and the user when given.
#[derive(Clone, Debug, Default)]
pub struct EventQuery<'a> {
    pub after_id: i64,
    pub since: i64,
    pub client_id: Option<&'a str>,
    pub user_id: Option<&'a str>,
    pub limit: i64,
}

/// Rows per `INSERT`: one statement for a whole batch costs the driver one round trip
/// instead of one per event (7 parameters a row, well under SQLite's 32,766).
const ROWS_PER_INSERT: usize = 512;

macro_rules! insert_all {
    ($pool:expr, $events:expr) => {{
        let mut tx = $pool.begin().await?;
        for chunk in $events.chunks(ROWS_PER_INSERT) {
            let mut insert = sqlx::QueryBuilder::new(
                "INSERT INTO events (time, type, client_id, user_id, address, request_id, detail) ",
            );
            insert.push_values(chunk, |mut row, event| {
                row.push_bind(event.time)
                    .push_bind(&event.kind)
                    .push_bind(&event.client_id)
                    .push_bind(&event.user_id)
                    .push_bind(&event.address)
                    .push_bind(&event.request_id)
                    .push_bind(&event.detail);
            });
            insert.build().execute(&mut *tx).await?;
        }
        tx.commit().await
    }};
}

impl Store {
    /// Appends `events` (their `id` is ignored: the store numbers them) in one
    /// transaction, a statement per [`ROWS_PER_INSERT`] of them.
    pub async fn insert_events(&self, events: &[EventRow]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        on_pool!(self, pool => insert_all!(pool, events))?;
        Ok(())
    }

    /// The events `query` selects, in the order they were stored.
    pub async fn events(&self, query: &EventQuery<'_>) -> Result<Vec<EventRow>, StoreError> {
        let sql = "SELECT id, time, type, client_id, user_id, address, request_id, detail \
                   FROM events WHERE id > $1 AND time >= $2 \
                   AND ($3 IS NULL OR client_id = $3) AND ($4 IS NULL OR user_id = $4) \
                   ORDER BY id LIMIT $5";
        let rows = on_pool!(self, pool => sqlx::query_as::<_, EventRow>(sql)
            .bind(query.after_id)
            .bind(query.since)
            .bind(query.client_id)
            .bind(query.user_id)
            .bind(query.limit)
            .fetch_all(pool)
            .await)?;
        Ok(rows)
    }

    /// Forgets events older than `before` (milliseconds); how many went.
    pub async fn purge_events(&self, before: i64) -> Result<u64, StoreError> {
        let purged = execute!(self, "DELETE FROM events WHERE time < $1", before)?;
        Ok(purged)
    }
}
