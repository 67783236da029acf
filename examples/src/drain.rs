//! [`serve_drained`], the graceful drain of `docs/services.md` ("Graceful drain"): the server
//! behind `examples/drain.rs` and the loopback tests in `tests/drain.rs`. The page shows the
//! same function as a snippet; `tests/drain.rs` checks that the two do not drift apart.

use std::convert::Infallible;
use std::time::Duration;

use ctx_core::Ctx;
use ctx_tower::ServerLayer;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::Layer;

/// How long a handler that ignores its ctx still has, once the grace is over, before
/// [`serve_drained`] closes its connection under it: one second.
///
/// # Examples
///
/// ```
/// assert_eq!(ctx_examples::LAST_WORD, std::time::Duration::from_secs(1));
/// ```
pub const LAST_WORD: Duration = Duration::from_secs(1);

/// Serves `app` (a hyper service, an axum `Router`) on `listener` until `soft` is done, then
/// drains: Go's `srv.Shutdown(ctx)`, with `hard = soft.with_grace(grace)` as its `ctx`.
///
/// Every request runs under `ServerLayer::new(hard)`, over HTTP/1.1 or HTTP/2 (with
/// `max_concurrent_streams` and `max_pending_accept_reset_streams` both 200, so that a client's
/// canceled fan-out does not end its connection). Once `soft` is done:
///
/// * the accept loop ends and `listener` is dropped, so a connect is refused; a connection
///   accepted as the shutdown came is dropped unanswered;
/// * each open connection is asked to close once its requests have ended (`graceful_shutdown`:
///   an idle HTTP/1.1 connection closes at once, HTTP/2 sends `GOAWAY`);
/// * a request in flight that ends within `grace` answers in full; one still running when
///   `grace` ends sees its ctx done with `soft`'s error and cause;
/// * a handler that ignores its ctx has [`LAST_WORD`] more, then its connection is closed.
///
/// Returns once every connection is closed: at most `grace` + [`LAST_WORD`] after `soft` is
/// done, on `soft`'s clock (a `MockClock`'s root makes the grace pass when a test advances it).
///
/// # Panics
///
/// When polled outside a tokio runtime: it spawns a task per connection.
///
/// # Examples
///
/// ```
/// use std::{convert::Infallible, time::Duration};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (soft, stop) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let app = tower::service_fn(|_: http::Request<hyper::body::Incoming>| async {
///     Ok::<_, Infallible>(http::Response::new(String::from("hello\n")))
/// });
/// let grace = Duration::from_secs(30);
/// let server = tokio::spawn(ctx_examples::serve_drained(listener, soft, grace, app));
/// stop.cancel(); // nothing in flight: the drain is over at once
/// tokio::time::timeout(Duration::from_secs(5), server).await.expect("drained").unwrap();
/// # Ok(()) }
/// ```
pub async fn serve_drained<S, B>(listener: TcpListener, soft: Ctx, grace: Duration, app: S)
where
    S: tower::Service<http::Request<Incoming>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // Keep both handles: dropping the last clone of one cancels its context.
    let (hard, _keep_hard) = soft.with_grace(grace);
    let (cut_off, _keep_cut_off) = hard.with_grace(LAST_WORD); // the last word
    let app = ServerLayer::new(hard).layer(app);
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(200)
        .max_pending_accept_reset_streams(200);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let stream = match soft.run(listener.accept()).await {
            // One accepted as shutdown came is dropped unanswered.
            Ok(Ok((stream, _))) if !soft.is_done() => stream,
            // Out of file descriptors, say: wait a little, as axum does.
            Ok(Err(_)) => {
                let _ = soft.sleep(Duration::from_millis(100)).await;
                continue;
            }
            _ => break, // shutdown: stop accepting
        };
        while connections.try_join_next().is_some() {} // forget the closed ones
        let service = TowerToHyperService::new(app.clone());
        let (builder, soft, cut_off) = (builder.clone(), soft.clone(), cut_off.clone());
        connections.spawn(async move {
            let mut conn = std::pin::pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                biased;
                _ = soft.done() => conn.as_mut().graceful_shutdown(), // close when idle
                _ = conn.as_mut() => return,
            }
            let _ = cut_off.run(conn).await; // a handler still running then loses its connection
        });
    }
    drop(listener); // connects are refused from here on
    while connections.join_next().await.is_some() {}
}
