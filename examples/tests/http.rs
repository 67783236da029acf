//! The HTTP example server, driven over loopback by a raw HTTP/1.1 client.
//!
//! Every wait is bounded (`LIMIT`); the only real-time deadline is the 20 ms budget of the
//! timeout test.

use std::net::SocketAddr;
use std::time::Duration;

use ctx_core::CancelHandle;
use ctx_examples::{App, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The upper bound of every wait in these tests.
const LIMIT: Duration = Duration::from_secs(5);

struct Server {
    addr: SocketAddr,
    app: App,
    shutdown: CancelHandle,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let (root, shutdown) = ctx_tokio::background().with_cancel();
    let app = App::new();
    let task = tokio::spawn(serve(listener, app.clone(), root));
    Server {
        addr,
        app,
        shutdown,
        task,
    }
}

/// Sends a GET with the extra header lines, without reading the answer.
async fn send(addr: SocketAddr, path: &str, headers: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{headers}\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the request");
    stream
}

/// Reads the whole answer; returns the status code and the body.
async fn answer(mut stream: TcpStream) -> (u16, String) {
    let mut raw = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("the server answers in time")
        .expect("read the answer");
    let text = String::from_utf8(raw).expect("a UTF-8 answer");
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

async fn get(addr: SocketAddr, path: &str, headers: &str) -> (u16, String) {
    answer(send(addr, path, headers).await).await
}

#[tokio::test]
async fn a_fast_request_succeeds() {
    let server = start().await;
    let (status, body) = get(server.addr, "/work?ms=1", "x-timeout-ms: 5000\r\n").await;
    assert_eq!(status, 200, "body: {body}");
    assert_eq!(body, "backend answered after 1 ms\n");
    assert_eq!(server.app.backend().stats().finished, 1);
}

#[tokio::test]
async fn a_request_with_a_tiny_timeout_header_gets_504_with_the_deadline_message() {
    let server = start().await;
    let (status, body) = get(server.addr, "/work?ms=60000", "x-timeout-ms: 20\r\n").await;
    assert_eq!(status, 504);
    assert_eq!(body, "context deadline exceeded (request budget of 20ms spent)\n");
    let stats = server.app.backend().stats();
    assert_eq!((stats.deadline_exceeded, stats.finished), (1, 0));
}

#[tokio::test]
async fn a_grpc_timeout_header_sets_the_deadline_too() {
    let server = start().await;
    let (status, body) = get(server.addr, "/work?ms=60000", "grpc-timeout: 20m\r\n").await;
    assert_eq!(status, 504);
    assert!(body.starts_with("context deadline exceeded"), "body: {body}");
}

#[tokio::test]
async fn a_malformed_work_parameter_is_a_bad_request() {
    let server = start().await;
    let (status, _) = get(server.addr, "/work?ms=soon", "").await;
    assert_eq!(status, 400);
    assert_eq!(server.app.backend().stats().started, 0);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_request_cancels_the_downstream_context() {
    let server = start().await;
    let mut stats = server.app.backend().watch();
    let stream = send(server.addr, "/work?ms=60000", "").await;
    timeout(LIMIT, stats.wait_for(|s| s.started == 1))
        .await
        .expect("the backend starts in time")
        .expect("the backend is alive");
    drop(stream); // the client goes away
    let seen = timeout(LIMIT, stats.wait_for(|s| s.canceled == 1))
        .await
        .expect("the backend is canceled in time, not after its 60 s of work")
        .expect("the backend is alive")
        .clone();
    assert_eq!(seen.last_cause.as_deref(), Some("client disconnected"));
    assert_eq!(seen.finished, 0);
}

#[tokio::test]
async fn shutting_the_server_down_answers_in_flight_requests_with_503_and_stops_serving() {
    let server = start().await;
    let mut stats = server.app.backend().watch();
    let stream = send(server.addr, "/work?ms=60000", "").await;
    timeout(LIMIT, stats.wait_for(|s| s.started == 1))
        .await
        .expect("the backend starts in time")
        .expect("the backend is alive");
    server.shutdown.cancel();
    let (status, body) = answer(stream).await;
    assert_eq!(status, 503);
    assert_eq!(body, "context canceled (context canceled)\n");
    timeout(LIMIT, server.task)
        .await
        .expect("serve returns in time")
        .expect("serve did not panic")
        .expect("serve returns Ok");
}
