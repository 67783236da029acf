//! A deadline that stops the query on the server: Go's `db.QueryContext(ctx, ...)` for
//! tokio-postgres.
//!
//! Dropping a tokio-postgres future (what `tokio::time::timeout` does when time is up) sends
//! nothing to the server: the handler has answered 504 and the database still runs the query.
//! With this crate the same call takes the request's [`Ctx`], and when the ctx ends first the
//! server is told to stop (PostgreSQL's CancelRequest):
//!
//! * [`ClientExt`]: `query_ctx`, `query_one_ctx`, `query_opt_ctx`, `execute_ctx`,
//!   `batch_execute_ctx` on [`tokio_postgres::Client`] (and what derefs to it);
//! * [`Error`]: [`Error::Done`] when the ctx ended first (nothing was sent, or the server
//!   stopped the query), [`Error::Db`] for tokio-postgres's own errors;
//! * [`CancelRoute`]: where the cancel requests of a connection go, and with which TLS
//!   connector, when the default (ask the server, no TLS) does not fit.
//!
//! A cancel request stops whatever the backend runs at that moment, so the crate makes sure
//! it only ever stops the query it was sent for: `*_ctx` calls on one connection take turns,
//! and a connection is handed to the next call only when its cancel can no longer land
//! ([`ClientExt`] says what that covers).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ctx_postgres::ClientExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ctx_postgres::Error> {
//! # let client = ctx_postgres::test_server::TestServer::shared().unwrap().connect().await?;
//! # client.batch_execute("CREATE TEMP TABLE orders (id int4, paid bool)").await?;
//! let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(2));
//! let rows = client.query_ctx(&ctx, "SELECT id FROM orders WHERE paid", &[]).await?;
//! assert!(rows.is_empty());
//! # Ok(()) }
//! ```
//!
//! # Features
//!
//! * `test-server`: `test_server::TestServer`, a throwaway PostgreSQL server for tests,
//!   benchmarks and examples (runs the `initdb` and `postgres` programs found on the machine).
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod call;
mod error;
mod ext;
mod registry;
mod route;
#[cfg(feature = "test-server")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-server")))]
pub mod test_server;

#[doc(inline)]
pub use ctx_core::Ctx;
pub use error::Error;
pub use ext::ClientExt;
pub use route::{CancelRoute, CancelStream};

/// The README's example, compiled by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
