//! Invariant 25: a node's first plain child in its first-child word, outside the lock. A child
//! attaching, a child leaving, and the node's cancel (lock-free, or under the lock with a cause)
//! race: every child ends done if the node does, with the node's cause, and none is left in it.

use loom::thread;

use crate::{Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    crate::tree::child_count(&ctx.node)
}

/// A child attaching while its parent is canceled without the lock, the first time (the child
/// sets `HAS_FIRST` then) and once `HAS_FIRST` is set: taken by the cancel, or born done.
#[test]
fn loom_first_child_attach_vs_cancel() {
    for flagged in [false, true] {
        loom::model(move || {
            let (parent, cancel) = Ctx::background().with_cancel();
            if flagged {
                drop(parent.with_cancel()); // attached and left: `HAS_FIRST` stays
            }
            let p = parent.clone();
            let t = thread::spawn(move || {
                let (child, h) = p.with_cancel();
                h.disarm();
                child
            });
            cancel.cancel();
            let child = t.join().unwrap();
            assert_eq!(child.err(), Some(Error::Canceled));
            assert_eq!(children(&parent), 0);
        });
    }
}

/// The child in the word leaves (its own cancel) while the parent's cancel, with a cause, closes
/// the word: one of them takes the child's `Weak`, and the child's cause is its own or the
/// parent's, whichever marked it.
#[test]
fn loom_first_child_leave_vs_cancel_with_cause() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel_cause();
        let (child, h) = parent.with_cancel();
        let t = thread::spawn(move || h.cancel());
        cancel.cancel(std::fmt::Error);
        t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        let cause = child.cause().unwrap();
        assert!(cause.is::<std::fmt::Error>() || cause.downcast_ref::<Error>() == Some(&Error::Canceled));
        assert_eq!(children(&parent), 0);
    });
}

/// A second child registering under the lock while the first leaves the word and the parent
/// is canceled: both children end done and the parent holds none.
#[test]
fn loom_first_child_second_child_vs_leave_vs_cancel() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel();
        let (first, h) = parent.with_cancel();
        let p = parent.clone();
        let t = thread::spawn(move || {
            let (second, h2) = p.with_cancel();
            h2.disarm();
            second
        });
        let leave = thread::spawn(move || drop(h));
        cancel.cancel();
        let second = t.join().unwrap();
        leave.join().unwrap();
        assert_eq!(first.err(), Some(Error::Canceled));
        assert_eq!(second.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
    });
}
