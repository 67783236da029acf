//! A waker that counts its wakes and its live clones, for the tests that count what the tree
//! holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Wake, Waker};

/// A waker that counts its wakes; its live clones are its `Arc`'s strong count less one.
pub(crate) struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// A counting waker and its count.
pub(crate) fn counting() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    (count, waker)
}

/// How many times it was woken.
pub(crate) fn woken(count: &Count) -> usize {
    count.0.load(Ordering::Relaxed)
}

/// The clones alive besides `count` itself and the test's `waker`.
pub(crate) fn held(count: &Arc<Count>) -> usize {
    Arc::strong_count(count) - 2
}
