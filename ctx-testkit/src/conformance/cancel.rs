//! Checks of cancellation: propagation, handles, first-cancel-wins, causes.

use std::sync::Arc;

use ctx_core::{Cause, Error, HandleDropped};

use super::{MANY, Runtime};

fn cause(msg: &'static str) -> Cause {
    Arc::new(std::io::Error::other(msg))
}

/// Canceling a context cancels every descendant — cancel, deadline and value children,
/// grandchildren, children of value nodes — with `Canceled` and the same cause.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cancel_propagates_to_all_descendants(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cancel_propagates_to_all_descendants<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (top, cancel) = root.with_cancel_cause();
    let (a, _ca) = top.with_cancel();
    let (b, _cb) = top.with_timeout(std::time::Duration::from_secs(3600));
    let v = top.with_value(7u32);
    let (va, _cva) = v.with_cancel();
    let (aa, _caa) = a.with_cancel_cause();
    let (bb, _cbb) = b.with_deadline(root.now() + std::time::Duration::from_secs(7200));
    let vaa = va.with_value("deep");
    let all = [&top, &a, &b, &v, &va, &aa, &bb, &vaa];
    for c in all {
        assert_eq!(c.err(), None, "{c} is done before the cancel");
    }
    let why = cause("shutdown");
    cancel.cancel(why.clone());
    for c in all {
        assert_eq!(
            c.err(),
            Some(Error::Canceled),
            "{c} was not canceled with its ancestor"
        );
        assert!(
            Arc::ptr_eq(&c.cause().unwrap(), &why),
            "{c} does not report the ancestor's cause"
        );
    }
    assert_eq!(root.err(), None, "the root must never be canceled");
}

/// Canceling a child never touches its parent or its siblings (or the siblings' children).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cancel_of_child_leaves_parent_and_siblings_alone(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cancel_of_child_leaves_parent_and_siblings_alone<R: Runtime>(rt: &R) {
    let (parent, _cp) = rt.background().with_cancel();
    let (child, cancel_child) = parent.with_cancel();
    let (sibling, _cs) = parent.with_cancel();
    let (nephew, _cn) = sibling.with_cancel();
    let (grandchild, _cg) = child.with_cancel();
    cancel_child.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(grandchild.err(), Some(Error::Canceled));
    assert_eq!(parent.err(), None, "canceling a child canceled its parent");
    assert_eq!(sibling.err(), None, "canceling a child canceled its sibling");
    assert_eq!(
        nephew.err(),
        None,
        "canceling a child canceled its sibling's child"
    );
    assert!(parent.cause().is_none());
}

/// `cancel()` is idempotent: the second call changes neither `err()` nor `cause()`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cancel_is_idempotent(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cancel_is_idempotent<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    cancel.cancel();
    let first = ctx.cause().expect("a canceled context has a cause");
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(
        Arc::ptr_eq(&ctx.cause().unwrap(), &first),
        "a second cancel changed the cause"
    );

    let (ctx, cancel) = rt.background().with_cancel_cause();
    let why = cause("first");
    cancel.cancel(why.clone());
    cancel.cancel(cause("second"));
    cancel.cancel_without_cause();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(
        Arc::ptr_eq(&ctx.cause().unwrap(), &why),
        "a later cancel replaced the first cause"
    );
}

/// Dropping a clone of a `CancelHandle` does nothing while another clone lives; dropping the
/// last clone cancels (Go's `defer cancel()`).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropping_last_handle_clone_cancels(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropping_last_handle_clone_cancels<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let clones: Vec<_> = (0..3).map(|_| cancel.clone()).collect();
    drop(cancel);
    assert_eq!(ctx.err(), None, "dropping one clone of several canceled");
    let mut clones = clones;
    clones.pop();
    clones.pop();
    assert_eq!(ctx.err(), None);
    let last = clones.pop().unwrap();
    let moved = std::thread::spawn(move || drop(last));
    moved.join().unwrap();
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "dropping the last clone did not cancel"
    );
    assert!(
        ctx.cause().unwrap().is::<HandleDropped>(),
        "the cause of a dropped handle is not HandleDropped"
    );

    // A deadline context's handle too.
    let (ctx, cancel) = rt.background().with_timeout(std::time::Duration::from_secs(3600));
    drop(cancel);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<HandleDropped>());
}

/// `disarm()` gives a handle up without canceling; the context is still canceled by its
/// parent, and by another clone's cancel.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::disarm_does_not_cancel(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn disarm_does_not_cancel<R: Runtime>(rt: &R) {
    let (parent, cancel_parent) = rt.background().with_cancel();
    let (ctx, cancel) = parent.with_cancel();
    cancel.disarm();
    assert_eq!(ctx.err(), None, "disarm canceled the context");
    cancel_parent.cancel();
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "a disarmed child no longer follows its parent"
    );

    let (ctx, cancel) = rt.background().with_cancel_cause();
    let other = cancel.clone();
    cancel.disarm();
    assert_eq!(ctx.err(), None);
    let why = cause("by the other clone");
    other.cancel(why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));

    let (ctx, cancel) = rt.background().with_timeout(std::time::Duration::from_secs(3600));
    cancel.disarm();
    assert_eq!(ctx.err(), None, "disarm canceled a deadline context");
}

/// Dropping the last `CancelCauseHandle` cancels with `Canceled` and cause `HandleDropped`
/// (so does dropping the last `CancelHandle`); `cancel_without_cause()` cancels with cause
/// `Canceled`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropping_last_cancel_cause_handle_cancels_with_cause_handle_dropped(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropping_last_cancel_cause_handle_cancels_with_cause_handle_dropped<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel_cause();
    let other = cancel.clone();
    drop(cancel);
    assert_eq!(ctx.err(), None);
    drop(other);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<HandleDropped>());

    let (ctx, cancel) = rt.background().with_cancel_cause();
    cancel.cancel_without_cause();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
}

/// The first cancel wins, for `err()` and `cause()` alike: a child canceled first keeps its
/// cause when the parent is canceled later; a child whose parent was canceled first keeps the
/// parent's cause when it is canceled later.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::first_cancel_wins_for_err_and_cause(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn first_cancel_wins_for_err_and_cause<R: Runtime>(rt: &R) {
    // Child first.
    let (parent, cancel_parent) = rt.background().with_cancel_cause();
    let (child, cancel_child) = parent.with_cancel_cause();
    let (mine, theirs) = (cause("child"), cause("parent"));
    cancel_child.cancel(mine.clone());
    cancel_parent.cancel(theirs.clone());
    assert!(
        Arc::ptr_eq(&child.cause().unwrap(), &mine),
        "the parent's later cancel replaced the child's cause"
    );
    assert!(
        Arc::ptr_eq(&parent.cause().unwrap(), &theirs),
        "the parent must report its own cause"
    );
    assert_eq!(child.err(), Some(Error::Canceled));

    // Parent first.
    let (parent, cancel_parent) = rt.background().with_cancel_cause();
    let (child, cancel_child) = parent.with_cancel_cause();
    let (grandchild, _cg) = child.with_cancel();
    let (mine, theirs) = (cause("child"), cause("parent"));
    cancel_parent.cancel(theirs.clone());
    cancel_child.cancel(mine);
    assert!(
        Arc::ptr_eq(&child.cause().unwrap(), &theirs),
        "a late child cancel replaced the parent's cause"
    );
    assert!(Arc::ptr_eq(&grandchild.cause().unwrap(), &theirs));

    // A deadline that passes after a cancel changes nothing.
    let d = super::tick(rt);
    let (ctx, cancel) = rt.background().with_timeout(d);
    cancel.cancel();
    let in_time = super::still_before_deadline(rt, &ctx);
    rt.advance(super::past_tick(rt));
    if in_time {
        assert_eq!(
            ctx.err(),
            Some(Error::Canceled),
            "a deadline passing after cancel changed err()"
        );
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::Canceled)
        );
    }
}

/// A child of a done parent is born done, with the parent's error and cause — for every kind
/// of child and both errors.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::child_of_done_parent_is_born_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn child_of_done_parent_is_born_done<R: Runtime>(rt: &R) {
    let (parent, cancel) = rt.background().with_cancel_cause();
    let why = cause("gone");
    cancel.cancel(why.clone());
    let long = std::time::Duration::from_secs(3600);
    let (a, _a) = parent.with_cancel();
    let (b, _b) = parent.with_cancel_cause();
    let (c, _c) = parent.with_timeout(long);
    let (d, _d) = parent.with_deadline_cause(parent.now() + long, cause("unused"));
    let e = parent.with_value(1u8);
    let (f, _f) = e.with_cancel();
    for child in [&a, &b, &c, &d, &e, &f] {
        assert_eq!(
            child.err(),
            Some(Error::Canceled),
            "{child} was not born canceled"
        );
        assert!(
            Arc::ptr_eq(&child.cause().unwrap(), &why),
            "{child} was not born with the parent's cause"
        );
    }

    let why = cause("too slow");
    let (parent, _cp) = rt
        .background()
        .with_timeout_cause(std::time::Duration::ZERO, why.clone());
    let (child, _cc) = parent.with_cancel();
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
}

/// A cause given to `cancel` comes back as the very same `Arc`, from the context and from
/// every descendant, however many times it is asked.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cause_is_the_same_arc_on_ctx_and_descendants(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cause_is_the_same_arc_on_ctx_and_descendants<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel_cause();
    let (child, _c) = ctx.with_cancel();
    let grandchild = child.with_value(3i64);
    let why: Cause = Arc::new(std::fmt::Error);
    cancel.cancel(why.clone());
    for c in [&ctx, &child, &grandchild, &ctx.clone()] {
        for _ in 0..2 {
            assert!(Arc::ptr_eq(&c.cause().unwrap(), &why), "{c} returned another Arc");
        }
    }
    assert!(ctx.cause().unwrap().downcast_ref::<std::fmt::Error>().is_some());
}

/// Without a cause, `cause()` is a `Cause` whose concrete type is `ctx_core::Error`, equal to
/// `err()`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cause_without_cause_downcasts_to_error(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cause_without_cause_downcasts_to_error<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let (child, _c) = ctx.with_cancel_cause();
    cancel.cancel();
    for c in [&ctx, &child] {
        let why = c.cause().unwrap();
        assert_eq!(why.downcast_ref::<Error>(), Some(&Error::Canceled), "{c}");
        assert_eq!(why.to_string(), "context canceled");
    }
    let (ctx, _c) = rt.background().with_timeout(std::time::Duration::ZERO);
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

/// `err()`, `cause()` and `is_done()` say "not done" until the context is done, and never on
/// a root.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::err_and_cause_are_none_until_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn err_and_cause_are_none_until_done<R: Runtime>(rt: &R) {
    let root = rt.background();
    assert_eq!(root.err(), None);
    assert!(root.cause().is_none());
    assert!(!root.is_done());
    assert_eq!(root.deadline(), None);
    let (ctx, cancel) = root.with_cancel();
    assert_eq!(ctx.err(), None);
    assert!(ctx.cause().is_none());
    assert!(!ctx.is_done());
    cancel.cancel();
    assert!(ctx.is_done());
    assert_eq!(ctx.is_done(), ctx.err().is_some());
}

/// A cancel on another thread is seen by this one, and every handle and context can be moved
/// across threads.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cancel_from_another_thread_is_seen(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cancel_from_another_thread_is_seen<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel_cause();
    let why = cause("remote");
    let w = why.clone();
    std::thread::spawn(move || cancel.cancel(w)).join().unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));

    let (ctx, cancel) = rt.background().with_cancel();
    let c = ctx.clone();
    let seen = std::thread::spawn(move || c.wait_blocking());
    cancel.cancel();
    assert_eq!(seen.join().unwrap(), Error::Canceled);
}

/// Threads deriving children of a context while another thread cancels it: every child ends up
/// canceled (none is left attached to a done parent).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::concurrent_derive_and_cancel_leave_every_child_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn concurrent_derive_and_cancel_leave_every_child_done<R: Runtime>(rt: &R) {
    let threads = if cfg!(miri) { 2 } else { 4 };
    let per_thread = MANY;
    let (ctx, cancel) = rt.background().with_cancel();
    let start = Arc::new(std::sync::Barrier::new(threads + 1));
    let mut workers = Vec::new();
    for _ in 0..threads {
        let (ctx, start) = (ctx.clone(), start.clone());
        workers.push(super::bg(move || {
            start.wait();
            let mut kids = Vec::new();
            for i in 0..per_thread {
                let (kid, h) = match i % 3 {
                    0 => ctx.with_cancel(),
                    1 => ctx.with_timeout(std::time::Duration::from_secs(3600)),
                    _ => ctx.with_value(i).with_cancel(),
                };
                h.disarm();
                kids.push(kid);
            }
            kids
        }));
    }
    start.wait();
    cancel.cancel();
    for w in workers {
        let kids = w.join("a deriving thread finished");
        for k in kids {
            assert_eq!(
                k.err(),
                Some(Error::Canceled),
                "a child derived during the cancel was left open"
            );
        }
    }
}

/// Nothing leaks: a child that is dropped — canceled or not, with a timer armed, an after-func
/// stopped, a `done()` polled and dropped — releases everything, while its parent lives on.
/// (A value's `Arc` strong count tells whether the child's node was freed.)
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropped_children_release_everything(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropped_children_release_everything<R: Runtime>(rt: &R) {
    let (parent, _keep) = rt.background().with_cancel();
    let token = Arc::new(());
    {
        let (a, ha) = parent.with_value(token.clone()).with_cancel();
        ha.disarm(); // never canceled
        let (b, hb) = a.with_timeout(std::time::Duration::from_secs(3600));
        let mut waiting = crate::Probe::new(b.done());
        waiting.assert_pending(); // arms the deadline timer
        let stop = b.after_func(|| {});
        assert!(stop.stop());
        hb.disarm();
        let (c, _hc) = b.with_cancel_cause(); // dropped handle: canceled
        let _detached = c.without_cancel();
    }
    assert_eq!(Arc::strong_count(&token), 1, "a dropped child was not freed");
    assert_eq!(parent.err(), None);
    let (late, _l) = parent.with_cancel();
    assert_eq!(
        late.err(),
        None,
        "the parent is unusable after its children were dropped"
    );
}
