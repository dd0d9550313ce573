//! The audit trail: every security-relevant event (who signed in, who was refused, what
//! was issued, who changed what), logged on the `audit` target and recorded in the store.
//! Recording never slows or fails a request: [`Recorder::record`] hands the event to a
//! bounded buffer that one task writes in batches; a full buffer drops the event and
//! counts it. The command line writes its events at once ([`write_now`]).
//!
//! An event names clients, users, addresses and what happened, never a secret, a
//! password, a token or a code: the detail of each event is built here or at its call
//! site from ids, names and counts only.

use std::future::Future;
use std::net::IpAddr;

use serde_json::{Map, Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::store::{EventRow, Store, StoreError};

/// The log target of audit events.
pub const TARGET: &str = "audit";

/// Events waiting for the writer; past this, events are dropped and counted.
const BUFFER: usize = 8_192;
/// Most events written in one transaction.
const BATCH: usize = 512;
/// Longest a batch waits for more events before it is written.
const LINGER: std::time::Duration = std::time::Duration::from_millis(50);

macro_rules! event_types {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// What happened.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum EventType {
            $($variant),*
        }

        impl EventType {
            pub const ALL: &'static [EventType] = &[$(EventType::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(EventType::$variant => $name),*
                }
            }
        }
    };
}

event_types! {
    SigninSucceeded => "signin.succeeded",
    SigninFailed => "signin.failed",
    SigninLocked => "signin.locked",
    ConsentGranted => "consent.granted",
    ConsentDenied => "consent.denied",
    ConsentRevoked => "consent.revoked",
    TokenIssued => "token.issued",
    TokenExchanged => "token.exchanged",
    TokenRevoked => "token.revoked",
    TokenReuseDetected => "token.reuse_detected",
    ClientCreated => "client.created",
    ClientUpdated => "client.updated",
    ClientSecretRotated => "client.secret_rotated",
    ClientDisabled => "client.disabled",
    ClientDeleted => "client.deleted",
    UserCreated => "user.created",
    UserUpdated => "user.updated",
    UserDisabled => "user.disabled",
    UserDeleted => "user.deleted",
    GroupChanged => "group.changed",
    AccessDenied => "access.denied",
    KeyRotated => "key.rotated",
    KeyPromoted => "key.promoted",
    KeyRemoved => "key.removed",
    KeyResealed => "key.resealed",
    ScimRequest => "scim.request",
    RegistrationCreated => "registration.created",
}

impl EventType {
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == name)
    }
}

/// One event, as its call site describes it.
#[derive(Clone, Debug)]
pub struct Event {
    kind: EventType,
    client_id: Option<String>,
    user_id: Option<String>,
    address: Option<IpAddr>,
    detail: Map<String, Value>,
}

impl Event {
    pub fn new(kind: EventType) -> Self {
        Event {
            kind,
            client_id: None,
            user_id: None,
            address: None,
            detail: Map::new(),
        }
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn user(mut self, user_id: &str) -> Self {
        self.user_id = Some(user_id.to_owned());
        self
    }

    pub fn address(mut self, ip: IpAddr) -> Self {
        self.address = Some(ip);
        self
    }

    /// Adds `key` to the detail. Never a secret, password, token or code.
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.detail.insert(key.to_owned(), value.into());
        self
    }

    /// The same event, of another type.
    pub fn retyped(mut self, kind: EventType) -> Self {
        self.kind = kind;
        self
    }

    pub fn kind(&self) -> EventType {
        self.kind
    }

    /// How a sign-in went, as a metric label: `password` or `provider`.
    pub fn method(&self) -> Option<&'static str> {
        match self.detail.get("method")?.as_str()? {
            "password" => Some("password"),
            "provider" => Some("provider"),
            _ => None,
        }
    }

    /// The event as stored, at `time` (milliseconds), with the current request's id.
    fn stamped(self, time: i64) -> EventRow {
        EventRow {
            id: 0,
            time,
            kind: self.kind.as_str().to_owned(),
            client_id: self.client_id,
            user_id: self.user_id,
            address: self.address.map(|ip| ip.to_string()),
            request_id: current_request_id(),
            detail: Value::Object(self.detail).to_string(),
        }
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `request` with `id` as the request id its events carry.
pub async fn with_request_id<F: Future>(id: String, request: F) -> F::Output {
    REQUEST_ID.scope(id, request).await
}

fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// The current time in milliseconds, as events are stamped.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

enum Message {
    Event(EventRow),
    /// Answered once everything sent before it is written.
    Flush(oneshot::Sender<()>),
}

/// Hands events to the writer. Cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
}

impl Recorder {
    /// A recorder and its writer, a task of the current runtime that ends when every
    /// recorder is dropped, after writing what it holds.
    pub fn start(store: Store) -> Recorder {
        let (tx, rx) = mpsc::channel(BUFFER);
        tokio::spawn(write_batches(store, rx));
        Recorder { tx }
    }

    /// Logs the event and hands it to the writer; drops it, counted, when the buffer
    /// is full. Never waits.
    pub fn record(&self, event: Event) {
        count(&event);
        let row = event.stamped(now_ms());
        log(&row);
        if !self.hand_over(row) {
            crate::metrics::audit_dropped(1);
        }
    }

    /// Gives the writer `row` unless its buffer is full (or it is gone): never waits.
    fn hand_over(&self, row: EventRow) -> bool {
        self.tx.try_send(Message::Event(row)).is_ok()
    }

    /// Waits until every event recorded before is written (or dropped).
    pub async fn flush(&self) {
        let (ack, written) = oneshot::channel();
        if self.tx.send(Message::Flush(ack)).await.is_ok() {
            let _ = written.await;
        }
    }
}

/// The counter a sign-in event feeds, by outcome and method.
fn count(event: &Event) {
    let outcome = match event.kind {
        EventType::SigninSucceeded => "succeeded",
        EventType::SigninFailed => "failed",
        EventType::SigninLocked => "locked",
        _ => return,
    };
    crate::metrics::signin(outcome, event.method().unwrap_or("password"));
}

/// Logs the event and writes it to the store at once: for the command line.
pub async fn write_now(store: &Store, event: Event) -> Result<(), StoreError> {
    let row = event.stamped(now_ms());
    log(&row);
    store.insert_events(&[row]).await
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Message>) {
    let mut messages = Vec::with_capacity(BATCH);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        if rx.recv_many(&mut messages, BATCH).await == 0 {
            return;
        }
        gather(&mut rx, &mut messages).await;
        let mut acks = Vec::new();
        for message in messages.drain(..) {
            match message {
                Message::Event(row) => batch.push(row),
                Message::Flush(ack) => acks.push(ack),
            }
        }
        if let Err(err) = store.insert_events(&batch).await {
            crate::metrics::store_error(&err);
            crate::metrics::audit_dropped(batch.len() as u64);
            tracing::warn!(error = %err, events = batch.len(), "audit events could not be written");
        }
        batch.clear();
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

/// Lets a batch that is not full gather for [`LINGER`], then takes what came meanwhile:
/// one timer a batch, and no wake-up of this task for each event while it waits. A
/// transaction for every few events would cost more than the requests that made them;
/// under a load that fills batches at once, none waits. A flush is answered at once.
async fn gather(rx: &mut mpsc::Receiver<Message>, messages: &mut Vec<Message>) {
    let flush = |messages: &Vec<Message>| messages.iter().any(|m| matches!(m, Message::Flush(_)));
    if messages.len() >= BATCH || flush(messages) {
        return;
    }
    tokio::time::sleep(LINGER).await;
    while messages.len() < BATCH {
        match rx.try_recv() {
            Ok(message) => messages.push(message),
            Err(_) => return,
        }
    }
}

fn log(row: &EventRow) {
    tracing::info!(
        target: TARGET,
        event = %row.kind,
        client_id = row.client_id.as_deref().unwrap_or("-"),
        user_id = row.user_id.as_deref().unwrap_or("-"),
        address = row.address.as_deref().unwrap_or("-"),
        request_id = row.request_id.as_deref().unwrap_or("-"),
        detail = %row.detail,
        "{}", row.kind
    );
}

/// A stored event as `introspectd events` prints it: `time` in RFC 3339, absent fields
/// left out.
pub fn view(row: &EventRow) -> Value {
    let time = chrono::DateTime::from_timestamp_millis(row.time)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("id".into(), json!(row.id.to_string()));
    out.insert("time".into(), json!(time));
    out.insert("type".into(), json!(row.kind));
    for (key, value) in [
        ("client_id", &row.client_id),
        ("user_id", &row.user_id),
        ("address", &row.address),
        ("request_id", &row.request_id),
    ] {
        if let Some(value) = value {
            out.insert(key.into(), json!(value));
        }
    }
    let detail = serde_json::from_str(&row.detail).unwrap_or_else(|_| json!({}));
    out.insert("detail".into(), detail);
    Value::Object(out)
}

/// `--since`: a duration back from `now` (`90s`, `15m`, `12h`, `7d`) or an RFC 3339
/// time; milliseconds since the epoch.
pub fn parse_since(value: &str, now_ms: i64) -> Result<i64, String> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(value) {
        return Ok(time.timestamp_millis());
    }
    let unit_at = value.len().saturating_sub(1);
    let (number, unit) = value.split_at(unit_at);
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(since_error(value)),
    };
    let number: i64 = number.parse().map_err(|_| since_error(value))?;
    if number < 0 {
        return Err(since_error(value));
    }
    Ok(now_ms.saturating_sub(number.saturating_mul(seconds).saturating_mul(1_000)))
}

fn since_error(value: &str) -> String {
    format!("--since must be a duration (90s, 15m, 12h, 7d) or an RFC 3339 time, not {value:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_read_back_by_name() {
        for kind in EventType::ALL {
            assert_eq!(EventType::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(EventType::parse("signin"), None);
        assert_eq!(EventType::ALL.len(), 27);
    }

    #[test]
    fn since_reads_durations_and_times() {
        let now = 1_000_000_000;
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("7d", now), Ok(now - 604_800_000));
        assert_eq!(
            parse_since("2026-12-07T10:00:00Z", now),
            Ok(1_796_637_600_000)
        );
        for bad in ["", "h", "1w", "-1h", "1.5h", "yesterday"] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_buffer_drops_events_without_waiting() {
        let (tx, _rx) = mpsc::channel(2);
        let recorder = Recorder { tx };
        let row = || Event::new(EventType::TokenIssued).stamped(0);
        assert!(recorder.hand_over(row()));
        assert!(recorder.hand_over(row()));
        assert!(!recorder.hand_over(row()), "the writer is behind: dropped");
    }

    #[test]
    fn a_stored_event_prints_with_its_fields() {
        let row = Event::new(EventType::SigninFailed)
            .client("c1")
            .address("192.0.2.7".parse().unwrap())
            .detail("method", "password")
            .stamped(1_796_637_600_123);
        let shown = view(&EventRow { id: 7, ..row });
        assert_eq!(
            shown,
            json!({"id": "7", "time": "2026-12-07T10:00:00.123Z", "type": "signin.failed",
                   "client_id": "c1", "address": "192.0.2.7", "detail": {"method": "password"}})
        );
    }
}
