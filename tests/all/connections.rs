//! Connection-level limits over a real socket: slow headers are cut off, and too many
//! or too large headers get 431.

use crate::common;

use std::time::{Duration, Instant};

use common::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Serves the app on a loopback port with a short header timeout.
async fn listen(app: &TestApp) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut limits = app.config.http.clone();
    limits.header_read_timeout_ms = 300;
    limits.shutdown_grace_seconds = 1;
    let router = app.router.clone();
    tokio::spawn(async move {
        introspectd::http::listener::serve(listener, router, &limits, None, std::future::pending())
            .await;
    });
    addr
}

async fn read_all(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&answer).into_owned()
}

async fn slow_headers_are_cut_off(app: TestApp) {
    let addr = listen(&app).await;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut stream).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(!answer.contains("200 OK"), "{answer}");
    // A prompt client on another connection is served as usual.
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(read_all(&mut stream).await.starts_with("HTTP/1.1 200"));
}

async fn too_many_or_too_large_headers_get_431(app: TestApp) {
    let addr = listen(&app).await;
    let many: String = (0..app.config.http.max_headers + 10)
        .map(|i| format!("X-H{i}: v\r\n"))
        .collect();
    // hyper enforces the limit on its read buffer, which may round up: go well past it.
    let large = format!(
        "X-Big: {}\r\n",
        "a".repeat(2 * app.config.http.max_header_bytes)
    );
    for extra in [many, large] {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let request =
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let answer = read_all(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{} headers: {answer}",
            extra.len()
        );
    }
}

/// A request to `/healthz` whose head (request line, headers, blank line) is `size`
/// bytes, sent over a fresh connection; the answer's status line.
async fn status_of_head(addr: std::net::SocketAddr, size: usize) -> String {
    let start = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n";
    let pad_overhead = "X-Pad: \r\n".len() + "\r\n".len();
    let request = format!(
        "{start}X-Pad: {}\r\n\r\n",
        "a".repeat(size - start.len() - pad_overhead)
    );
    assert_eq!(request.len(), size);
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = read_all(&mut stream).await;
    answer.lines().next().unwrap_or_default().to_owned()
}

async fn header_bytes_are_limited_exactly(app: TestApp) {
    let addr = listen(&app).await;
    let max = app.config.http.max_header_bytes;
    assert_eq!(max, 32_768, "the documented default");
    for (size, expected) in [
        (max, "HTTP/1.1 200 OK"),
        (max - 1, "HTTP/1.1 200 OK"),
        (max + 1, "HTTP/1.1 431 Request Header Fields Too Large"),
        (40_000, "HTTP/1.1 431 Request Header Fields Too Large"),
    ] {
        assert_eq!(status_of_head(addr, size).await, expected, "{size} bytes");
    }
}

both_stores!(
    slow_headers_are_cut_off,
    too_many_or_too_large_headers_get_431,
    header_bytes_are_limited_exactly,
);

#[test]
fn header_limits_are_validated() {
    let mut config = introspectd::config::Config::default();
    config.http.max_headers = 1;
    config.http.header_read_timeout_ms = 0;
    let problems = config.validate().unwrap_err().0.join("\n");
    assert!(problems.contains("http.max_headers"), "{problems}");
    assert!(
        problems.contains("http.header_read_timeout_ms"),
        "{problems}"
    );
}
