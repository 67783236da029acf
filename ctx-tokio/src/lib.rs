//! ctx (Go's `context` for Rust) on [tokio](https://docs.rs/tokio): roots whose time and timers
//! are tokio's, so `tokio::time::pause` and `advance` drive deadlines.
//!
//! This crate provides:
//!
//! * everything of `ctx-core`, re-exported ([`Ctx`], [`Error`], [`Context`], [`Done`], …);
//! * [`background()`] and [`todo()`] (and [`try_background()`]): roots on the current tokio
//!   runtime's clock;
//! * [`TokioClock`], the [`Clock`] behind them;
//! * [`spawn`]: `tokio::spawn` of a future that stops when a context is done, whose
//!   [`JoinHandle`] gives its `Result<T, Error>` with no `JoinError` around it, and
//!   [`spawn_try`] for a fallible future (`Result<T, E>`, not `Ok(Ok(..))`);
//! * [`Group`]: Go's errgroup — tasks that share a context, the first error cancels the rest;
//! * [`signal::shutdown`]: a context canceled by the first SIGINT or SIGTERM (Go's
//!   `signal.NotifyContext`); a second one ends the process;
//! * interop with tokio-util's [`CancellationToken`] both ways:
//!   [`CtxExt::to_cancellation_token`] and [`from_token`].
//!
//! [`CancellationToken`]: tokio_util::sync::CancellationToken
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ctx_tokio::Error;
//!
//! #[tokio::main]
//! async fn main() {
//!     let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(20));
//!     tokio::select! {
//!         err = ctx.done() => assert_eq!(err, Error::DeadlineExceeded),
//!         _ = tokio::time::sleep(Duration::from_secs(10)) => unreachable!("the deadline comes first"),
//!     }
//!     // Or let `run` do the racing: the future is dropped when the context is done.
//!     let work = tokio::time::sleep(Duration::from_secs(10));
//!     assert_eq!(ctx.run(work).await, Err(Error::DeadlineExceeded));
//! }
//! ```
//!
//! With paused time (tokio's `test-util` feature), deadlines pass without any real waiting:
//!
//! ```
//! use std::time::Duration;
//!
//! #[tokio::main(flavor = "current_thread", start_paused = true)]
//! async fn main() {
//!     let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(3600));
//!     tokio::time::advance(Duration::from_secs(3600)).await;
//!     assert_eq!(ctx.err(), Some(ctx_tokio::Error::DeadlineExceeded));
//! }
//! ```
//!
//! # Coming from tokio-util's `CancellationToken`
//!
//! A [`Ctx`] is a cancellation token that also carries a deadline, a cause and values, and
//! whose cancel right is a separate handle. The names map as follows (each is also a search
//! alias in these docs):
//!
//! | tokio-util | ctx |
//! | --- | --- |
//! | `CancellationToken::new()` | [`background()`]`.with_cancel()` → `(Ctx, CancelHandle)` |
//! | `token.child_token()` | [`ctx.with_cancel()`](Ctx::with_cancel) |
//! | `token.cancel()` | [`cancel.cancel()`](CancelHandle::cancel), on the handle |
//! | `token.is_cancelled()` | [`ctx.is_done()`](Ctx::is_done) |
//! | `token.cancelled()`, `cancelled_owned()` | [`ctx.done()`](Ctx::done): owned, `'static + Send`, yields the [`Error`] |
//! | `token.run_until_cancelled(fut)` | [`ctx.run(fut)`](Ctx::run) → `Result<T, Error>` |
//! | `token.drop_guard()`, `DropGuard::disarm` | [`CancelHandle`] itself: dropping the last clone cancels; [`disarm`](CancelHandle::disarm) |
//! | a token shared with tokio-util code | [`CtxExt::to_cancellation_token`], [`from_token`] |
//!
//! # Where next
//!
//! * [The table of adapters](ctx_core#choosing-a-root) in ctx-core's docs, and the API of every
//!   re-exported item.
//! * The guide (`docs/guide.md` in the source repository) walks through the whole model;
//!   `docs/patterns.md` has tokio recipes (server shutdown, request contexts, `select!` loops).
//! * [`ctx-testkit`](https://docs.rs/ctx-testkit): `MockClock`, to test code that takes a
//!   `&Ctx` on any executor without real waiting (paused tokio time works too, as above).
//!
//! # Outside the runtime
//!
//! [`background()`] must be called inside a tokio runtime (in a task, in `block_on`, or with
//! `Runtime::enter`): it captures that runtime's [`Handle`](tokio::runtime::Handle) and panics
//! with a message naming tokio otherwise; [`try_background()`] returns an error instead. Once
//! made, the contexts work from any thread: the clock enters the captured runtime whenever it
//! creates a timer, or reads a pausable time (a current-thread runtime's, with tokio's
//! `test-util`) from a thread outside that runtime; and ctx-core polls the timer inline on
//! whichever thread wakes it, so [`Ctx::wait_blocking`] on a plain thread and after-funcs work
//! with nobody polling. The runtime needs its time driver (`enable_time`, on
//! by default in `#[tokio::main]` and `#[tokio::test]`): see [`TokioClock`]'s requirements.
//! When the runtime shuts down, its pending timers move to ctx-core's system timer thread
//! before tokio could refuse to poll them, so deadlines still fire (unless the runtime's time
//! was paused: then it stays frozen, and so do deadlines past it). No path catches a panic:
//! all of this holds with `panic = "abort"`.
//!
//! Timers fire while the runtime's driver runs: always on a multi-thread runtime, but on a
//! `current_thread` runtime only while some thread is inside its `block_on`.
//!
//! # Where after-funcs run
//!
//! An after-func of a context canceled by a call of yours runs inline, on your thread. One
//! fired by a deadline does not run on tokio's driver: ctx-core hands it to after-func threads
//! of its own, so it may block without stalling the runtime or other deadlines (see
//! `Ctx::after_func`, "Where `f` runs"). It may call `Handle::spawn`, not `tokio::spawn`: it is
//! not on a runtime thread.
//!
//! # Precision
//!
//! Deadlines may fire late (tokio's timer wheel has millisecond granularity, and the driver
//! may be busy), never early: ctx-core re-reads the clock before it declares a deadline
//! exceeded. A timer is armed only for a deadline that something waits for (a `done()` poll,
//! `run`, `wait_blocking`, an after-func), and released as soon as its context is canceled or
//! dropped.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88; CI builds every crate and test with it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod group;
#[cfg(any(unix, windows))]
pub mod signal;
mod task;
mod token;
mod tokio_clock;

#[doc(inline)]
pub use crate::group::Group;
#[doc(inline)]
pub use crate::task::{JoinHandle, spawn, spawn_try};
#[doc(inline)]
pub use crate::token::{CtxExt, from_token};
#[doc(inline)]
pub use crate::tokio_clock::{TokioClock, background, todo, try_background};
#[doc(inline)]
pub use ctx_core::{
    AfterFunc, CancelCauseHandle, CancelHandle, Cause, Clock, Context, Ctx, Done, Error, Forward,
    HandleDropped, IdleHandle, Run, RunStream, RunTimeout, Sleep, clock,
};

/// The README's examples, compiled and run by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
