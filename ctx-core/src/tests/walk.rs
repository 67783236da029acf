//! The cancel walk marks a node that nothing has depended on without taking its lock
//! (invariant 10 of `tree`), as it does the node it starts from.

use std::sync::mpsc;
use std::time::Duration;

use crate::tree::hold_lock;
use crate::{Ctx, Error};

/// Runs `cancel` on a thread while this one holds `held`'s lock; whether it finished within a
/// bound far above what it takes (a walk that waits for the lock never does).
fn finishes_while_locked(held: &Ctx, cancel: impl FnOnce() + Send + 'static) -> bool {
    let guard = hold_lock(&held.node);
    let (tx, rx) = mpsc::channel();
    let t = std::thread::spawn(move || {
        cancel();
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
    let (sibling, _s) = parent.with_cancel();
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
