//! Test-only counters and hooks, behind the `test-util` feature. The counters are global and
//! relaxed: read them only in tests that run alone (or compare before/after around work that
//! nothing else does).

use std::future::Future;
use std::sync::atomic::Ordering::Relaxed;

use crate::{Done, Error};

use crate::tree::counters;

/// Nodes (contexts of every kind) currently alive in this process, not counting the
/// process-wide `Ctx::background()`/`Ctx::todo()`.
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, test_util::live_nodes};
/// let before = live_nodes();
/// let ctx = Ctx::background().with_value(1u8);
/// assert!(live_nodes() >= 1);
/// drop(ctx);
/// # let _ = before;
/// ```
pub fn live_nodes() -> usize {
    counters::LIVE_NODES.load(Relaxed)
}

/// Deadline timers armed so far (each armed timer counts once, fired or not).
///
/// # Examples
///
/// ```
/// let _ = ctx_core::test_util::timers_armed();
/// ```
pub fn timers_armed() -> usize {
    counters::TIMERS_ARMED.load(Relaxed)
}

/// Nodes looked at so far on the way from a waited-on context to the node that owns its
/// deadline (where the timer is armed). Stays linear in the number of contexts waited on,
/// however deep the chain.
///
/// # Examples
///
/// ```
/// let _ = ctx_core::test_util::deadline_owner_steps();
/// ```
pub fn deadline_owner_steps() -> usize {
    counters::OWNER_STEPS.load(Relaxed)
}

/// Watchers started so far for foreign `done()` futures by `Ctx::wrap`.
///
/// # Examples
///
/// ```
/// let _ = ctx_core::test_util::watchers_started();
/// ```
pub fn watchers_started() -> usize {
    counters::WATCHERS.load(Relaxed)
}

/// Threads of ctx-core's after-func pool alive now: running an after-func fired by a timer or
/// by the watcher thread, or idle (an idle one exits after a few seconds). A test that must
/// end with no thread of ours alive (under Miri) waits for this to reach zero.
///
/// # Examples
///
/// ```
/// let _ = ctx_core::test_util::after_func_threads();
/// ```
#[cfg(not(loom))]
pub fn after_func_threads() -> usize {
    crate::after_threads::threads()
}

/// A [`Done`] backed by `fut` that [`Ctx::wrap`](crate::Ctx::wrap) re-polls inline, inside
/// the future's wake, instead of on ctx-core's watcher thread: so a test of a foreign context
/// starts no thread (Miri reports a thread still running at exit).
///
/// The caller promises that `fut`'s waker is never called while the waking thread holds a lock
/// that `fut`'s own `poll`, or code reacting to the cancel (wakers of derived contexts), might
/// take; `futures`' oneshot channel keeps it. Breaking it cannot cause undefined behaviour, but
/// it can deadlock the waking thread. Not part of the public API: [`Done::new`] is.
///
/// # Examples
///
/// ```
/// use ctx_core::{Error, test_util::done_inline};
/// # futures::executor::block_on(async {
/// let (tx, rx) = futures::channel::oneshot::channel::<()>();
/// let done = done_inline(async move {
///     let _ = rx.await;
///     Error::Canceled
/// });
/// tx.send(()).unwrap();
/// assert_eq!(done.await, Error::Canceled);
/// # });
/// ```
pub fn done_inline(fut: impl Future<Output = Error> + Send + 'static) -> Done {
    Done::new_inline(fut)
}
