//! ctx (Go's `context` for Rust) on [smol](https://docs.rs/smol): roots whose deadlines are
//! fired by the async-io reactor, the timer driver of smol and async-std.
//!
//! This crate provides:
//!
//! * everything of `ctx-core`, re-exported ([`Ctx`], [`Error`], [`Context`], [`Done`], …);
//! * [`background()`] and [`todo()`]: roots whose timers are [`async_io::Timer`]s;
//! * [`AsyncIoClock`], the [`Clock`] behind them, for building roots by hand
//!   ([`Ctx::background_with_clock`]);
//! * [`spawn`]: `smol::spawn` of a future that stops when a context is done, and [`spawn_try`]
//!   for a fallible future (its `Result<T, E>`, not `Ok(Ok(..))`);
//! * [`Group`]: Go's errgroup on smol's global executor — tasks that share a context, the
//!   first error cancels the rest;
//! * [`signal::shutdown`]: a context canceled by the first SIGINT or SIGTERM (Go's
//!   `signal.NotifyContext`); a second one ends the process.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ctx_smol::Error;
//! use futures::FutureExt;
//!
//! smol::block_on(async {
//!     let (ctx, _cancel) = ctx_smol::background().with_timeout(Duration::from_millis(20));
//!     let slow = smol::Timer::after(Duration::from_secs(10));
//!     futures::select! {
//!         err = ctx.done().fuse() => assert_eq!(err, Error::DeadlineExceeded),
//!         _ = slow.fuse() => unreachable!("the deadline comes first"),
//!     }
//!     // Or let `run` do the racing: the future is dropped when the context is done.
//!     let work = smol::Timer::after(Duration::from_secs(10));
//!     assert_eq!(ctx.run(work).await.map(drop), Err(Error::DeadlineExceeded));
//! });
//! ```
//!
//! # Executors
//!
//! Any executor works: `smol::block_on`, [`async_executor::Executor`], `futures`' executors,
//! or none at all. async-io starts one reactor thread of its own (named `async-io`) the first
//! time a timer is created, and that thread fires timers when no `block_on` is driving the
//! reactor. So [`background()`] may be called inside or outside an executor, a deadline fires
//! with nobody polling the context (after-funcs run, `err()` turns to
//! [`Error::DeadlineExceeded`]), and [`Ctx::wait_blocking`] works on a plain thread.
//!
//! [`async_executor::Executor`]: https://docs.rs/async-executor
//!
//! # Where after-funcs run
//!
//! An after-func of a context canceled by a call of yours runs inline, on your thread. One
//! fired by a deadline does not run on the thread driving the async-io reactor (the `async-io`
//! thread or a `block_on` caller): ctx-core hands it to after-func threads of its own, so it
//! may block without stalling the reactor (see `Ctx::after_func`, "Where `f` runs").
//!
//! # Precision
//!
//! Deadlines may fire late (by the reactor's scheduling latency), never early: ctx-core re-reads
//! the clock before it declares a deadline exceeded. A timer is armed only for a deadline that
//! something waits for (a `done()` poll, `run`, `wait_blocking`, an after-func), and released
//! as soon as its context is canceled or dropped.
//!
//! # Where next
//!
//! * [The table of adapters](ctx_core#choosing-a-root) in ctx-core's docs, and the API of every
//!   re-exported item.
//! * The guide (`docs/guide.md` in the source repository) walks through the whole model.
//! * [`ctx-testkit`](https://docs.rs/ctx-testkit): `MockClock`, to test code that takes a
//!   `&Ctx` on any executor without real waiting.
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88; CI builds every crate and test with it.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![doc(test(attr(deny(warnings))))]

mod async_io_clock;
mod group;
#[cfg(any(unix, windows))]
pub mod signal;
mod task;

#[doc(inline)]
pub use crate::async_io_clock::{AsyncIoClock, background, todo};
#[doc(inline)]
pub use crate::group::Group;
pub use crate::task::{spawn, spawn_try};
#[doc(inline)]
pub use ctx_core::{
    AfterFunc, CancelCauseHandle, CancelHandle, Cause, Clock, Context, Ctx, Done, Error, Forward,
    HandleDropped, IdleHandle, Run, RunStream, RunTimeout, Sleep, clock,
};

/// The README's examples, compiled and run by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
