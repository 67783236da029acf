//! Go's `context` for Rust: cancellation that flows down a tree of tasks, deadlines and
//! timeouts, cancel causes, after-functions and request-scoped values — with no async runtime.
//!
//! This crate provides:
//!
//! * [`Ctx`], the context handle: cheap to clone, `Send + Sync + 'static`;
//! * derivations — [`with_cancel`](Ctx::with_cancel), [`with_cancel_cause`](Ctx::with_cancel_cause),
//!   [`with_deadline`](Ctx::with_deadline), [`with_timeout`](Ctx::with_timeout) (and their
//!   `_cause` forms), [`with_value`](Ctx::with_value), [`without_cancel`](Ctx::without_cancel),
//!   [`with_deadline_cancel_cause`](Ctx::with_deadline_cancel_cause) and
//!   [`with_timeout_cancel_cause`](Ctx::with_timeout_cancel_cause) (a deadline and a cancel
//!   cause in one node), [`with_merged`](Ctx::with_merged) (a child of two parents),
//!   [`with_grace`](Ctx::with_grace) (done a grace period after its parent: a drain),
//!   [`with_idle_timeout`](Ctx::with_idle_timeout) (done when idle; its [`IdleHandle`]
//!   `touch()`es it), [`after_func`](Ctx::after_func);
//! * observers — [`err`](Ctx::err), [`cause`](Ctx::cause), [`deadline`](Ctx::deadline),
//!   [`value`](Ctx::value), the [`Done`] future, [`run`](Ctx::run),
//!   [`run_timeout`](Ctx::run_timeout),
//!   [`run_stream`](Ctx::run_stream) and the thread-blocking [`wait_blocking`](Ctx::wait_blocking);
//! * sleeping on the context's clock, cut short when it is done — [`sleep`](Ctx::sleep),
//!   [`sleep_until`](Ctx::sleep_until) (the [`Sleep`] future) and
//!   [`sleep_blocking`](Ctx::sleep_blocking);
//! * [`Error`] (`Canceled`, `DeadlineExceeded`), [`Cause`] and [`HandleDropped`] (the cause of a
//!   context whose last cancel handle was dropped);
//! * the [`Context`] trait for contexts of your own ([`Forward`] for one that wraps a `Ctx`
//!   and changes one method), and [`Clock`] for runtime adapters.
//!
//! # Usage
//!
//! Create one root per program or per server ([`Ctx::background`], or the `background()` of
//! your runtime's adapter crate: `ctx-tokio`, `ctx-smol`, `ctx-async-std`). For each unit of
//! work (a request, a job), derive a child with a deadline or a cancel handle and pass it — by
//! reference or clone — as the first argument of everything that works on behalf of that unit.
//! Long-running code checks [`is_done`](Ctx::is_done) in its loops, or races its futures
//! against [`done()`](Ctx::done) (or simply wraps them in [`run`](Ctx::run)).
//!
//! The rules are Go's:
//!
//! * when a context is done, all its descendants are done, with the same error and cause;
//! * canceling a child never affects its parent or siblings;
//! * a child's deadline is the earlier of its own and its parent's;
//! * the first cancel wins; afterwards `err()` and `cause()` never change.
//!
//! And Rust's: dropping the last [`CancelHandle`] cancels (Go's `defer cancel()`, done by the
//! compiler), and a child that is dropped releases everything it took from its parent, canceled
//! or not (Go leaks it until the parent is done).
//!
//! # Examples
//!
//! Library code takes the caller's context; the application makes the root and picks the
//! executor (here `futures::executor::block_on`, from the `futures` crate: ctx-core needs no
//! runtime).
//!
//! ```
//! use std::time::Duration;
//! use ctx_core::{Ctx, Error};
//!
//! /// Library code: gives up as soon as the caller's context is done.
//! async fn fetch(ctx: &Ctx, id: u32) -> Result<String, Error> {
//!     ctx.run(async move { format!("item {id}") }).await
//! }
//!
//! fn main() {
//!     futures::executor::block_on(async {
//!         let (request, cancel) = Ctx::background().with_timeout(Duration::from_secs(5));
//!         assert_eq!(fetch(&request, 1).await.as_deref(), Ok("item 1"));
//!
//!         cancel.cancel(); // the client went away
//!         assert_eq!(fetch(&request, 2).await, Err(Error::Canceled));
//!     });
//! }
//! ```
//!
//! # Choosing a root
//!
//! Every root carries its clock, and every context derived from it uses that clock. Make one
//! root in `main` (or per server), with the crate of your runtime; everything else is this
//! crate's API, which each adapter re-exports.
//!
//! | you run on | crate | root |
//! | --- | --- | --- |
//! | tokio | [`ctx-tokio`](https://docs.rs/ctx-tokio) | `ctx_tokio::background()`: tokio's timers, honours `tokio::time::pause`; also `spawn`, `Group` (Go's errgroup) and `CancellationToken` interop |
//! | smol | [`ctx-smol`](https://docs.rs/ctx-smol) | `ctx_smol::background()`: async-io's timers; also `spawn` and `Group` (Go's errgroup) |
//! | async-std | [`ctx-async-std`](https://docs.rs/ctx-async-std) | `ctx_async_std::background()` (async-std is discontinued upstream: prefer smol) |
//! | threads, any other executor | this crate | [`Ctx::background()`]: the system clock, one timer thread per process |
//! | tests | [`ctx-testkit`](https://docs.rs/ctx-testkit) | `MockClock::new().background()`: time moves only when the test says so |
//!
//! Libraries depend on `ctx-core` alone, take `&Ctx`, never make roots of their own, and
//! return [`Error`] (or an error that wraps it), so that the application's runtime, deadline
//! and cancellation reach them.
//!
//! # Where next
//!
//! * The guide (`docs/guide.md` in the source repository) walks through the tree, deadlines,
//!   causes, values, after-funcs, contexts of your own, testing and blocking code;
//!   `docs/go-migration.md` maps every name of Go's `context` package to this crate, and
//!   `docs/patterns.md` has recipes (server shutdown, retries under one deadline, `select!`).
//! * [`ctx-testkit`](https://docs.rs/ctx-testkit): `MockClock`, to test code that takes a
//!   `&Ctx` without waiting for real deadlines, and the conformance suite for new adapters.
//! * [`clock`]: how to write an adapter for another runtime.
//!
//! # Features
//!
//! * `test-util` (off): test-only counters and hooks in `ctx_core::test_util` (live nodes,
//!   armed timers, started watchers and after-func threads; `done_inline` for foreign `done()`
//!   futures that start no thread). The counters tax every derivation; never enable it in
//!   production.
//! * `tracing` (off): one [`tracing`](https://docs.rs/tracing) event at `DEBUG` level, target
//!   `ctx_core`, for each context canceled for its own reason — by a handle, by the drop of its
//!   last handle, or by its own deadline — and none for the descendants that go with it. It is
//!   emitted on the thread that canceled, after every lock is released, with the fields `ctx`
//!   (the context's `Display`), `err`, `cause`, `at` (`"file:line:col"` of the `cancel()` call,
//!   or of the `with_*` call that made the handle when its last clone was dropped or its
//!   deadline passed) and `descendants` (how many contexts that can be canceled were canceled
//!   with it, wraps of custom contexts that follow them included). Without the feature there
//!   is no `tracing` dependency and no cost. See the guide's section "Who canceled this
//!   context?".
//!
//! # Supported Rust versions
//!
//! The minimum supported Rust version is 1.88; CI builds every crate and test with it.
//!
//! # Unsafe code
//!
//! A context holds its root's clock by an uncounted pointer, so that deriving contexts from one
//! root on many threads writes no shared cache line. That pointer is the first of the crate's
//! five pieces of `unsafe` code: a private module of `clock.rs`, whose safety argument is written
//! there and holds whatever safe code outside it does (the pointer cannot be copied without
//! `unsafe`), and the one place that copies it, the node constructor in `tree/node.rs`, which
//! keeps the parent it copies from. The second is `tree/thin.rs`, which keeps a value node's
//! value inside its node behind a one-word pointer (its argument, too, holds in that file
//! alone); the third, `tree/packed.rs`, which keeps what a cancel node's lock guards (nothing, a
//! first child, a first waiter's `Waker`, the dependents part, a cause) in two words, so that a
//! context one task waits on allocates nothing more (argued in that file alone); the fourth,
//! `tree/arc.rs`, the engine's own `Arc` and `Weak`, which spare a cancel node atomic
//! read-modify-writes of std's (the handle's count at birth, the weak count at the end, a
//! walk's `Weak` of each child, the parent's `Weak` a leaving child takes back; both counts in
//! one word; argued in that file alone); the fifth, one call into `libc` in `clock::coarse` (a
//! read of the kernel's coarse clock, on Linux). The crate denies `unsafe` everywhere else, and its tests
//! run under Miri.
// `unsafe` is allowed in six places only: `clock::shared` (the clock pointer),
// `tree/node.rs` (its copies, for a child that holds its parent: `Parent::with_clock`,
// `clock_below`), `tree/thin.rs` (a value node's one allocation), `tree/packed.rs` (a cancel
// node's guarded part in two words), `tree/arc.rs` (a node's counts) and `clock::coarse` (the
// `clock_gettime` call).
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules, in layers: each imports only from the layers above it, so no two import each
// other (`tests/layering.rs` fails on any cycle).
//
// 1. `error`, `clock`, `loom`: leaves.
// 2. `after_threads` (the threads that run timer-fired after-funcs; defines their type, `AfterFn`),
//    `watcher` (a task polling one future: timers, foreign `done()`s; uses `after_threads`).
// 3. `tree`: the engine. It works on `NodeRef` and `Arc<Node>`, never on `Ctx`, `Context` or
//    `Done`; a context it does not own is a `tree::Foreign`. The `tracing` feature's event is
//    `tree/trace.rs`: it reads what it reports from a node, and only the engine cancels.
// 4. `done` (the `Done` future, on the engine's nodes), then `custom` (the `Context` trait).
// 5. `wrap`: `Ctx::wrap`'s construction. It reads the user's `Context` once and builds the wrap
//    from the engine's parts.
// 6. `handle`, `after`: what `with_*` and `after_func` return, built from a `NodeRef`;
//    `run_timeout` (`RunTimeout`: a `Run` and the handle of its child); `idle` (`IdleHandle`,
//    a `CancelHandle` that can also `touch`).
// 7. `ctx`: the handle `Ctx`. It holds what the engine returns and never matches on a node's
//    kind.
// 8. `sleep` (`Sleep`, and the `Ctx::sleep*` methods that make it), `forward` (`Forward`: a
//    `Context` that answers from a `Ctx` but for the methods it overrides), `test_util`.
mod after;
mod after_threads;
pub mod clock;
mod ctx;
mod custom;
mod done;
mod error;
mod forward;
mod handle;
mod idle;
mod loom;
mod run_timeout;
mod sleep;
mod tree;
mod watcher;
mod wrap;

#[cfg(test)]
mod tests;

#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod test_util;

#[doc(inline)]
pub use crate::after::AfterFunc;
#[doc(inline)]
pub use crate::clock::Clock;
#[doc(inline)]
pub use crate::ctx::Ctx;
#[doc(inline)]
pub use crate::custom::Context;
#[doc(inline)]
pub use crate::done::{Done, Run, RunStream};
#[doc(inline)]
pub use crate::error::{Cause, Error, HandleDropped};
#[doc(inline)]
pub use crate::forward::Forward;
#[doc(inline)]
pub use crate::handle::{CancelCauseHandle, CancelHandle};
#[doc(inline)]
pub use crate::idle::IdleHandle;
#[doc(inline)]
pub use crate::run_timeout::RunTimeout;
#[doc(inline)]
pub use crate::sleep::Sleep;

/// The README's examples, compiled and run by `cargo test --doc`.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
