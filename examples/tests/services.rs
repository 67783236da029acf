//! One deadline and one cancellation across real services on loopback: a client, an axum
//! gateway (hop A) and a hyper server (hop B), both under `ServerLayer`, calling through
//! `ClientLayer`; and a tonic client and server. Every wait has a watchdog (`LIMIT`); no test
//! sleeps a fixed time to wait for something.

use std::net::SocketAddr;
use std::time::Duration;

use ctx_core::{CancelCauseHandle, Ctx, Error};
use ctx_examples::{App, Gateway, HealthProbe, Requests, Version, get, http_client};
use ctx_tower::ClientError;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tower::ServiceExt;

/// The upper bound of every wait in these tests.
const LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
struct ShuttingDown;
impl std::fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shutting down")
    }
}
impl std::error::Error for ShuttingDown {}

struct Hop<T> {
    addr: SocketAddr,
    state: T,
    shutdown: CancelCauseHandle,
    task: JoinHandle<std::io::Result<()>>,
}

async fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let addr = l.local_addr().expect("local address");
    (l, addr)
}

/// Hop B: the hyper `App` under `ServerLayer`.
async fn start_b() -> Hop<App> {
    let (l, addr) = listener().await;
    let (root, shutdown) = ctx_tokio::background().with_cancel_cause();
    let app = App::new();
    let task = tokio::spawn(ctx_examples::serve(l, app.clone(), root));
    Hop {
        addr,
        state: app,
        shutdown,
        task,
    }
}

/// Hop A: the axum `Gateway` in front of `b`.
async fn start_a(b: SocketAddr, version: Version) -> Hop<Gateway> {
    let (l, addr) = listener().await;
    let (root, shutdown) = ctx_tokio::background().with_cancel_cause();
    let gw = Gateway::new(format!("http://{b}").parse().unwrap(), version);
    let task = tokio::spawn(ctx_examples::serve_gateway(l, gw.clone(), root));
    Hop {
        addr,
        state: gw,
        shutdown,
        task,
    }
}

async fn wait_for(
    log: &mut watch::Receiver<Requests>,
    what: &str,
    f: impl FnMut(&Requests) -> bool,
) -> Requests {
    timeout(LIMIT, log.wait_for(f))
        .await
        .unwrap_or_else(|_| panic!("in time: {what}"))
        .expect("the log is alive")
        .clone()
}

fn url(addr: SocketAddr, path: &str) -> hyper::Uri {
    format!("http://{addr}{path}").parse().unwrap()
}

// ===== 1. the deadline crosses both hops =====

async fn deadline_crosses_both_hops(version: Version) {
    let b = start_b().await;
    let a = start_a(b.addr, version).await;
    let client = http_client(version);
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(5));
    let sent_at = ctx.now();
    let (status, body) = timeout(LIMIT, get(&client, &ctx, url(a.addr, "/work?ms=1")))
        .await
        .expect("answered in time")
        .expect("answered");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "backend answered after 1 ms\n");

    let seen_a = a.state.log().get();
    let seen_b = b.state.log().get();
    let (a_deadline, b_deadline) = (seen_a.last_deadline.unwrap(), seen_b.last_deadline.unwrap());
    let (a_seen_at, b_seen_at) = (seen_a.last_seen_at.unwrap(), seen_b.last_seen_at.unwrap());
    // What crosses the wire is a duration (`grpc-timeout`), measured when the call leaves and
    // applied when it arrives: each hop's deadline is its caller's, rounded down, plus the
    // time the request spent in transit. Never more than that.
    assert_no_later(
        a_deadline,
        ctx.deadline().unwrap(),
        a_seen_at - sent_at,
        "A vs the client",
    );
    assert_no_later(b_deadline, a_deadline, b_seen_at - a_seen_at, "B vs A");
    assert!(
        b_deadline > b_seen_at,
        "B's deadline is in the future when B's handler runs"
    );
    assert!(
        b_deadline - b_seen_at <= Duration::from_secs(5),
        "B never gets more than the client's 5 s"
    );
}

/// `callee <= caller + transit`: the callee's deadline is its caller's, moved by no more than
/// the time the request took to get there.
#[track_caller]
fn assert_no_later(callee: std::time::Instant, caller: std::time::Instant, transit: Duration, what: &str) {
    assert!(
        callee <= caller + transit,
        "{what}: the callee's deadline is {:?} past its caller's, more than the {transit:?} in transit",
        callee - caller
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_crosses_both_hops_over_http1() {
    deadline_crosses_both_hops(Version::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_crosses_both_hops_over_http2() {
    deadline_crosses_both_hops(Version::Http2).await;
}

// ===== 2. a client that hangs up cancels both hops =====

async fn hang_up_cancels_both_hops(version: Version) {
    let b = start_b().await;
    let a = start_a(b.addr, version).await;
    let mut backend = b.state.backend().watch();
    let mut a_log = a.state.log().watch();
    let mut b_log = b.state.log().watch();

    let client = http_client(version);
    let (ctx, hang_up) = ctx_tokio::background().with_cancel();
    let call = tokio::spawn(async move { get(&client, &ctx, url(a.addr, "/work?ms=60000")).await });
    timeout(LIMIT, backend.wait_for(|s| s.started == 1))
        .await
        .expect("the backend starts in time")
        .expect("the backend is alive");

    hang_up.cancel(); // ClientLayer drops the call: the connection closes or the stream resets
    let out = timeout(LIMIT, call)
        .await
        .expect("the call ends")
        .expect("no panic");
    assert!(matches!(out, Err(ClientError::Done(Error::Canceled))), "{out:?}");

    let seen_a = wait_for(&mut a_log, "A's ctx ends", |r| r.ended == 1).await;
    assert_eq!(seen_a.last_cause.as_deref(), Some("client disconnected"));
    let seen_a = wait_for(&mut a_log, "A's outgoing call is dropped", |r| r.abandoned == 1).await;
    assert_eq!(seen_a.abandoned, 1);
    let seen_b = wait_for(&mut b_log, "B's ctx ends", |r| r.ended == 1).await;
    assert_eq!(seen_b.last_cause.as_deref(), Some("client disconnected"));
    let stats = timeout(LIMIT, backend.wait_for(|s| s.canceled == 1))
        .await
        .expect("B's backend stops in time, not after its 60 s of work")
        .expect("the backend is alive")
        .clone();
    assert_eq!(stats.last_cause.as_deref(), Some("client disconnected"));
    assert_eq!(stats.finished, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_both_hops_over_http1() {
    hang_up_cancels_both_hops(Version::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_cancels_both_hops_over_http2() {
    hang_up_cancels_both_hops(Version::Http2).await;
}

// ===== 3. shutdown =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn canceling_the_root_cancels_every_request_in_flight_with_its_cause() {
    let b = start_b().await;
    let a = start_a(b.addr, Version::Http2).await;
    let mut backend = b.state.backend().watch();
    let mut a_log = a.state.log().watch();

    let client = http_client(Version::Http1);
    let calls: Vec<_> = (0..3)
        .map(|_| {
            let client = client.clone();
            let ctx = ctx_tokio::background();
            tokio::spawn(async move { get(&client, &ctx, url(a.addr, "/work?ms=60000")).await })
        })
        .collect();
    timeout(LIMIT, backend.wait_for(|s| s.started == 3))
        .await
        .expect("three calls reach the backend")
        .expect("the backend is alive");

    a.shutdown
        .cancel(std::sync::Arc::new(ShuttingDown) as ctx_core::Cause);
    for call in calls {
        let (status, body) = timeout(LIMIT, call)
            .await
            .expect("answered")
            .expect("no panic")
            .expect("an answer");
        assert_eq!(status, 503, "{body}");
        assert_eq!(body, "context canceled (gateway)\n");
    }
    let seen = wait_for(&mut a_log, "every request's ctx ends", |r| r.ended == 3).await;
    assert_eq!(
        seen.last_cause.as_deref(),
        Some("shutting down"),
        "the root's cause"
    );
    // New work derived from a request stops: born done, with the root's cause.
    let request = seen.last_ctx.expect("a request ctx");
    let (work, _c) = request.with_timeout(Duration::from_secs(60));
    assert_eq!(work.err(), Some(Error::Canceled));
    assert!(work.cause().unwrap().is::<ShuttingDown>());
    // A's outgoing calls were dropped: B stops its work.
    timeout(LIMIT, backend.wait_for(|s| s.canceled == 3))
        .await
        .expect("B's work stops in time")
        .expect("the backend is alive");
    // And A stops serving.
    timeout(LIMIT, a.task)
        .await
        .expect("the gateway returns in time")
        .expect("no panic")
        .expect("Ok");
    let refused = get(&client, &ctx_tokio::background(), url(a.addr, "/work?ms=1")).await;
    assert!(matches!(refused, Err(ClientError::Inner(_))), "{refused:?}");
    b.shutdown
        .cancel(std::sync::Arc::new(ShuttingDown) as ctx_core::Cause);
    timeout(LIMIT, b.task)
        .await
        .expect("B returns")
        .expect("no panic")
        .expect("Ok");
}

// ===== 4. tonic =====

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_call_carries_its_deadline_and_ends_as_deadline_exceeded() {
    use tonic_health::pb::HealthCheckRequest;
    let (l, addr) = listener().await;
    let (root, shutdown) = ctx_tokio::background().with_cancel();
    let probe = HealthProbe::new();
    let server = tokio::spawn(ctx_examples::serve_grpc(l, probe.clone(), root));
    let mut client = timeout(LIMIT, ctx_examples::grpc_client(addr))
        .await
        .expect("connects in time")
        .expect("connects");

    // A call with 5 s to go: the handler sees that deadline.
    let (ctx, _c) = ctx_tokio::background().with_timeout(Duration::from_secs(5));
    let sent_at = ctx.now();
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    req.extensions_mut().insert(ctx.clone());
    let resp = timeout(LIMIT, client.check(req))
        .await
        .expect("in time")
        .expect("SERVING");
    assert_eq!(resp.get_ref().status, 1);
    let seen = probe.log().get();
    let deadline = seen.last_deadline.expect("the handler sees a deadline");
    let seen_at = seen.last_seen_at.unwrap();
    assert_no_later(
        deadline,
        ctx.deadline().unwrap(),
        seen_at - sent_at,
        "the tonic handler",
    );
    assert!(deadline > seen_at);

    // A call whose deadline passes: DEADLINE_EXCEEDED on the client.
    let (ctx, _c) = ctx_tokio::background().with_timeout(Duration::from_millis(100));
    let mut req = tonic::Request::new(HealthCheckRequest {
        service: "slow".into(),
    });
    req.extensions_mut().insert(ctx);
    let status = timeout(LIMIT, client.check(req))
        .await
        .expect("in time")
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    let mut log = probe.log().watch();
    let seen = wait_for(&mut log, "the slow handler's ctx ends", |r| r.ended == 2).await;
    let cause = seen.last_cause.unwrap();
    assert!(
        cause == "context deadline exceeded" || cause == "client disconnected",
        "{cause}"
    );

    // A call without a ctx passes untouched: no deadline on the server.
    let req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    timeout(LIMIT, client.check(req))
        .await
        .expect("in time")
        .expect("SERVING");
    assert_eq!(probe.log().get().last_deadline, None);

    shutdown.cancel();
    timeout(LIMIT, server)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("Ok");
}

// ===== 5. streaming =====

async fn streaming(version: Version) {
    let b = start_b().await;
    let mut b_log = b.state.log().watch();
    let client = http_client(version);

    // Read to the end: the ctx is live for every tick, and ends plainly after the last.
    let (status, body) = timeout(
        LIMIT,
        get(
            &client,
            &ctx_tokio::background(),
            url(b.addr, "/stream?ticks=3&ms=5"),
        ),
    )
    .await
    .expect("in time")
    .expect("an answer");
    assert_eq!(status, 200);
    assert_eq!(
        body,
        "tick 1: ctx err=None\ntick 2: ctx err=None\ntick 3: ctx err=None\n"
    );
    let seen = wait_for(&mut b_log, "the stream's ctx ends", |r| r.ended == 1).await;
    assert_eq!(seen.last_cause.as_deref(), Some("context canceled"));

    // Drop the body after its first tick: the ctx ends with ClientDisconnected.
    let mut req = http::Request::get(url(b.addr, "/stream?ticks=100000&ms=5"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    req.extensions_mut().insert(ctx_tokio::background());
    let resp = timeout(LIMIT, client.clone().oneshot(req))
        .await
        .expect("in time")
        .expect("a response");
    let mut body = resp.into_body();
    let first = timeout(LIMIT, body.frame())
        .await
        .expect("in time")
        .expect("a frame")
        .expect("data");
    assert_eq!(first.into_data().unwrap(), "tick 1: ctx err=None\n");
    assert_eq!(b_log.borrow().ended, 1, "still streaming");
    drop(body);
    let seen = wait_for(&mut b_log, "the dropped stream's ctx ends", |r| r.ended == 2).await;
    assert_eq!(seen.last_cause.as_deref(), Some("client disconnected"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_response_keeps_its_ctx_until_the_end_over_http1() {
    streaming(Version::Http1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streaming_response_keeps_its_ctx_until_the_end_over_http2() {
    streaming(Version::Http2).await;
}

// ===== 6. hostile headers =====

/// Sends raw HTTP/1.1 (header lines as bytes) and returns the status code.
async fn raw_get(addr: SocketAddr, headers: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut request = b"GET /work?ms=1 HTTP/1.1\r\nhost: test\r\nconnection: close\r\n".to_vec();
    request.extend_from_slice(headers);
    request.extend_from_slice(b"\r\n");
    stream.write_all(&request).await.expect("write");
    let mut raw = Vec::new();
    timeout(LIMIT, stream.read_to_end(&mut raw))
        .await
        .expect("answered in time")
        .expect("read");
    let text = String::from_utf8_lossy(&raw);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_grpc_timeout_headers_are_ignored_or_saturated_never_a_panic() {
    let b = start_b().await;
    let hostile: &[&[u8]] = &[
        b"",
        b"123456789S",
        b"1x",
        b"-1S",
        b"+1S",
        b"1 S",
        b"1.5S",
        b"\xd9\xa5S", // a non-ASCII digit
        b"\xff\xfeS",
        b"S",
        b"99999999999999999999999999H",
    ];
    for value in hostile {
        let mut line = b"grpc-timeout: ".to_vec();
        line.extend_from_slice(value);
        line.extend_from_slice(b"\r\n");
        assert_eq!(
            raw_get(b.addr, &line).await,
            200,
            "{:?}",
            String::from_utf8_lossy(value)
        );
        assert_eq!(
            b.state.log().get().last_deadline,
            None,
            "{:?}",
            String::from_utf8_lossy(value)
        );
    }
    // Many headers (below hyper's limit of 100, past which it answers 431): the first value
    // is read, the rest ignored.
    let many: Vec<u8> = (0..90)
        .flat_map(|i| format!("grpc-timeout: {i}x\r\n").into_bytes())
        .collect();
    assert_eq!(raw_get(b.addr, &many).await, 200);
    assert_eq!(b.state.log().get().last_deadline, None);
    // The largest value saturates: a deadline some 11,000 years away, or none.
    assert_eq!(raw_get(b.addr, b"grpc-timeout: 99999999H\r\n").await, 200);
    let seen = b.state.log().get();
    if let Some(d) = seen.last_deadline {
        assert!(d > seen.last_seen_at.unwrap() + Duration::from_secs(100 * 365 * 86_400));
    }
    // Spaces around a valid value are trimmed by HTTP itself: a deadline.
    assert_eq!(raw_get(b.addr, b"grpc-timeout:   2S  \r\n").await, 200);
    assert!(b.state.log().get().last_deadline.is_some());
    // Still serving.
    let (status, _) = get(
        &http_client(Version::Http1),
        &Ctx::background(),
        url(b.addr, "/work?ms=1"),
    )
    .await
    .expect("still serving");
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tonic_stream_keeps_its_ctx_until_the_client_drops_it() {
    use tonic_health::pb::HealthCheckRequest;
    let (l, addr) = listener().await;
    let (root, shutdown) = ctx_tokio::background().with_cancel();
    let probe = HealthProbe::new();
    let server = tokio::spawn(ctx_examples::serve_grpc(l, probe.clone(), root));
    let mut client = timeout(LIMIT, ctx_examples::grpc_client(addr))
        .await
        .expect("connects in time")
        .expect("connects");
    let mut log = probe.log().watch();

    let req = tonic::Request::new(HealthCheckRequest {
        service: String::new(),
    });
    let mut stream = timeout(LIMIT, client.watch(req))
        .await
        .expect("in time")
        .expect("a stream")
        .into_inner();
    let first = timeout(LIMIT, stream.message())
        .await
        .expect("in time")
        .expect("ok")
        .expect("a message");
    assert_eq!(first.status, 1);
    wait_for(&mut log, "the handler ran", |r| r.seen == 1).await;
    assert_eq!(probe.log().get().ended, 0, "the stream is open: its ctx is live");
    drop(stream); // the client goes away mid-stream
    let seen = wait_for(&mut log, "the stream's ctx ends", |r| r.ended == 1).await;
    assert_eq!(seen.last_cause.as_deref(), Some("client disconnected"));

    shutdown.cancel();
    timeout(LIMIT, server)
        .await
        .expect("stops")
        .expect("no panic")
        .expect("Ok");
}
