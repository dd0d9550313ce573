//! Running the service: start-up checks, the listener, background upkeep and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::http::StateError;
use crate::http::tls::Certificates;
use crate::http::{AppState, metadata, router};
use crate::store::{Store, StoreError};

/// How often expired revocations and tokens are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// How long shutdown waits for the pool to close: connections still held by requests
/// that outlived the grace period are not waited for.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("database {url}: {source}")]
    Store { url: String, source: StoreError },
    /// The SQLite file cannot be opened or written: what to change, with its path.
    #[error("database {url}: {problem}")]
    Access { url: String, problem: String },
    #[error(
        "the database lacks migrations {} of this release and database.migrate_on_start \
         is false: run `introspectd migrate` first",
        versions(.0)
    )]
    SchemaBehind(Vec<i64>),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot listen on {addr}, the address of `{setting}`: {source}")]
    Bind {
        /// The configuration key naming the address.
        setting: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] crate::http::tls::TlsError),
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
}

fn versions(list: &[i64]) -> String {
    list.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Connects and migrates the configured store; fails fast when it is unreachable.
pub async fn open_store(config: &Config) -> Result<Store, ServeError> {
    let wrap = |source| store_error(config, source);
    let store = Store::connect(config).await.map_err(wrap)?;
    store.migrate().await.map_err(wrap)?;
    Ok(store)
}

/// A store failure as the operator should read it: what to change when SQLite may not
/// use its file, else the store's own words.
fn store_error(config: &Config, source: StoreError) -> ServeError {
    let url = config.database_url.redacted();
    match sqlite_file(config).and_then(|path| crate::store::sqlite_access_problem(&path, &source)) {
        Some(problem) => ServeError::Access { url, problem },
        None => ServeError::Store { url, source },
    }
}

/// The database file, when the store is a SQLite file (not in memory).
fn sqlite_file(config: &Config) -> Option<std::path::PathBuf> {
    let url = &config.database_url;
    url.is_sqlite()
        .then(|| crate::store::sqlite_database_path(url.as_str()))
        .flatten()
}

/// The configured database for an operator: its URL without a password and, for a
/// SQLite file named relative to the working directory, the file it resolves to.
pub fn describe_database(config: &Config) -> String {
    let url = config.database_url.redacted();
    let file = sqlite_file(config)
        .filter(|path| path.is_relative())
        .and_then(|path| std::path::absolute(path).ok());
    match file {
        Some(file) => format!("{url} ({})", file.display()),
        None => url,
    }
}

/// Refuses, for a command that only reads, a SQLite database file that does not exist,
/// rather than creating an empty one. (A Postgres database is never created.)
pub fn require_existing_database(config: &Config) -> Result<(), String> {
    let Some(path) = sqlite_file(config) else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    let shown = std::path::absolute(&path).unwrap_or(path);
    Err(format!(
        "database {}: {} does not exist, and a command that only reads does not create \
         one; run it from the server's working directory, or give the server's database \
         with --database-url, INTROSPECTD_DATABASE_URL or database_url",
        config.database_url.redacted(),
        shown.display()
    ))
}

/// Connects the configured store for `serve`: migrates it when
/// `database.migrate_on_start`, else refuses a schema older than this release needs.
/// Either way a schema a later release migrated is served, and said so once.
async fn open_store_to_serve(config: &Config) -> Result<Store, ServeError> {
    let wrap = |source| store_error(config, source);
    let store = Store::connect(config).await.map_err(wrap)?;
    if config.database.migrate_on_start {
        store.migrate().await.map_err(wrap)?;
    }
    let schema = store.schema_version().await.map_err(wrap)?;
    if !schema.missing.is_empty() {
        return Err(ServeError::SchemaBehind(schema.missing));
    }
    if !schema.later.is_empty() {
        tracing::info!(
            migrations = ?schema.later,
            "the database holds migrations of a later release; serving it as this release"
        );
    }
    Ok(store)
}

/// Runs the HTTP server until SIGTERM or Ctrl-C, then drains in-flight requests for up
/// to `http.shutdown_grace_seconds`.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    // Caught from here on: a signal during start-up stops the server once it is up,
    // instead of killing the process with the default action.
    let shutdown = Shutdown::install()?;
    let problems = config.serving_problems();
    if !problems.is_empty() {
        return Err(crate::config::ConfigError(problems).into());
    }
    let certificates = match &config.http.tls {
        Some(files) => Some(Certificates::load(files)?),
        None => None,
    };
    let store = open_store_to_serve(&config).await?;
    let state = AppState::build(config.clone(), store.clone()).await?;
    let read = config.secret_env_vars();
    for name in crate::config::unrelated_env_vars()
        .into_iter()
        .filter(|name| !read.contains(name))
    {
        tracing::warn!(variable = %name, "ignoring {name}: it names no configuration key");
    }
    for name in metadata::missing_for_mcp(&config) {
        tracing::warn!(
            field = name,
            "MCP clients require {name} in the metadata document, and it is neither \
             served nor configured (empty); set metadata.{name}"
        );
    }
    let listener = bind("listen", config.listen).await?;
    let metrics = match config.metrics.enabled {
        true => Some(bind("metrics.listen", config.metrics.listen).await?),
        false => None,
    };
    if let Some(metrics) = &metrics {
        let addr = metrics.local_addr()?;
        tracing::info!(%addr, "serving metrics at http://{addr}/metrics");
    }
    let addr = listener.local_addr()?;
    let scheme = if certificates.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(%addr, store = store.backend(), issuer = %config.issuer, scheme, "listening on {addr}");
    let reload = certificates
        .clone()
        .map(|c| tokio::spawn(reload_on_hangup(c)));

    let upkeep = tokio::spawn(upkeep(state.clone()));
    // The metrics listener stops with the main one, after its requests have drained.
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    let metrics = metrics.map(|listener| {
        let app = crate::http::metrics_router(state.clone());
        let http = config.http.clone();
        let stop = async {
            let _ = metrics_stopped.await;
        };
        let server = tokio::spawn(async move {
            crate::http::listener::serve(listener, app, &http, None, stop).await
        });
        (server, tokio::spawn(crate::metrics::upkeep()))
    });
    let audit = state.audit.clone();
    crate::http::listener::serve(
        listener,
        router(state),
        &config.http,
        certificates,
        shutdown.wait(),
    )
    .await;
    upkeep.abort();
    if let Some(reload) = reload {
        reload.abort();
    }
    let _ = stop_metrics.send(());
    if let Some((server, upkeep)) = metrics {
        let _ = server.await;
        upkeep.abort();
    }
    // The events of the last requests are written before the store closes.
    if tokio::time::timeout(CLOSE_TIMEOUT, audit.flush())
        .await
        .is_err()
    {
        tracing::warn!("audit events still unwritten at exit");
    }
    if tokio::time::timeout(CLOSE_TIMEOUT, store.close())
        .await
        .is_err()
    {
        tracing::warn!("database connections still in use at exit");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Re-reads the certificate and key at each `SIGHUP`; a pair that fails to load is
/// logged and the one in use stays.
async fn reload_on_hangup(certificates: Arc<Certificates>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(err) => {
                tracing::warn!(error = %err, "cannot catch SIGHUP; the certificate is not reloaded");
                return;
            }
        };
        while hangups.recv().await.is_some() {
            match certificates.reload() {
                Ok(()) => tracing::info!("SIGHUP: reloaded the TLS certificate and key"),
                Err(err) => tracing::error!(
                    error = %err,
                    "SIGHUP: keeping the TLS certificate in use"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = certificates;
}

/// Binds the address of the configuration key `setting`, which a failure names.
async fn bind(setting: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            setting,
            addr,
            source,
        })
}

async fn upkeep(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        if let Some(limits) = &state.rate_limit {
            limits.sweep();
        }
        state.auth.sweep();
        state.inactive_budget.sweep();
        if let Some(registrar) = &state.registrar {
            registrar.budget.sweep();
        }
        if let Some(documents) = &state.documents {
            documents.sweep();
        }
        let now = crate::token::now();
        match crate::registration::delete_unused_clients(state.store(), &state.config, now).await {
            Ok(deleted) if deleted.is_empty() => {}
            Ok(deleted) => tracing::info!(
                clients = deleted.len(),
                "deleted self-registered clients unused for registration.unused_client_days"
            ),
            Err(err) => {
                crate::metrics::store_error(&err);
                tracing::warn!(error = %err, "deleting unused clients failed");
            }
        }
        // Keep revocations a little past expiry so clock skew cannot revive a token.
        let before =
            crate::token::now() - i64::try_from(state.config.jwt.leeway_seconds).unwrap_or(0) - 60;
        match state.store().purge_expired(before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "purged expired tokens and revocations"),
            Err(err) => {
                crate::metrics::store_error(&err);
                tracing::warn!(error = %err, "purge failed");
            }
        }
        let retention = i64::from(state.config.events.retention_days) * 86_400_000;
        match state
            .store()
            .purge_events(crate::audit::now_ms().saturating_sub(retention))
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "purged events past events.retention_days"),
            Err(err) => {
                crate::metrics::store_error(&err);
                tracing::warn!(error = %err, "purging events failed");
            }
        }
        // Whichever instance purged, re-read the revoked ids and the token digests to
        // drop the expired ones.
        state.directory.refresh_known_sets();
    }
}

/// SIGTERM and SIGINT (Ctrl-C), caught from the moment this is created.
struct Shutdown {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
}

impl Shutdown {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                terminate: signal(SignalKind::terminate())?,
                interrupt: signal(SignalKind::interrupt())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Shutdown {})
    }

    /// Resolves at the first signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.terminate.recv() => {},
            _ = self.interrupt.recv() => {},
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
