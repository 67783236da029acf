//! Invariant 10: the lock-free cancel of a node that was never given dependents, against everything that
//! gives a node dependents (a child attaching, a waiter, an after-func) and against a cancel walking
//! down from its parent. (`loom_tree` and `loom_wake` race it too, through the ordinary API.)

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use loom::thread;

use super::loom_wake::{Flag, poll_once};
use crate::{Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    crate::tree::child_count(&ctx.node)
}

/// What `poll_once_on_a_thread` hands back: the first poll's answer, the future, the ctx, what
/// `then` returned, and the waker's count.
type Polled<T> = (Poll<Error>, crate::Done, Ctx, T, Arc<Flag>);

/// Polls `ctx.done()` once on another thread with a counting waker, then runs `then` there on
/// `ctx` (what else the thread does while a cancel races it).
fn poll_once_on_a_thread<T: Send + 'static>(
    ctx: Ctx,
    then: impl FnOnce(&Ctx) -> T + Send + 'static,
) -> thread::JoinHandle<Polled<T>> {
    let count = Arc::new(Flag(loom::sync::atomic::AtomicUsize::new(0)));
    let c = count.clone();
    thread::spawn(move || {
        let mut done = ctx.done();
        let first = poll_once(&mut done, &c);
        drop(c);
        let out = then(&ctx);
        (first, done, ctx, out, count)
    })
}

/// After a cancel: a waiter that was registered (`first` pending) was woken once, and the
/// future now answers `Canceled`.
fn woken_or_ready(first: Poll<Error>, done: &mut crate::Done, count: &Flag) {
    if first.is_pending() {
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "registered waker not woken");
    }
    assert_eq!(
        Pin::new(done).poll(&mut Context::from_waker(Waker::noop())),
        Poll::Ready(Error::Canceled)
    );
}

/// A child's own (lock-free) cancel and its parent's walk both try to mark it: exactly one
/// wins, the child's slot is removed once, and the child reports the winner's error.
#[test]
fn lock_free_cancel_vs_parent_walk_marks_the_child_once() {
    loom::model(|| {
        let (parent, cancel_parent) = Ctx::background().with_cancel_cause();
        let (child, cancel_child) = parent.with_cancel();
        let (sibling, _sibling_handle) = parent.with_cancel();
        let t = thread::spawn(move || cancel_child.cancel());
        cancel_parent.cancel(std::fmt::Error);
        t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        // The parent's cause reached the child exactly when its walk marked it.
        let by_parent = child.cause().unwrap().is::<std::fmt::Error>();
        let by_itself = child.cause().unwrap().downcast_ref::<Error>() == Some(&Error::Canceled);
        assert!(by_parent != by_itself);
        assert_eq!(sibling.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
    });
}

/// An after-func registered while the node is canceled without its lock either finds the node
/// done (and runs at once) or is registered before it is marked (and run by the cancel):
/// it runs exactly once either way, and nothing stays registered.
#[test]
fn lock_free_cancel_vs_after_func_runs_it_once() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let ran = Arc::new(AtomicUsize::new(0));
        let r = ran.clone();
        let c = ctx.clone();
        let t = thread::spawn(move || {
            c.after_func(move || {
                r.fetch_add(1, Ordering::SeqCst);
            })
        });
        cancel.cancel();
        let stop = t.join().unwrap();
        assert!(!stop.stop());
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}

/// A cancel with a cause takes the lock; one without may not. Racing them, both the error and
/// the cause come from one winner, never the error of one and the cause of the other.
#[test]
fn lock_free_and_locked_cancels_agree_on_err_and_cause() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel_cause();
        let other = cancel.clone();
        let t = thread::spawn(move || other.cancel(std::fmt::Error));
        cancel.cancel_without_cause();
        t.join().unwrap();
        let cause = ctx.cause().unwrap();
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(cause.is::<std::fmt::Error>() || cause.downcast_ref::<Error>() == Some(&Error::Canceled));
    });
}

/// A standalone node (a child of `background()`, invariant 11) given dependents by a waiter on one thread
/// while another cancels it without the lock, then dropped last on either thread: the waiter is
/// woken or finds the node done, and the drop sees the dependents part if there is one (the waker is
/// released, not leaked).
#[test]
fn standalone_cancel_vs_waiter_then_drop() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let t = poll_once_on_a_thread(ctx, |_| ());
        cancel.cancel();
        drop(cancel);
        let (first, mut done, ctx, (), count) = t.join().unwrap();
        woken_or_ready(first, &mut done, &count);
        drop((done, ctx));
        assert_eq!(Arc::strong_count(&count), 1, "a waker outlived the node");
    });
}

/// Invariant 11: the cancel of a root's timed child (its one compare-exchange after a coarse
/// clock reading that proves the hour ahead) against a child attaching, which gives it
/// dependents, and against the drop of the last handle on the same thread: whichever goes
/// first, both report `Canceled` (the deadline is an hour away), and nothing stays attached.
#[test]
fn timed_standalone_cancel_vs_attach_cancels_the_child() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_timeout(std::time::Duration::from_secs(3600));
        let p = parent.clone();
        let t = thread::spawn(move || p.with_cancel());
        cancel.cancel();
        drop(cancel);
        let (child, _child_handle) = t.join().unwrap();
        assert_eq!(parent.err(), Some(Error::Canceled));
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(
            child.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
        assert_eq!(children(&parent), 0);
    });
}

/// Invariant 13: the drop of the last handle (lock-free while the node has no dependents) against a
/// child attaching (which gives it dependents). Whichever goes first, the node and the child report
/// `Canceled` with the cause `HandleDropped`, and nothing stays attached.
#[test]
fn handle_drop_vs_attach_gives_the_child_handle_dropped() {
    use crate::HandleDropped;
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_value(1u8).with_cancel();
        let p = parent.clone();
        let t = thread::spawn(move || p.with_cancel());
        drop(cancel);
        let (child, _child_handle) = t.join().unwrap();
        assert_eq!(parent.err(), Some(Error::Canceled));
        assert!(parent.cause().unwrap().is::<HandleDropped>());
        assert_eq!(child.err(), Some(Error::Canceled));
        assert!(
            child.cause().unwrap().is::<HandleDropped>(),
            "the child lost the cause"
        );
        assert_eq!(children(&parent), 0);
    });
}

/// Invariant 13 against a parent's walk, which marks the child under its lock with a cause:
/// exactly one wins, and the child's cause is the winner's (`HandleDropped` or the parent's),
/// its slot removed once.
#[test]
fn handle_drop_vs_parent_walk_marks_the_child_once() {
    use crate::HandleDropped;
    loom::model(|| {
        let (parent, cancel_parent) = Ctx::background().with_cancel_cause();
        let (child, cancel_child) = parent.with_cancel();
        let t = thread::spawn(move || drop(cancel_child));
        cancel_parent.cancel(std::fmt::Error);
        t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        let cause = child.cause().unwrap();
        assert!(
            cause.is::<std::fmt::Error>() != cause.is::<HandleDropped>(),
            "{cause:?}"
        );
        assert_eq!(children(&parent), 0);
    });
}

/// A parent's walk without a cause marks a leaf child with one compare-exchange (invariant 10),
/// against a waiter registering on the child and a grandchild attaching to it (both give the
/// child dependents): either goes first. The waiter is woken or finds the child done, the
/// grandchild is canceled or born done, and nothing stays registered.
#[test]
fn parent_walk_marks_a_leaf_lock_free_vs_waiter_and_attach() {
    loom::model(|| {
        let (parent, cancel_parent) = Ctx::background().with_cancel();
        let (child, _child_handle) = parent.with_cancel();
        let t = poll_once_on_a_thread(child.clone(), |c| c.with_cancel());
        cancel_parent.cancel();
        let (first, mut done, c, (grandchild, _gh), count) = t.join().unwrap();
        woken_or_ready(first, &mut done, &count);
        assert_eq!(child.err(), Some(Error::Canceled));
        assert_eq!(
            child.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
        assert_eq!(grandchild.err(), Some(Error::Canceled));
        assert_eq!(children(&parent), 0);
        assert_eq!(children(&child), 0);
        drop((done, c, child, grandchild));
        assert_eq!(Arc::strong_count(&count), 1, "a waker outlived the node");
    });
}

/// Two clones of a handle dropped on two threads: whichever is released last (by its load of a
/// count of one, or by the decrement that takes the count there) cancels, exactly once, with
/// `HandleDropped`; two clones disarmed on two threads cancel nothing.
#[test]
fn handle_clones_released_on_two_threads_cancel_once_or_never() {
    use crate::HandleDropped;
    loom::model(|| {
        let (parent, _keep) = Ctx::background().with_cancel();
        let (ctx, h) = parent.with_cancel();
        let h2 = h.clone();
        let t = thread::spawn(move || drop(h2));
        drop(h);
        t.join().unwrap();
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(ctx.cause().unwrap().is::<HandleDropped>());
        assert_eq!(children(&parent), 0);

        let (ctx, h) = parent.with_cancel();
        let h2 = h.clone();
        let t = thread::spawn(move || h2.disarm());
        h.disarm();
        t.join().unwrap();
        assert_eq!(ctx.err(), None);

        // Not the last: a clone dropped while another lives cancels nothing.
        let (ctx, h) = parent.with_cancel();
        let h2 = h.clone();
        thread::spawn(move || drop(h2)).join().unwrap();
        assert_eq!(ctx.err(), None, "canceled while a clone lives");
        drop(h);
        assert_eq!(ctx.err(), Some(Error::Canceled));
    });
}
