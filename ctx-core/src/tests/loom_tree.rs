//! cancel ⇄ child attach, cancel ⇄ child drop, cancel ⇄ cancel, handle clones dropped at once,
//! a handle canceling while the other clone and the `Ctx` are dropped; an inline first child
//! moving into the dependents part while it is dropped, or while the parent is canceled.

use loom::thread;

use crate::tree::{Kind, NodeRef};
use crate::{Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    crate::tree::child_count(&ctx.node)
}

fn is_cancel(node: &NodeRef) -> bool {
    matches!(node, NodeRef::Node(n) if matches!(n.kind, Kind::Cancel(_)))
}

/// Invariant 3: a child attached while its parent is being canceled is either found by the
/// cancel (and canceled) or finds the parent done (and is born done). Never left open.
#[test]
fn cancel_vs_child_attach_never_leaves_an_open_child() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel();
        let p = parent.clone();
        let t = thread::spawn(move || p.with_cancel());
        cancel.cancel();
        let (child, handle) = t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        assert!(is_cancel(&child.node));
        handle.disarm();
        assert_eq!(children(&parent), 0);
    });
}

/// Invariant 4: a child dropped while its parent is canceled removes its slot exactly once,
/// or finds the parent done and leaves the (taken) slab alone.
#[test]
fn cancel_vs_child_drop_leaves_no_slot_behind() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel();
        let (child, handle) = parent.with_cancel();
        let (sibling, sibling_handle) = parent.with_cancel();
        handle.disarm();
        let t = thread::spawn(move || drop(child));
        cancel.cancel();
        t.join().unwrap();
        assert_eq!(sibling.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
        drop(sibling_handle);
    });
}

/// A child dropped while the parent stays open gives its slot back.
#[test]
fn concurrent_child_drops_empty_the_parent() {
    loom::model(|| {
        let (parent, _cancel) = Ctx::background().with_cancel();
        let (a, ha) = parent.with_cancel();
        let (b, hb) = parent.with_cancel();
        let t = thread::spawn(move || {
            drop(ha);
            drop(a);
        });
        drop(hb);
        drop(b);
        t.join().unwrap();
        assert_eq!(children(&parent), 0);
    });
}

/// Invariant 22: the inline first child is dropped while a second child's attach moves it into
/// the dependents part; its detach finds it at key 0 wherever it is, and exactly one child is
/// left.
#[test]
fn inline_child_drop_vs_a_second_attach_leaves_the_second() {
    loom::model(|| {
        let (parent, _cancel) = Ctx::background().with_cancel();
        let (first, handle) = parent.with_cancel();
        handle.disarm();
        let t = thread::spawn(move || drop(first));
        let (second, second_handle) = parent.with_cancel();
        t.join().unwrap();
        assert_eq!(children(&parent), 1);
        second_handle.disarm();
        drop(second);
        assert_eq!(children(&parent), 0);
    });
}

/// Invariants 3 and 22: a cancel races a second child's attach, which moves the inline first
/// child; both children end canceled, and the done parent holds neither.
#[test]
fn cancel_vs_inline_child_moving_leaves_no_child_open() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel();
        let (first, first_handle) = parent.with_cancel();
        let p = parent.clone();
        let t = thread::spawn(move || p.with_cancel());
        cancel.cancel();
        let (second, second_handle) = t.join().unwrap();
        assert_eq!(first.err(), Some(Error::Canceled));
        assert_eq!(second.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
        drop((first_handle, second_handle));
    });
}

/// Invariant 2: two cancels race; the first wins for err and cause alike, and both the
/// context and its child agree.
#[test]
fn racing_cancels_agree_on_one_cause() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel_cause();
        let (child, _h) = parent.with_cancel();
        let other = cancel.clone();
        let t = thread::spawn(move || other.cancel(std::sync::Arc::new(std::fmt::Error) as crate::Cause));
        cancel.cancel_without_cause();
        t.join().unwrap();
        let a = parent.cause().unwrap();
        let b = child.cause().unwrap();
        assert!(std::sync::Arc::ptr_eq(&a, &b));
    });
}

/// The last of two handle clones dropped at once cancels exactly once.
#[test]
fn last_of_two_concurrently_dropped_handles_cancels() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let other = cancel.clone();
        let t = thread::spawn(move || drop(other));
        drop(cancel);
        t.join().unwrap();
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}

/// A handle holds its node strongly: one clone canceling and dropping on one thread while the
/// other clone and the last `Ctx` are dropped on this one cancels once (the after-func runs
/// once), and the node is freed when the last of them goes, whichever it is.
#[test]
fn cancel_races_the_drop_of_the_other_clone_and_the_ctx() {
    use loom::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    loom::model(|| {
        let token = Arc::new(());
        let (ctx, cancel) = Ctx::background().with_value(token.clone()).with_cancel();
        let runs = Arc::new(AtomicUsize::new(0));
        let counted = runs.clone();
        let _stop = ctx.after_func(move || {
            counted.fetch_add(1, Ordering::Relaxed);
        });
        let other = cancel.clone();
        let t = thread::spawn(move || {
            cancel.cancel();
            drop(cancel);
        });
        drop(other);
        drop(ctx);
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&token), 1, "the node and its parent are freed");
    });
}
