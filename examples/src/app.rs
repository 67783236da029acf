//! [`App`], the hyper service behind `examples/http_server.rs` (and hop B of the service chain
//! in `tests/services.rs`), and [`serve`], which runs any tower service under [`ServerLayer`].

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ctx_core::{CancelHandle, Cause, Ctx, Error};
use ctx_tower::{ClientDisconnected, ServerLayer};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Layer, Service};

use crate::{Backend, RequestLog};

/// The response body of [`App`]: a whole answer or a stream of ticks.
pub type AppBody = BoxBody<Bytes, Infallible>;

// ===== causes =====

/// The cause of a request context whose `x-timeout-ms` budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent(pub Duration);

impl fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request budget of {:?} spent", self.0)
    }
}

impl std::error::Error for BudgetSpent {}

// ===== App =====

/// The request handler, run under [`ServerLayer`] (which puts the request's [`Ctx`] in its
/// extensions: deadline from `grpc-timeout`, canceled when the client goes away or the root
/// is canceled). Two routes:
///
/// * `GET /work?ms=N`: asks the [`Backend`] for `N` milliseconds of work (default 10) under
///   the request's ctx. An `x-timeout-ms: T` header narrows the deadline further (an app's
///   own budget header on top of `grpc-timeout`);
/// * `GET /stream?ticks=N&ms=M`: a streaming answer of `N` lines, one every `M` ms, each
///   saying whether the request's ctx is still live. The ctx lives until the last line.
///
/// Answers `200`; `504 Gateway Timeout` when the request's deadline passes; `499` when its
/// client went away (nobody reads it, logs do); `503` when the server is shutting down;
/// `400` for a malformed parameter. Every request's ctx goes into [`App::log`].
///
/// # Examples
///
/// ```
/// let app = ctx_examples::App::new();
/// assert_eq!(app.backend().stats().started, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct App {
    backend: Backend,
    log: RequestLog,
}

impl App {
    /// An app with a fresh [`Backend`] and an empty log.
    ///
    /// # Examples
    ///
    /// ```
    /// let _app = ctx_examples::App::new();
    /// ```
    pub fn new() -> App {
        App::default()
    }

    /// The backend this app calls (clones share counters).
    ///
    /// # Examples
    ///
    /// ```
    /// let app = ctx_examples::App::new();
    /// assert_eq!(app.backend().stats(), app.clone().backend().stats());
    /// ```
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// What the handlers saw of their request contexts.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::App::new().log().get().seen, 0);
    /// ```
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Handles one request whose ctx [`ServerLayer`] has put in its extensions.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = ctx_examples::App::new();
    /// let mut req = hyper::Request::get("/work?ms=0").body(()).unwrap();
    /// req.extensions_mut().insert(ctx_core::Ctx::background()); // what ServerLayer does
    /// let resp = app.handle(req).await;
    /// assert_eq!(resp.status(), hyper::StatusCode::OK);
    /// # }
    /// ```
    pub async fn handle<B>(&self, req: Request<B>) -> Response<AppBody> {
        let Some(ctx) = req.extensions().get::<Ctx>().cloned() else {
            return reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "no request ctx: is ServerLayer installed?\n".into(),
            );
        };
        self.log.record(&ctx);
        // The app's own budget header, on top of `grpc-timeout`: a child with a deadline.
        // `_budget` cancels that child when this function returns or is dropped.
        let (ctx, budget) = match header_ms(req.headers().get("x-timeout-ms")) {
            Some(budget) => ctx.with_timeout_cause(budget, Arc::new(BudgetSpent(budget)) as Cause),
            None => ctx.with_cancel(),
        };
        let query = req.uri().query();
        match req.uri().path() {
            "/stream" => match (param(query, "ticks", 3), param(query, "ms", 10)) {
                (Some(ticks), Some(ms)) => {
                    // The body outlives this function: it takes the budget's handle along.
                    let body = Ticks::new(ctx.clone(), budget, ticks, Duration::from_millis(ms));
                    Response::new(body.boxed())
                }
                _ => reply(StatusCode::BAD_REQUEST, "bad `ticks` or `ms` parameter\n".into()),
            },
            _ => {
                let _budget = budget; // canceled when this returns (or is dropped)
                match param(query, "ms", 10) {
                    None => reply(StatusCode::BAD_REQUEST, "bad `ms` parameter\n".into()),
                    Some(ms) => match self.backend.query(&ctx, Duration::from_millis(ms)).await {
                        Ok(report) => reply(StatusCode::OK, format!("{report}\n")),
                        Err(err) => {
                            let cause = ctx.cause().map_or_else(|| "no cause".into(), |c| c.to_string());
                            reply(status_for(&ctx, err), format!("{err} ({cause})\n"))
                        }
                    },
                }
            }
        }
    }
}

/// The status for a request whose ctx is done: [`ctx_tower::http_status`] (504, or 499 when
/// the client went away), except `503` when it was canceled for another reason (shutdown).
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// cancel.cancel(); // not the client's doing: the server is shutting down
/// assert_eq!(ctx_examples::status_for(&ctx, Error::Canceled), 503);
/// assert_eq!(ctx_examples::status_for(&ctx, Error::DeadlineExceeded), 504);
/// ```
pub fn status_for(ctx: &Ctx, err: Error) -> StatusCode {
    let client_left = ctx.cause().is_some_and(|c| c.is::<ClientDisconnected>());
    match err {
        Error::Canceled if !client_left => StatusCode::SERVICE_UNAVAILABLE,
        _ => ctx_tower::http_status(err),
    }
}

fn header_ms(value: Option<&HeaderValue>) -> Option<Duration> {
    let ms: u64 = value?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// `name=N` from the query string; `default` when absent, `None` when malformed.
fn param(query: Option<&str>, name: &str, default: u64) -> Option<u64> {
    for pair in query.unwrap_or("").split('&') {
        if let Some(v) = pair.strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            return v.parse().ok();
        }
    }
    Some(default)
}

fn reply(status: StatusCode, body: String) -> Response<AppBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

// ===== Ticks =====

/// A streaming body: `left` lines, one every `every`, each saying whether `ctx` is live.
struct Ticks {
    ctx: Ctx,
    /// Cancels `ctx` (the `x-timeout-ms` child) when the body is dropped.
    _budget: CancelHandle,
    sent: u64,
    left: u64,
    every: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl Ticks {
    fn new(ctx: Ctx, budget: CancelHandle, ticks: u64, every: Duration) -> Ticks {
        Ticks {
            ctx,
            _budget: budget,
            sent: 0,
            left: ticks,
            every,
            sleep: Box::pin(tokio::time::sleep(every)),
        }
    }
}

impl Body for Ticks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let every = self.every;
        let deadline = tokio::time::Instant::now() + every;
        self.sleep.as_mut().reset(deadline);
        self.left -= 1;
        self.sent += 1;
        let line = format!("tick {}: ctx err={:?}\n", self.sent, self.ctx.err());
        Poll::Ready(Some(Ok(Frame::data(Bytes::from(line)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }
}

// ===== serve =====

/// Serves `app` on `listener` under [`ServerLayer`] with `root` as the root of every request's
/// ctx, over HTTP/1.1 and HTTP/2 (prior knowledge), until `root` is done. See [`serve_with`].
///
/// # Errors
///
/// An error from `accept` that is not about one connection (those are skipped).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (root, shutdown) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// shutdown.cancel();
/// ctx_examples::serve(listener, ctx_examples::App::new(), root).await?; // returns at once
/// # Ok(()) }
/// ```
pub async fn serve(listener: TcpListener, app: App, root: Ctx) -> std::io::Result<()> {
    let service = tower::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.handle(req).await) }
    });
    serve_with(listener, root, service).await
}

/// Serves any tower service on `listener` under [`ServerLayer::new(root)`](ServerLayer), over
/// HTTP/1.1 and HTTP/2 (hyper-util's `auto` builder), until `root` is done. Then it stops
/// accepting, and each open connection shuts down gracefully: its requests in flight are
/// canceled with `root`'s cause (their ctx are children of `root`), answer, and the connection
/// closes. Each connection runs in a task of its own.
///
/// When a client goes away, hyper drops the request's future (HTTP/1.1: the connection
/// closed; HTTP/2: the stream reset), and `ServerLayer` cancels the request's ctx with
/// [`ClientDisconnected`].
///
/// # Errors
///
/// An error from `accept` that is not about one connection (those are skipped).
///
/// # Examples
///
/// ```
/// use std::convert::Infallible;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (root, shutdown) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let hello = tower::service_fn(|_req: hyper::Request<hyper::body::Incoming>| async {
///     Ok::<_, Infallible>(hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from("hi"))))
/// });
/// let server = tokio::spawn(ctx_examples::serve_with(listener, root, hello));
/// shutdown.cancel();
/// server.await.unwrap()?;
/// # Ok(()) }
/// ```
pub async fn serve_with<S, RB>(listener: TcpListener, root: Ctx, service: S) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    RB: Body + Send + 'static,
    RB::Data: Send,
    RB::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = ServerLayer::new(root.clone()).layer(service);
    loop {
        let (stream, _peer) = match root.run(listener.accept()).await {
            Err(_done) => return Ok(()),
            Ok(Ok(accepted)) => accepted,
            Ok(Err(e)) if is_per_connection(&e) => continue,
            Ok(Err(e)) => return Err(e),
        };
        let service = TowerToHyperService::new(service.clone());
        let root = root.clone();
        tokio::spawn(async move {
            let builder = auto::Builder::new(TokioExecutor::new());
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                // A broken connection is the client's business; nothing to report here.
                _ = conn.as_mut() => {}
                _ = root.done() => {
                    // Shutdown: finish what is in flight (already canceled), then close.
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}
