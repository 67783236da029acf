//! 10,000 requests through `ServerLayer` on a real HTTP/1.1 server, a third of them abandoned
//! mid-flight: every request's ctx ends, and the number of live contexts returns to where it
//! started. Alone in its test binary, because the live-node count is process-wide.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ctx_core::Ctx;
use ctx_core::test_util::live_nodes;
use ctx_examples::{Version, http_client};
use futures::StreamExt;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use tokio::time::timeout;
use tower::ServiceExt;

const REQUESTS: usize = 10_000;
/// Requests on the wire at once.
const CONCURRENCY: usize = 64;
/// The bound of the whole run and of every wait in it.
const LIMIT: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counts {
    started: AtomicUsize,
    ended: AtomicUsize,
    /// Ended with `ClientDisconnected`: the client dropped the call.
    disconnected: AtomicUsize,
    /// Ended with the root's cause: still open (the server had not noticed its client was
    /// gone yet) when the server shut down.
    shut_down: AtomicUsize,
}

#[derive(Debug)]
struct ShuttingDown;
impl std::fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shutting down")
    }
}
impl std::error::Error for ShuttingDown {}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_requests_a_third_abandoned_all_end_and_nothing_leaks() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (root, shutdown) = ctx_tokio::background().with_cancel_cause();
    let counts = Arc::new(Counts::default());
    // `/hang` waits until its ctx is done (only a disconnect ends it); `/` answers at once.
    let handler = tower::service_fn({
        let counts = counts.clone();
        move |req: http::Request<Incoming>| {
            let ctx = req.extensions().get::<Ctx>().expect("a request ctx").clone();
            counts.started.fetch_add(1, Ordering::SeqCst);
            let counts2 = counts.clone();
            let watched = ctx.clone();
            let _after = ctx.after_func(move || {
                let cause = watched.cause().expect("a done ctx has a cause");
                if cause.is::<ctx_tower::ClientDisconnected>() {
                    counts2.disconnected.fetch_add(1, Ordering::SeqCst);
                } else if cause.is::<ShuttingDown>() {
                    counts2.shut_down.fetch_add(1, Ordering::SeqCst);
                }
                counts2.ended.fetch_add(1, Ordering::SeqCst);
            });
            let hang = req.uri().path() == "/hang";
            async move {
                if hang {
                    ctx.done().await;
                }
                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
            }
        }
    });
    let baseline = live_nodes();
    let server = tokio::spawn(ctx_examples::serve_with(listener, root, handler));
    // HTTP/1.1: an abandoned call closes its connection. (Over HTTP/2 each one is a stream
    // reset, and 3,000 of them trip h2's rapid-reset guard, which answers GOAWAY.)
    let client = http_client(Version::Http1);

    let run = futures::stream::iter(0..REQUESTS)
        .map(|i| {
            let client = client.clone();
            async move {
                let abandon = i % 3 == 0;
                let path = if abandon { "/hang" } else { "/" };
                let req = http::Request::get(format!("http://{addr}{path}"))
                    .body(Empty::<Bytes>::new())
                    .unwrap();
                let call = async move {
                    let resp = client.oneshot(req).await.expect("a response");
                    resp.into_body().collect().await.expect("a body").to_bytes()
                };
                if abandon {
                    // Mid-flight: the handler is (or is about to be) waiting; drop the call.
                    let _ = timeout(Duration::from_millis(1), call).await;
                    false
                } else {
                    assert_eq!(call.await, "ok");
                    true
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .fold(0usize, |ok, answered| async move { ok + usize::from(answered) });
    let answered = timeout(LIMIT, run).await.expect("the run finishes in time");
    assert_eq!(answered, REQUESTS - REQUESTS.div_ceil(3));

    // Shut down: connections the server has not yet seen close (an abandoned request it has
    // read but not yet found orphaned) end with the root's cause.
    shutdown.cancel(std::sync::Arc::new(ShuttingDown) as ctx_core::Cause);
    timeout(LIMIT, server)
        .await
        .expect("the server stops")
        .expect("no panic")
        .expect("Ok");

    // Every request that reached a handler ends (a handler that starts from now on is born
    // done, and counts both at once).
    let settle = async {
        while counts.ended.load(Ordering::SeqCst) < counts.started.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT, settle).await.unwrap_or_else(|_| {
        panic!(
            "every request's ctx ends: {} of {} ended",
            counts.ended.load(Ordering::SeqCst),
            counts.started.load(Ordering::SeqCst)
        )
    });
    let started = counts.started.load(Ordering::SeqCst);
    let disconnected = counts.disconnected.load(Ordering::SeqCst);
    let shut_down = counts.shut_down.load(Ordering::SeqCst);
    let hung = started - answered;
    eprintln!(
        "{started} handlers started, {answered} answered, {hung} abandoned mid-flight: \
         {disconnected} saw their client go, {shut_down} were ended by the shutdown"
    );
    // The answered ones ended plainly; every abandoned one that reached its handler ended by
    // its client's disconnect, or (a straggler the server had not yet found orphaned) by the
    // shutdown.
    assert_eq!(disconnected + shut_down, hung);
    assert!(
        disconnected > REQUESTS / 6,
        "most abandoned calls were mid-flight and seen to go: {disconnected}"
    );
    drop(client);
    // Every request ctx, and every clone the handlers took, is gone: back to the baseline.
    let back = async {
        while live_nodes() > baseline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    timeout(LIMIT, back)
        .await
        .unwrap_or_else(|_| panic!("live nodes return to {baseline}: {}", live_nodes()));
}
