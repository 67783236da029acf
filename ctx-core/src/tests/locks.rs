//! What must not wait for a node's lock: the cancel walk marking a node that nothing has
//! depended on (invariant 10 of `tree`, as for the node it starts from), and what is left to do
//! on a node that is done (its dependents were given away when it was marked: invariant 3).

use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context, Waker};
use std::time::Duration;

use crate::loom::locks_taken;
use crate::tree::{child_count, hold_lock};
use crate::{Ctx, Error};

/// Runs `op` on a thread while this one holds `held`'s lock; whether it finished within a
/// bound far above what it takes (an `op` that waits for the lock never does: the watchdog
/// fails the test, then lets the lock go so that the thread ends).
fn finishes_while_locked(held: &Ctx, op: impl FnOnce() + Send + 'static) -> bool {
    let guard = hold_lock(&held.node);
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        op();
        let _ = tx.send(());
    });
    let finished = rx.recv_timeout(Duration::from_secs(30)).is_ok();
    drop(guard);
    t.join().unwrap();
    finished
}

#[test]
fn a_leaf_child_is_marked_without_its_lock() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (child, _h) = parent.with_cancel();
    let sibling = uncanceled_chain(&parent, 1);
    assert!(
        finishes_while_locked(&child, move || cancel.cancel()),
        "the walk waited for the leaf's lock"
    );
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(
        child.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
    assert_eq!(sibling.err(), Some(Error::Canceled));
}

#[test]
fn the_end_of_a_chain_is_marked_without_its_lock() {
    let (root, cancel) = Ctx::background().with_cancel();
    let (mid, _m) = root.with_cancel();
    let (leaf, _l) = mid.with_cancel();
    assert!(
        finishes_while_locked(&leaf, move || cancel.cancel()),
        "the walk waited for the leaf's lock"
    );
    assert_eq!(mid.err(), Some(Error::Canceled));
    assert_eq!(leaf.err(), Some(Error::Canceled));
}

/// A cause must be published under the lock (invariant 2): a walk with one marks even a leaf
/// under it, and the leaf reports the cause.
#[test]
fn a_walk_with_a_cause_still_publishes_it_to_a_leaf() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (child, _h) = parent.with_cancel();
    cancel.cancel(std::fmt::Error);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(child.cause().unwrap().is::<std::fmt::Error>());
}

/// A `Done` polled before its context was canceled and dropped after, without being polled
/// again: its waker went with the cancel, there is nothing to unregister.
#[test]
fn a_done_dropped_after_the_cancel_takes_no_lock() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut done = ctx.done();
    assert!(
        Pin::new(&mut done)
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    cancel.cancel();
    assert!(
        finishes_while_locked(&ctx, move || drop(done)),
        "the drop waited for the lock"
    );
}

/// An after-func stopped once its context is done: it was taken by the cancel (and has run),
/// so `stop` says `false` without asking the node's lock.
#[test]
fn an_after_func_stopped_after_the_cancel_takes_no_lock() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let stop = ctx.after_func(|| {});
    cancel.cancel();
    let (tx, rx) = mpsc::channel();
    assert!(
        finishes_while_locked(&ctx, move || tx.send(stop.stop()).unwrap()),
        "stop waited for the lock"
    );
    assert!(!rx.recv().unwrap(), "an after-func that ran was reported stopped");
}

/// A `Done` re-polled by the task whose waker it registered (a `select!` loop) changes nothing:
/// it answers `Pending` without the lock, and a later cancel still wakes that waker, once.
#[test]
fn a_done_re_polled_by_the_same_task_takes_no_lock() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let (ctx, cancel) = Ctx::background().with_cancel();
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    let mut done = ctx.done();
    let poll = |done: &mut crate::Done, waker: &Waker| Pin::new(done).poll(&mut Context::from_waker(waker));
    assert!(poll(&mut done, &waker).is_pending());
    let (tx, rx) = mpsc::channel();
    assert!(
        finishes_while_locked(&ctx, move || {
            let pending = (0..3).all(|_| poll(&mut done, &waker).is_pending());
            tx.send((pending, done, waker)).unwrap();
        }),
        "the re-poll waited for the lock"
    );
    let (pending, mut done, waker) = rx.recv().unwrap();
    assert!(pending);
    cancel.cancel();
    assert_eq!(
        count.0.load(Ordering::SeqCst),
        1,
        "the registered waker was woken, once"
    );
    assert_eq!(poll(&mut done, &waker), std::task::Poll::Ready(Error::Canceled));
}

/// Go's `buildContextTree`: a chain of `depth` cancel children of `root`, handles disarmed.
fn uncanceled_chain(root: &Ctx, depth: usize) -> Ctx {
    let mut leaf = root.clone();
    for _ in 0..depth {
        let (child, cancel) = leaf.with_cancel();
        cancel.disarm();
        leaf = child;
    }
    leaf
}

/// How many locks this thread takes while dropping `ctx`.
fn locks_to_drop(ctx: Ctx) -> usize {
    let before = locks_taken();
    drop(ctx);
    locks_taken() - before
}

/// A dying child that held its parent's last reference owns that parent: the parent's slab
/// goes with it, the child's entry too, and no lock is taken on the way up (invariant 24).
#[test]
fn dropping_an_uncanceled_chain_takes_no_lock() {
    let leaf = uncanceled_chain(&Ctx::background(), 5);
    assert_eq!(locks_to_drop(leaf), 0);
    let (root, _cancel) = Ctx::background().with_cancel();
    let leaf = uncanceled_chain(&root, 5);
    assert_eq!(child_count(&root.node), 1);
    // The chain's top leaves the root, which is shared: from the root's first-child word, with
    // no lock (invariant 25).
    assert_eq!(locks_to_drop(leaf), 0);
    assert_eq!(child_count(&root.node), 0);
}

/// A child whose parent is shared leaves it — the first from its first-child word, with no
/// lock (invariant 25), the second under the parent's lock — and the parent lives on without
/// the child's entry.
#[test]
fn a_child_of_a_shared_parent_leaves_its_slab() {
    let (parent, _cancel) = Ctx::background().with_cancel();
    let leaf = uncanceled_chain(&parent, 1);
    let sibling = uncanceled_chain(&parent, 1);
    assert_eq!(child_count(&parent.node), 2);
    assert_eq!(locks_to_drop(leaf), 0);
    assert_eq!(child_count(&parent.node), 1);
    assert_eq!(locks_to_drop(sibling), 1);
    assert_eq!(child_count(&parent.node), 0);
}

/// Value nodes and a merge on the way: a value node is not a canceler, so the child below it
/// leaves the cancel node above; a merged node leaves its second canceler.
#[test]
fn an_uncanceled_chain_through_values_and_a_merge_leaves_every_canceler() {
    let (other, _other_cancel) = Ctx::background().with_cancel();
    let (root, _root_cancel) = Ctx::background().with_cancel();
    let a = uncanceled_chain(&root, 2).with_value(1u8);
    let (merged, m) = a.with_merged(&other);
    m.disarm();
    let leaf = uncanceled_chain(&merged.with_value(2u16), 2);
    assert_eq!(child_count(&root.node), 1);
    assert_eq!(child_count(&other.node), 1);
    drop((a, merged));
    drop(leaf);
    assert_eq!(child_count(&root.node), 0);
    assert_eq!(child_count(&other.node), 0);
}
