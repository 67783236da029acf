//! The synchronization primitives of ctx-core, swapped for loom's under `cfg(loom)` so that the
//! lock/atomic protocol in `tree/`, `done.rs` and `watcher.rs` can be model-checked.
//!
//! A node's counts (`tree/arc.rs`) stay std's atomics in both builds: the process-wide roots
//! are statics whose counts would outlive loom's executions, and reference counting is not the
//! protocol under test (that module's threaded tests run under Miri instead).

#[cfg(not(loom))]
pub(crate) use std::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};

#[cfg(loom)]
pub(crate) use loom::sync::{
    Mutex, MutexGuard,
    atomic::{AtomicPtr, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering, fence},
};

/// Locks `m`, ignoring poison: no code of ours panics while holding one of our locks (user
/// code never runs under a lock), so a poisoned lock still guards a consistent state.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(all(test, not(loom)))]
    note_lock();
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(all(test, not(loom)))]
thread_local! {
    /// How many locks this thread has taken with [`lock`] (unit tests of which paths lock).
    static LOCKS_TAKEN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Counts a lock taken by this thread (with [`lock`], or a cancel node's own).
#[cfg(all(test, not(loom)))]
pub(crate) fn note_lock() {
    LOCKS_TAKEN.with(|n| n.set(n.get() + 1));
}

/// How many locks this thread has taken with [`lock`] so far.
#[cfg(all(test, not(loom)))]
pub(crate) fn locks_taken() -> usize {
    LOCKS_TAKEN.with(std::cell::Cell::get)
}
