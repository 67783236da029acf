//! Test tools for `ctx` (Go's `context` for Rust): a mock clock, poll helpers, and the
//! conformance suite every runtime adapter runs.
//!
//! This crate provides:
//!
//! * [`MockClock`]: deterministic, manually advanced time for contexts, on any executor.
//!   Deadlines fire only when the test calls [`advance`](MockClock::advance), and everything
//!   due has fired when it returns; or let [`MockClock::block_on`] run a future and move time
//!   to the next timer whenever the future is idle;
//! * [`Probe`]: poll a future by hand with a counting waker and assert pending / ready /
//!   woken N times / waker released;
//! * [`conformance`]: every behaviour of ctx-core's API as a check that takes a
//!   [`Runtime`](conformance::Runtime), and [`conformance_suite!`] to run them all as tests;
//! * [`group`]: the checks of an adapter's errgroup (`Group`), run by [`group_suite!`];
//! * [`assert_reexports!`]: an adapter re-exports ctx-core's API, checked at compile time;
//! * `signal` (Unix): the checks of an adapter's `signal::shutdown` with real signals sent to
//!   a child process, run by `signal_suite!`.
//!
//! # Examples
//!
//! A handler that must give up after 5 s, tested in microseconds:
//!
//! ```
//! use std::time::Duration;
//! use ctx_core::{Ctx, Error};
//! use ctx_testkit::{MockClock, Probe};
//!
//! /// Waits for a reply that never comes, for at most 5 s.
//! async fn handler(ctx: &Ctx) -> Result<&'static str, Error> {
//!     let (ctx, _cancel) = ctx.with_timeout(Duration::from_secs(5));
//!     ctx.run(std::future::pending()).await
//! }
//!
//! let clock = MockClock::new();
//! let root = clock.background();
//! let mut call = Probe::new(async move { handler(&root).await });
//! call.assert_pending();
//!
//! clock.advance(Duration::from_millis(4999));
//! call.assert_pending(); // not a nanosecond early
//! clock.advance(Duration::from_millis(1));
//! assert_eq!(call.woken(), 1);
//! assert_eq!(call.assert_ready(), Err(Error::DeadlineExceeded));
//! ```
//!
//! The same with a real executor: spawn the handler anywhere (tokio, smol, a thread), advance
//! the clock from the test, and the handler's task is woken.
//!
//! # Where next
//!
//! * The code under test takes a `&Ctx` from [`ctx_core`]; its docs have [the table of
//!   adapters](ctx_core#choosing-a-root) (a `MockClock` root stands in for any of them).
//! * The guide (`docs/guide.md` in the source repository) has a chapter on testing with
//!   `MockClock`; [`conformance`] explains how an adapter runs the suite.
//!
//! # Features
//!
//! None. The crate has no runtime of its own; `MockRuntime` and `SystemRuntime` use
//! `futures::executor`.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88; CI builds every crate and test with it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod conformance;
pub mod group;
mod mock;
mod passthrough;
mod poll;
mod reexports;
mod self_waking;
#[cfg(unix)]
#[cfg_attr(docsrs, doc(cfg(unix)))]
pub mod signal;

#[doc(inline)]
pub use crate::mock::MockClock;
#[doc(inline)]
pub use crate::passthrough::Passthrough;
#[doc(inline)]
pub use crate::poll::Probe;
#[doc(inline)]
pub use crate::self_waking::SelfWaking;

/// What the macros of this crate name from their expansion site.
#[doc(hidden)]
pub mod __private {
    pub use ctx_core;
}

/// The README's examples, compiled and run by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
