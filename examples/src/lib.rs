//! Services that pass one deadline and one cancellation from hop to hop with `ctx-tower`,
//! behind `examples/http_server.rs`, `examples/axum_gateway.rs`, `examples/tonic_health.rs`,
//! `examples/drain.rs` and the loopback tests in `tests/`.
//!
//! This crate provides:
//!
//! * [`serve`] / [`serve_with`]: a hyper server (HTTP/1.1 and HTTP/2) under
//!   [`ServerLayer`](ctx_tower::ServerLayer), stopping when its root context is done;
//! * [`App`]: a hyper handler that reads its request's [`Ctx`] and calls [`Backend`], a
//!   simulated slow downstream service that honours it;
//! * [`Gateway`]: an axum service (`Extension<Ctx>`) that calls the next hop through
//!   [`ClientLayer`](ctx_tower::ClientLayer) with [`http_client`] and [`get`];
//! * [`HealthProbe`], [`serve_grpc`], [`grpc_client`]: the same with tonic;
//! * [`serve_drained`]: a hyper server that drains on shutdown, under a grace period (the
//!   graceful drain of `docs/services.md`);
//! * [`status_for`] / [`grpc_status`]: a done ctx as 504 / 499 / 503, or as
//!   `DEADLINE_EXCEEDED` / `CANCELLED`;
//! * [`Stats`] and [`RequestLog`]: what the backend and the handlers saw, for tests to watch.
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

mod app;
mod backend;
mod drain;
mod gateway;
mod grpc;
mod log;

pub use crate::app::{App, AppBody, BudgetSpent, serve, serve_with, status_for};
pub use crate::backend::{Backend, Stats};
pub use crate::drain::{LAST_WORD, serve_drained};
pub use crate::gateway::{Gateway, HttpClient, Version, get, http_client, serve_gateway};
pub use crate::grpc::{
    BoxError, GrpcChannel, HealthProbe, WatchStream, grpc_client, grpc_status, serve_grpc,
};
pub use crate::log::{RequestLog, Requests};

#[cfg(doc)]
use ctx_core::Ctx;

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

/// The services page's snippets, compiled and run as doctests.
#[doc = include_str!("../../docs/services.md")]
#[cfg(doctest)]
pub struct ServicesDoctests;

/// ctx-tower's README, compiled and run as doctests.
#[doc = include_str!("../../ctx-tower/README.md")]
#[cfg(doctest)]
pub struct CtxTowerReadmeDoctests;
