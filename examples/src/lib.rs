//! The request-scoped HTTP server behind `examples/http_server.rs` and `tests/http.rs`: each
//! request gets a [`Ctx`] with a deadline taken from its headers, canceled when the client
//! disconnects, and passed to a simulated slow backend that honours it.
//!
//! This crate provides:
//!
//! * [`serve`]: an HTTP/1.1 server (hyper) that stops accepting when its root context is done;
//! * [`App`]: the request handler, and [`Backend`], the downstream service it calls;
//! * [`request_timeout`] / [`grpc_timeout`]: deadlines over the wire, in and out;
//! * [`Stats`]: what the backend saw (started, finished, canceled, and the last cause), for
//!   tests to watch.
//!
//! The runnable programs are in `examples/examples/` (start with `cargo run -p ctx-examples
//! --example demo`); the project's README is compiled here as a doctest.
//!
//! # Examples
//!
//! ```
//! use ctx_examples::{App, serve};
//!
//! #[tokio::main(flavor = "current_thread")]
//! async fn main() -> std::io::Result<()> {
//!     // The one root of the program, from the runtime's adapter.
//!     let (server_ctx, shutdown) = ctx_tokio::background().with_cancel();
//!     let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//!     let app = App::new();
//!     let server = tokio::spawn(serve(listener, app.clone(), server_ctx));
//!     // ... clients talk to the server ...
//!     shutdown.cancel(); // stop accepting; in-flight requests get 503
//!     server.await.unwrap()
//! }
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ctx_core::{CancelCauseHandle, Cause, Ctx, Error};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// The README's example, compiled and run by `cargo test -p ctx-examples --doc`.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guide's snippets, compiled and run as doctests.
#[doc = include_str!("../../docs/guide.md")]
#[cfg(doctest)]
pub struct GuideDoctests;

/// The Go migration guide's snippets, compiled and run as doctests.
#[doc = include_str!("../../docs/go-migration.md")]
#[cfg(doctest)]
pub struct GoMigrationDoctests;

/// The patterns' snippets, compiled and run as doctests.
#[doc = include_str!("../../docs/patterns.md")]
#[cfg(doctest)]
pub struct PatternsDoctests;

/// The snippets of the page for users coming from tokio-util's `CancellationToken`, compiled
/// and run as doctests.
#[doc = include_str!("../../docs/from-cancellation-token.md")]
#[cfg(doctest)]
pub struct FromCancellationTokenDoctests;

// ===== deadlines over the wire =====

/// The request's time budget, from its headers: `x-timeout-ms: <milliseconds>`, else
/// `grpc-timeout: <digits><unit>` (units `H`, `M`, `S`, `m`, `u`, `n`, as gRPC writes them).
/// Returns `None` when neither header is present or well-formed.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use hyper::HeaderMap;
/// let mut headers = HeaderMap::new();
/// headers.insert("grpc-timeout", "250m".parse().unwrap());
/// assert_eq!(ctx_examples::request_timeout(&headers), Some(Duration::from_millis(250)));
/// headers.insert("x-timeout-ms", "40".parse().unwrap());
/// assert_eq!(ctx_examples::request_timeout(&headers), Some(Duration::from_millis(40)));
/// ```
pub fn request_timeout(headers: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers.get("x-timeout-ms").and_then(|v| v.to_str().ok()) {
        return ms.trim().parse().ok().map(Duration::from_millis);
    }
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 {
        return None; // gRPC allows at most 8 digits
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n * 3600),
        "M" => Duration::from_secs(n * 60),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Formats what is left of `ctx`'s deadline as a `grpc-timeout` header value (in whole
/// milliseconds, rounded up so a live deadline never reads as zero), or `None` when `ctx`
/// has no deadline. What a client puts on the wire so the server can give up when it does.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::Ctx;
/// assert_eq!(ctx_examples::grpc_timeout(&Ctx::background()), None);
/// let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_secs(30));
/// let header = ctx_examples::grpc_timeout(&ctx).unwrap();
/// assert!(header.ends_with('m'));
/// ```
pub fn grpc_timeout(ctx: &Ctx) -> Option<String> {
    let left = ctx.remaining()?;
    let ms = left.as_nanos().div_ceil(1_000_000);
    // gRPC allows 8 digits; past that, say seconds (or hours), still rounded up.
    Some(if ms < 100_000_000 {
        format!("{ms}m")
    } else if ms / 1000 < 100_000_000 {
        format!("{}S", ms.div_ceil(1000))
    } else {
        format!("{}H", (ms / 1000).div_ceil(3600).min(99_999_999))
    })
}

// ===== causes =====

/// The cause of a request context canceled because its client went away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientDisconnected;

impl fmt::Display for ClientDisconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client disconnected")
    }
}

impl std::error::Error for ClientDisconnected {}

/// The cause of a request context whose time budget (from its headers) ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent(pub Duration);

impl fmt::Display for BudgetSpent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "request budget of {:?} spent", self.0)
    }
}

impl std::error::Error for BudgetSpent {}

// ===== Stats =====

/// What the backend has seen so far. Read it with [`Backend::stats`]; wait for a change with
/// [`Backend::watch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls that started work.
    pub started: usize,
    /// Calls that finished their work.
    pub finished: usize,
    /// Calls stopped (or refused before they started) because their context was canceled.
    pub canceled: usize,
    /// Calls stopped (or refused) because their context's deadline passed.
    pub deadline_exceeded: usize,
    /// The cause of the last call that was stopped, as text.
    pub last_cause: Option<String>,
}

// ===== Backend =====

/// A simulated slow downstream service (a database, another RPC server). Each call runs in a
/// task of its own, as a connection pool's worker would, and honours the caller's context: it
/// stops as soon as the context is done and records why.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::Error;
/// use ctx_examples::Backend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let backend = Backend::new();
/// let (ctx, cancel) = ctx_tokio::background().with_cancel();
/// assert!(backend.query(&ctx, Duration::ZERO).await.is_ok());
/// cancel.cancel();
/// assert_eq!(backend.query(&ctx, Duration::from_secs(60)).await, Err(Error::Canceled));
/// assert_eq!(backend.stats().canceled, 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Backend {
    stats: Arc<watch::Sender<Stats>>,
}

impl Backend {
    /// A backend with all counters at zero.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::Backend::new().stats().started, 0);
    /// ```
    pub fn new() -> Backend {
        Backend {
            stats: Arc::new(watch::Sender::new(Stats::default())),
        }
    }

    /// Does `work` worth of waiting, unless `ctx` is done first. Returns a short report, or
    /// the context's error. The work runs in a spawned task that keeps a clone of `ctx`, so it
    /// stops on cancellation even if the caller's future is dropped. Must be called inside a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let backend = ctx_examples::Backend::new();
    /// let answer = backend.query(&ctx_tokio::background(), std::time::Duration::ZERO).await;
    /// assert_eq!(answer.unwrap(), "backend answered after 0 ms");
    /// # }
    /// ```
    pub async fn query(&self, ctx: &Ctx, work: Duration) -> Result<String, Error> {
        let (tx, rx) = oneshot::channel();
        let ctx = ctx.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let outcome = match ctx.err() {
                // Never start work for a request that is gone.
                Some(err) => Err(err),
                None => {
                    stats.send_modify(|s| s.started += 1);
                    tokio::select! {
                        () = tokio::time::sleep(work) => Ok(format!("backend answered after {} ms", work.as_millis())),
                        err = ctx.done() => Err(err),
                    }
                }
            };
            stats.send_modify(|s| match outcome {
                Ok(_) => s.finished += 1,
                Err(err) => {
                    match err {
                        Error::Canceled => s.canceled += 1,
                        Error::DeadlineExceeded => s.deadline_exceeded += 1,
                    }
                    s.last_cause = ctx.cause().map(|c| c.to_string());
                }
            });
            let _ = tx.send(outcome);
        });
        // The task always answers; a dropped sender would mean it panicked.
        rx.await.unwrap_or(Err(Error::Canceled))
    }

    /// A snapshot of the counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = ctx_examples::Backend::new().stats();
    /// assert_eq!((stats.finished, stats.canceled), (0, 0));
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every change of the counters; `wait_for` on it to wait for one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let backend = ctx_examples::Backend::new();
    /// let mut watch = backend.watch();
    /// let _ = backend.query(&ctx_tokio::background(), std::time::Duration::ZERO).await;
    /// watch.wait_for(|s| s.finished == 1).await.unwrap();
    /// # }
    /// ```
    pub fn watch(&self) -> watch::Receiver<Stats> {
        self.stats.subscribe()
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::new()
    }
}

// ===== App =====

/// The request handler: one route, `GET /work?ms=N`, that asks the [`Backend`] for `N`
/// milliseconds of work (default 10) under the request's context.
///
/// Answers `200` with the backend's report; `504 Gateway Timeout` with
/// `context deadline exceeded (<cause>)` when the request's budget runs out; `503` when the
/// server is shutting down; `400` for a malformed `ms`.
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
}

/// Cancels the request context with [`ClientDisconnected`] if the request future is dropped
/// before the response is ready: hyper drops it when the client goes away.
struct RequestGuard {
    cancel: Option<CancelCauseHandle>,
}

impl RequestGuard {
    /// The response is ready: cancel without a cause (Go: `ServeHTTP` returned).
    fn finish(mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel_without_cause();
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if let Some(cancel) = self.cancel.take() {
            cancel.cancel(Arc::new(ClientDisconnected) as Cause);
        }
    }
}

impl App {
    /// An app with a fresh [`Backend`].
    ///
    /// # Examples
    ///
    /// ```
    /// let _app = ctx_examples::App::new();
    /// ```
    pub fn new() -> App {
        App {
            backend: Backend::new(),
        }
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

    /// Handles one request under `server`, the server's root context: derives the request's
    /// context (canceled on client disconnect, deadline from [`request_timeout`]) and calls the
    /// backend with it.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let app = ctx_examples::App::new();
    /// let req = hyper::Request::get("/work?ms=0").header("x-timeout-ms", "5000").body(()).unwrap();
    /// let resp = app.handle(&ctx_tokio::background(), req).await;
    /// assert_eq!(resp.status(), hyper::StatusCode::OK);
    /// # }
    /// ```
    pub async fn handle<B>(&self, server: &Ctx, req: Request<B>) -> Response<Full<Bytes>> {
        // The request context: a child of the server's, so shutdown reaches every request.
        let (ctx, cancel) = server.with_cancel_cause();
        // The deadline child; `_deadline` cancels it when this function returns or is dropped.
        let (ctx, _deadline) = match request_timeout(req.headers()) {
            Some(budget) => ctx.with_timeout_cause(budget, Arc::new(BudgetSpent(budget)) as Cause),
            None => ctx.with_cancel(),
        };
        // Declared last, so dropped first: if the future is dropped, the parent is canceled
        // with `ClientDisconnected` before `_deadline` cancels the child with no cause.
        let guard = RequestGuard { cancel: Some(cancel) };
        let response = match work_param(req.uri().query()) {
            None => reply(StatusCode::BAD_REQUEST, "bad `ms` parameter\n".to_owned()),
            Some(work) => match self.backend.query(&ctx, work).await {
                Ok(report) => reply(StatusCode::OK, format!("{report}\n")),
                Err(err) => {
                    let status = match err {
                        Error::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
                        Error::Canceled => StatusCode::SERVICE_UNAVAILABLE,
                    };
                    reply(status, format!("{err} ({})\n", cause_text(ctx.cause())))
                }
            },
        };
        guard.finish();
        response
    }
}

fn cause_text(cause: Option<Cause>) -> String {
    cause.map_or_else(|| "no cause".to_owned(), |c| c.to_string())
}

fn work_param(query: Option<&str>) -> Option<Duration> {
    let Some(query) = query else {
        return Some(Duration::from_millis(10));
    };
    for pair in query.split('&') {
        if let Some(ms) = pair.strip_prefix("ms=") {
            return ms.parse().ok().map(Duration::from_millis);
        }
    }
    Some(Duration::from_millis(10))
}

fn reply(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

// ===== serve =====

/// Serves `app` over HTTP/1.1 on `listener` until `server` (the server's root context) is
/// done, then stops accepting and returns. Each connection runs in a task of its own; requests
/// still in flight at shutdown are answered `503` (their contexts are children of `server`).
///
/// A request's future is dropped by hyper when its client disconnects; the request context is
/// then canceled with [`ClientDisconnected`], and the backend stops.
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
/// let (server, shutdown) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// shutdown.cancel();
/// ctx_examples::serve(listener, ctx_examples::App::new(), server).await?; // returns at once
/// # Ok(()) }
/// ```
pub async fn serve(listener: TcpListener, app: App, server: Ctx) -> std::io::Result<()> {
    loop {
        let (stream, _peer) = match server.run(listener.accept()).await {
            Err(_done) => return Ok(()),
            Ok(Ok(accepted)) => accepted,
            Ok(Err(e)) if is_per_connection(&e) => continue,
            Ok(Err(e)) => return Err(e),
        };
        let app = app.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let app = app.clone();
                let server = server.clone();
                async move { Ok::<_, Infallible>(app.handle(&server, req).await) }
            });
            // A broken connection is the client's business; nothing to report here.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
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
