//! One deadline and one cancellation across services: Go's `context` for tower, hyper, axum
//! and tonic.
//!
//! In Go, a deadline set at the edge reaches every service behind it, and a client that hangs
//! up stops the work it started, three hops down. This crate gives a tower service the same
//! behaviour with two layers and no runtime of its own:
//!
//! * [`ServerLayer`]: each request gets a [`Ctx`] in its extensions — a child of the server's
//!   root, with the deadline the caller sent in `grpc-timeout`, canceled with
//!   [`ClientDisconnected`] when the client goes away, with the root's cause at shutdown, and
//!   plainly once the response body ends. Its [`CtxBody`] keeps a streaming response's ctx
//!   alive until the last frame;
//! * [`ClientLayer`]: an outgoing request that carries a `Ctx` sends the time left as
//!   `grpc-timeout`, is never sent when the ctx is done, and is abandoned the moment the ctx is
//!   done (error [`ClientError::Done`]);
//! * [`grpc_timeout::parse`] / [`grpc_timeout::format`]: the header's format, hostile input
//!   included;
//! * [`status_for`]: the HTTP status for the reason a request's ctx ended — its deadline
//!   (504), its client gone (499), the server's own doing (503); [`http_status`] /
//!   [`grpc_code`] map the error alone (504 / 499, `DEADLINE_EXCEEDED` / `CANCELLED`);
//! * with feature `tonic`, `grpc_status(&Ctx) -> tonic::Status` for handlers, and tonic
//!   clients behind `ClientLayer` that read `DEADLINE_EXCEEDED` / `CANCELLED`, not `UNKNOWN`.
//!
//! Time comes from the root's clock ([`Ctx::now`]): `ctx_tokio::background()` on tokio (paused
//! time included), `MockClock` in tests. No timer is armed unless a handler waits on its ctx.
//!
//! # Examples
//!
//! Adopting it in an axum service (the same two layers fit hyper and tonic; this sketch is
//! compiled and run in full in `docs/services.md`):
//!
//! ```text
//! let (root, shutdown) = ctx_tokio::background().with_cancel();            // cancel = shutdown
//! let app = Router::new().route("/", get(handler)).layer(ServerLayer::new(root));
//! async fn handler(Extension(ctx): Extension<Ctx>) -> Response { /* pass &ctx down */ }
//! let client = ServiceBuilder::new().layer(ClientLayer::new()).service(http_client);
//! req.extensions_mut().insert(ctx.clone()); // the outgoing call carries the deadline
//! ```
//!
//! The same as a test that runs anywhere, on a `MockClock`:
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use ctx_core::{Ctx, Error};
//! use ctx_tower::{ClientLayer, ServerLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! fn main() {
//!     futures::executor::block_on(async {
//!         let clock = ctx_testkit::MockClock::new();
//!         // A backend whose handler reports the deadline it was given.
//!         let backend = ServiceBuilder::new()
//!             .layer(ServerLayer::new(clock.background()))
//!             .service_fn(|req: http::Request<()>| async move {
//!                 let ctx = req.extensions().get::<Ctx>().unwrap();
//!                 Ok::<_, Infallible>(http::Response::new(format!("{:?}", ctx.remaining())))
//!             });
//!         // A client in front of it, called under a 2 s deadline.
//!         let mut client = ServiceBuilder::new().layer(ClientLayer::new()).service(backend);
//!         let (ctx, _cancel) = clock.background().with_timeout(Duration::from_secs(2));
//!         let mut req = http::Request::new(());
//!         req.extensions_mut().insert(ctx);
//!         let resp = client.ready().await.unwrap().call(req).await.unwrap();
//!         assert_eq!(resp.into_body().get_ref(), "Some(2s)");
//!     });
//! }
//! ```
//!
//! # Where next
//!
//! * `docs/services.md` in the source repository: how a deadline crosses services, ctx-tower
//!   next to tonic's and tower's own timeouts, and adoption in axum or tonic in five lines.
//! * [The table of adapters](ctx_core#choosing-a-root) for the server's root (on tokio:
//!   `ctx_tokio::background()`), and the guide (`docs/guide.md`).
//! * [`ctx-testkit`](https://docs.rs/ctx-testkit): `MockClock`, as in the example above, to test
//!   a service's deadlines without waiting.
//!
//! # Features
//!
//! * `tonic` (off by default): `grpc_status(&Ctx) -> tonic::Status`, and
//!   [`ClientError::Done`] carries a `tonic::Status` as its source, so that tonic's generated
//!   clients behind [`ClientLayer`] report `DEADLINE_EXCEEDED` / `CANCELLED` (tonic turns any
//!   other service error into `UNKNOWN`). It adds `tonic` without default features (only its
//!   `Status` is used).
//!
//! Without it the crate depends on `ctx-core`, `http`, `http-body`, `tower-layer` and
//! `tower-service` only.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88 (let-chains; tonic's own minimum as well).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod client;
#[cfg(feature = "tonic")]
mod grpc;
pub mod grpc_timeout;
pub mod server;

use std::fmt;

use ctx_core::Error;

#[doc(inline)]
pub use crate::client::{ClientError, ClientLayer, ClientService};
#[cfg(feature = "tonic")]
#[doc(inline)]
pub use crate::grpc::grpc_status;
#[doc(inline)]
pub use crate::server::{CtxBody, ServerLayer, ServerService};
#[doc(no_inline)]
pub use ctx_core::Ctx;

// ===== ClientDisconnected =====

/// The cause of a request ctx canceled because its client went away: the server dropped the
/// response future or the response body before the body had ended.
///
/// It comes when the server notices, and hyper notices only when it reads or writes the
/// connection: a client that sends its headers and part of a body, then vanishes, is seen
/// when the handler reads the body (or answers), not before. A response whose body is never
/// sent (HEAD, 204, 304) is not a hang-up: its request ends with plain `Canceled`. See
/// [`ServerLayer`](crate::ServerLayer#when-a-hang-up-is-seen).
///
/// # Examples
///
/// ```
/// use ctx_tower::ClientDisconnected;
/// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel_cause();
/// cancel.cancel(std::sync::Arc::new(ClientDisconnected) as ctx_core::Cause);
/// assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
/// assert_eq!(ClientDisconnected.to_string(), "client disconnected");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientDisconnected;

impl fmt::Display for ClientDisconnected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client disconnected")
    }
}

impl std::error::Error for ClientDisconnected {}

// ===== error mapping =====

/// The HTTP status for a handler whose ctx is done: `DeadlineExceeded` → `504 Gateway
/// Timeout`, `Canceled` → `499` (nginx's "client closed request"; nobody is left to read it,
/// but logs and metrics are).
///
/// # Examples
///
/// ```
/// use ctx_core::Error;
/// assert_eq!(ctx_tower::http_status(Error::DeadlineExceeded), http::StatusCode::GATEWAY_TIMEOUT);
/// assert_eq!(ctx_tower::http_status(Error::Canceled).as_u16(), 499);
/// ```
pub fn http_status(err: Error) -> http::StatusCode {
    match err {
        Error::DeadlineExceeded => http::StatusCode::GATEWAY_TIMEOUT,
        Error::Canceled => client_closed_request(),
    }
}

fn client_closed_request() -> http::StatusCode {
    match http::StatusCode::from_u16(499) {
        Ok(code) => code,
        // Every number from 100 to 999 is a valid status code.
        Err(_) => unreachable!("ctx-tower: internal error: 499 is a valid status code"),
    }
}

/// The HTTP status for the reason a request's ctx ended, with what the cause tells:
///
/// * its deadline passed ([`Error::DeadlineExceeded`]) → `504 Gateway Timeout`;
/// * its client went away (cause [`ClientDisconnected`]) → `499` (client closed request);
/// * any other cause — the server's shutdown (the root was canceled), a cancel of the
///   handler's own — → `503 Service Unavailable`: the server gave up, not the client;
/// * not done → `200 OK`.
///
/// [`http_status`] maps the error alone (every `Canceled` is 499); this one tells a shutdown
/// from a hang-up.
///
/// # Examples
///
/// ```
/// use ctx_core::Ctx;
/// let (root, shutdown) = Ctx::background().with_cancel();
/// let (req_ctx, _end) = root.with_cancel_cause();
/// assert_eq!(ctx_tower::status_for(&req_ctx), http::StatusCode::OK);
/// shutdown.cancel();
/// assert_eq!(ctx_tower::status_for(&req_ctx), http::StatusCode::SERVICE_UNAVAILABLE);
/// ```
pub fn status_for(ctx: &Ctx) -> http::StatusCode {
    match ctx.err() {
        None => http::StatusCode::OK,
        Some(Error::DeadlineExceeded) => http::StatusCode::GATEWAY_TIMEOUT,
        Some(Error::Canceled) if cause_is_disconnect(ctx) => client_closed_request(),
        Some(Error::Canceled) => http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn cause_is_disconnect(ctx: &Ctx) -> bool {
    ctx.cause().is_some_and(|c| c.is::<ClientDisconnected>())
}

/// The gRPC status code for a handler whose ctx is done: `DeadlineExceeded` → 4
/// (`DEADLINE_EXCEEDED`), `Canceled` → 1 (`CANCELLED`). With tonic:
/// `tonic::Status::new(grpc_code(err).into(), err.to_string())`.
///
/// # Examples
///
/// ```
/// use ctx_core::Error;
/// assert_eq!(ctx_tower::grpc_code(Error::DeadlineExceeded), 4);
/// assert_eq!(ctx_tower::grpc_code(Error::Canceled), 1);
/// ```
pub fn grpc_code(err: Error) -> i32 {
    match err {
        Error::DeadlineExceeded => 4,
        Error::Canceled => 1,
    }
}
