//! HTTP/1 connections with explicit limits: how long a client may take to send its
//! headers, how many headers and how many header bytes it may send. (axum::serve
//! leaves the header timeout off, which lets a slow client hold a connection forever.)
//!
//! hyper's `max_buf_size` bounds its read buffer, not the request head: the buffer
//! grows in doubling steps and a head that fits in what was read is accepted, so a
//! 40 kB head passed a 32 kB buffer limit. It stays as a backstop against endless heads;
//! [`limit_head`] enforces `http.max_header_bytes` exactly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use super::tls::{ALPN_H2, Certificates};
use crate::config::HttpConfig;
use crate::error::ApiError;

/// Requests one HTTP/2 connection may have in flight at once.
const MAX_CONCURRENT_STREAMS: u32 = 100;

/// The size of a request's head as sent over HTTP/1.1: the request line
/// (`METHOD target HTTP/1.1` CRLF), each field as `name: value` CRLF, and the blank line.
pub fn head_bytes<B>(request: &axum::http::Request<B>) -> usize {
    let uri = request.uri();
    let target = match (uri.scheme(), uri.path_and_query()) {
        (None, Some(origin)) => origin.as_str().len(),
        _ => uri.to_string().len(),
    };
    let line = request.method().as_str().len() + 1 + target + 1 + "HTTP/1.1\r\n".len();
    let fields: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + 2 + value.len() + 2)
        .sum();
    line + fields + 2
}

/// Middleware: answers 431 to a request whose head is larger than `max` bytes.
pub async fn limit_head(State(max): State<usize>, request: Request, next: Next) -> Response {
    if head_bytes(&request) > max {
        return ApiError::HeadersTooLarge.into_response();
    }
    next.run(request).await
}

/// Serves `app` on `listener` until `stop` resolves, then stops accepting and waits up
/// to `http.shutdown_grace_seconds` for the connections in flight to finish their
/// requests. With `tls`, every connection is HTTPS: the handshake must end within the
/// header timeout, then HTTP/2 or HTTP/1.1 as ALPN chose.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    tls: Option<Arc<Certificates>>,
    stop: impl Future<Output = ()>,
) {
    let grace = Duration::from_secs(limits.shutdown_grace_seconds);
    let http1 = Arc::new(http1_builder(limits));
    let http2 = Arc::new(http2_builder(limits));
    let handshake_timeout = Duration::from_millis(limits.header_read_timeout_ms);
    let acceptor = tls.map(|certificates| TlsAcceptor::from(certificates.server_config()));
    let connections = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        // Whether the connection sent a request yet: an HTTP/2 connection that sends
        // none within the header timeout is closed (HTTP/1.1 has hyper's own timeout).
        let requested = Arc::new(AtomicBool::new(false));
        let seen = requested.clone();
        let service = TowerToHyperService::new(app.clone().map_request(
            move |request: hyper::Request<Incoming>| {
                seen.store(true, Ordering::Relaxed);
                let mut request = request.map(axum::body::Body::new);
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            },
        ));
        let Some(acceptor) = &acceptor else {
            let connection =
                connections.watch(http1.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(err) = connection.await {
                    tracing::debug!(error = %err, "connection ended with an error");
                }
            });
            continue;
        };
        let (acceptor, http1, http2) = (acceptor.clone(), http1.clone(), http2.clone());
        let watcher = connections.watcher();
        tokio::spawn(async move {
            let stream =
                match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        tracing::debug!(error = %err, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                };
            let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
            let io = TokioIo::new(stream);
            let ended = if h2 {
                let connection = watcher.watch(http2.serve_connection(io, service));
                let mut connection = std::pin::pin!(connection);
                tokio::select! {
                    ended = &mut connection => ended,
                    () = tokio::time::sleep(handshake_timeout) => {
                        if !requested.load(Ordering::Relaxed) {
                            tracing::debug!("HTTP/2 connection sent no request in time");
                            return;
                        }
                        connection.await
                    }
                }
            } else {
                watcher.watch(http1.serve_connection(io, service)).await
            };
            if let Err(err) = ended {
                tracing::debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!("shutting down: draining in-flight requests");
    if tokio::time::timeout(grace, connections.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("grace period over; closing remaining connections");
    }
}

/// HTTP/1.1 within the configured header limits.
fn http1_builder(limits: &HttpConfig) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(limits.header_read_timeout_ms))
        .max_headers(limits.max_headers)
        // hyper refuses (431) only once its buffer is full; `limit_head` is exact.
        .max_buf_size(limits.max_header_bytes.max(8 * 1024));
    builder
}

/// HTTP/2 (over TLS only) within the same header limits; `limit_head` measures each
/// request's head as HTTP/1.1 would carry it, so both protocols refuse alike.
fn http2_builder(limits: &HttpConfig) -> http2::Builder<TokioExecutor> {
    let mut builder = http2::Builder::new(TokioExecutor::new());
    let header_list = u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX);
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(header_list)
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    builder
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_bytes_count_what_the_wire_carries() {
        let request = axum::http::Request::get("/healthz?a=1")
            .header("host", "x")
            .header("x-pad", "abc")
            .body(())
            .unwrap();
        let wire = "GET /healthz?a=1 HTTP/1.1\r\nhost: x\r\nx-pad: abc\r\n\r\n";
        assert_eq!(head_bytes(&request), wire.len());
    }
}
