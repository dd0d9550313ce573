//! Stopping the real binary: SIGTERM and Ctrl-C stop accepting, let in-flight requests
//! finish within `http.shutdown_grace_seconds`, and exit cleanly.
//!
//! A request is held in flight for real: its headers ask for `100 Continue`, which the
//! server sends once the handler starts reading the body, and the body follows only when
//! the test decides.

use crate::common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Instant;

use common::binary::{PATIENCE, Server, command, create_client, issue_token};
use introspectd::config::DatabaseUrl;

struct Fixture {
    dir: tempfile::TempDir,
    db: DatabaseUrl,
    client: (String, String),
    token: String,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = DatabaseUrl(format!(
        "sqlite://{}",
        dir.path().join("introspectd.db").display()
    ));
    let client = create_client(dir.path(), &db, &[]);
    let token = issue_token(dir.path(), &db, &client.0, &[]);
    Fixture {
        dir,
        db,
        client,
        token,
    }
}

impl Fixture {
    fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn body(&self) -> String {
        common::form(&[("token", &self.token)])
    }
}

/// Reads until the end of a response head.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => break,
            Ok(_) => head.push(byte[0]),
            Err(err) => panic!("reading response head: {err}"),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Starts a POST /introspect whose body is withheld, and returns once the server is
/// reading it.
fn hold_request(addr: SocketAddr, fixture: &Fixture) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let (id, secret) = &fixture.client;
    let head = format!(
        "POST /introspect HTTP/1.1\r\nHost: {addr}\r\n\
         Authorization: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        common::basic(id, secret),
        fixture.body().len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let interim = read_head(&mut stream);
    assert!(
        interim.starts_with("HTTP/1.1 100"),
        "expected 100 Continue, got {interim:?}"
    );
    stream
}

/// Whether a request sent now on a new connection gets any answer.
fn new_request_is_answered(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"HTTP/"),
        Err(err) => {
            assert_ne!(err.kind(), ErrorKind::WouldBlock, "no answer and no close");
            false
        }
    }
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let fixture = fixture();
    let mut server = Server::start(fixture.dir(), &fixture.db);
    let mut held = hold_request(server.addr, &fixture);

    server.signal("TERM");
    server.wait_for_log("shutting down");
    assert!(
        !new_request_is_answered(server.addr),
        "a connection opened after SIGTERM was served"
    );

    held.write_all(fixture.body().as_bytes()).unwrap();
    let mut response = String::new();
    held.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""active":true"#), "{response}");
    assert!(
        response.to_ascii_lowercase().contains("connection: close"),
        "{response}"
    );

    let exit = server.wait_exit(PATIENCE);
    assert!(exit.success(), "{exit:?}\n{}", server.log());
    server.wait_for_log("stopped");
    assert!(!server.log().contains("grace period over"));
}

#[test]
fn shutdown_gives_up_on_requests_that_outlast_the_grace_period() {
    let fixture = fixture();
    let mut cmd = command(fixture.dir(), &fixture.db);
    cmd.env("INTROSPECTD_HTTP__SHUTDOWN_GRACE_SECONDS", "1");
    let mut server = Server::start_with(cmd);
    let mut held = hold_request(server.addr, &fixture);

    let signalled = Instant::now();
    server.signal("TERM");
    let exit = server.wait_exit(PATIENCE);
    assert!(exit.success(), "{exit:?}\n{}", server.log());
    assert!(
        signalled.elapsed().as_secs_f64() >= 1.0,
        "exited before the grace period was over"
    );
    server.wait_for_log("grace period over");
    server.wait_for_log("stopped");

    let mut rest = Vec::new();
    let read = held.read_to_end(&mut rest);
    assert!(
        read.is_err() || rest.is_empty(),
        "the abandoned request got an answer: {}",
        String::from_utf8_lossy(&rest)
    );
}

#[test]
fn ctrl_c_stops_the_server_cleanly() {
    let fixture = fixture();
    let mut server = Server::start(fixture.dir(), &fixture.db);
    server.signal("INT");
    let exit = server.wait_exit(PATIENCE);
    assert!(exit.success(), "{exit:?}\n{}", server.log());
    server.wait_for_log("stopped");
}
