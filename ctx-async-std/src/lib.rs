//! ctx (Go's `context` for Rust) on [async-std](https://docs.rs/async-std): roots whose
//! deadlines are fired by async-std's timer driver, the async-io reactor.
//!
//! **async-std is discontinued upstream** in favour of [smol](https://docs.rs/smol); new code
//! should use `ctx-smol`. This crate stays, thin, for code that still runs on async-std: both
//! runtimes take their timers from the same async-io reactor, so its clock ([`AsyncIoClock`])
//! is ctx-smol's clock, without smol.
//!
//! This crate provides:
//!
//! * everything of `ctx-core`, re-exported ([`Ctx`], [`Error`], [`Context`], [`Done`], …);
//! * [`background()`] and [`todo()`]: roots whose timers are async-io timers, as async-std's;
//! * [`AsyncIoClock`], the [`Clock`] behind them;
//! * [`spawn`]: `async_std::task::spawn` of a future that stops when a context is done, and
//!   [`spawn_try`] for a fallible future (its `Result<T, E>`, not `Ok(Ok(..))`).
//!
//! It has no `Group` (Go's errgroup) of its own: see [below](#an-errgroup).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use ctx_async_std::Error;
//! use futures::FutureExt;
//!
//! async_std::task::block_on(async {
//!     let (ctx, _cancel) = ctx_async_std::background().with_timeout(Duration::from_millis(20));
//!     futures::select! {
//!         err = ctx.done().fuse() => assert_eq!(err, Error::DeadlineExceeded),
//!         _ = async_std::task::sleep(Duration::from_secs(10)).fuse() => unreachable!(),
//!     }
//!     // Or let `run` do the racing: the future is dropped when the context is done.
//!     let work = async_std::task::sleep(Duration::from_secs(10));
//!     assert_eq!(ctx.run(work).await, Err(Error::DeadlineExceeded));
//! });
//! ```
//!
//! # An errgroup
//!
//! This crate has no `Group` (Go's errgroup) of its own: use `ctx-smol`'s ([`ctx_smol::Group`]),
//! which works from async-std code. Its tasks run on smol's global executor, beside async-std's
//! (one more thread, `SMOL_THREADS`), and may await async-std's timers, channels and I/O, all
//! driven by the same async-io reactor; the group's parent may be a context of this crate.
//! Depending on `ctx-smol` brings smol with it, which is why this crate does not.
//!
//! ```
//! use std::time::Duration;
//! # async_std::task::block_on(async {
//! let (group, ctx) = ctx_smol::Group::new(&ctx_async_std::background());
//! group.spawn(async move {
//!     let slept = ctx.run(async_std::task::sleep(Duration::from_secs(60))).await;
//!     assert_eq!(slept, Err(ctx_async_std::Error::Canceled)); // the sibling failed
//!     Ok::<(), std::io::Error>(())
//! });
//! group.spawn(async { Err(std::io::Error::other("shard 3 is down")) });
//! assert_eq!(group.wait().await.unwrap_err().to_string(), "shard 3 is down");
//! # });
//! ```
//!
//! [`ctx_smol::Group`]: https://docs.rs/ctx-smol/latest/ctx_smol/struct.Group.html
//!
//! # Outside the runtime
//!
//! [`background()`] may be called inside or outside async-std's executor. The async-io reactor
//! fires timers from a thread of its own when no executor drives it, so deadlines pass with
//! nobody polling (after-funcs run, `err()` turns to [`Error::DeadlineExceeded`]) and
//! [`Ctx::wait_blocking`] works on a plain thread. An after-func fired by a deadline runs on
//! ctx-core's after-func threads, not on the thread driving the reactor, so it may block.
//!
//! # Precision
//!
//! Deadlines may fire late (by the reactor's scheduling latency), never early. A timer is armed
//! only for a deadline that something waits for, and released as soon as its context is
//! canceled or dropped.
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
mod task;

#[doc(inline)]
pub use crate::async_io_clock::{AsyncIoClock, background, todo};
#[doc(inline)]
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
