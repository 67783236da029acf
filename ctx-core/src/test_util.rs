//! Test-only counters, behind the `test-util` feature. Global and relaxed: read them only in
//! tests that run alone (or compare before/after around work that nothing else does).

use std::sync::atomic::Ordering::Relaxed;

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
    crate::pool::threads()
}
