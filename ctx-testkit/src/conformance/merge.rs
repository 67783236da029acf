//! Checks of `with_merged`: a child of two parents.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use ctx_core::{Cause, Ctx, Error};

use super::{Runtime, expect, past_tick, still_before_deadline, tick};

fn cause(msg: &'static str) -> Cause {
    Arc::new(std::io::Error::other(msg))
}

fn same(a: Option<Cause>, b: &Cause) -> bool {
    a.is_some_and(|a| Arc::ptr_eq(&a, b))
}

/// A merged context is done when either parent is, with that parent's error and cause (the
/// same `Arc`), and so are its descendants and `done()` waiters; the other parent is left
/// alone.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_is_done_when_either_parent_is(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_is_done_when_either_parent_is<R: Runtime>(rt: &R) {
    for first in [true, false] {
        let (req, cancel_req) = rt.background().with_cancel_cause();
        let (shutdown, cancel_shutdown) = rt.background().with_cancel_cause();
        let (merged, _m) = req.with_merged(&shutdown);
        let (child, _c) = merged.with_value(1u8).with_cancel();
        let (tx, rx) = mpsc::channel();
        let done = child.done();
        rt.spawn(async move {
            let _ = tx.send(done.await);
        });
        assert_eq!(merged.err(), None);
        let why = cause("first");
        let other = if first {
            cancel_req.cancel(why.clone());
            &shutdown
        } else {
            cancel_shutdown.cancel(why.clone());
            &req
        };
        assert_eq!(merged.err(), Some(Error::Canceled));
        assert!(same(merged.cause(), &why), "the merge lost its parent's cause");
        assert!(same(child.cause(), &why), "a child of the merge lost the cause");
        assert_eq!(
            expect(rt, false, &rx, "a waiter on the merge woken"),
            Error::Canceled
        );
        assert_eq!(other.err(), None, "the other parent was touched");
    }
}

/// A merged context whose parent is already done is born done with that parent's error and
/// cause; with both done, with the first parent's (`self`'s).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_is_born_done_from_either_parent(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_is_born_done_from_either_parent<R: Runtime>(rt: &R) {
    let (live, _l) = rt.background().with_cancel();
    let (a, cancel_a) = rt.background().with_cancel_cause();
    let (b, cancel_b) = rt.background().with_cancel_cause();
    let (why_a, why_b) = (cause("a"), cause("b"));
    cancel_a.cancel(why_a.clone());
    for m in [a.with_merged(&live), live.with_merged(&a)] {
        assert_eq!(m.0.err(), Some(Error::Canceled));
        assert!(same(m.0.cause(), &why_a));
    }
    cancel_b.cancel(why_b.clone());
    assert!(
        same(a.with_merged(&b).0.cause(), &why_a),
        "both done: self's cause first"
    );
    assert!(
        same(b.with_merged(&a).0.cause(), &why_b),
        "both done: self's cause first"
    );
    assert_eq!(live.err(), None);
}

/// Canceling a merged context (or dropping its last handle) touches neither parent.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_cancel_touches_neither_parent(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_cancel_touches_neither_parent<R: Runtime>(rt: &R) {
    let (a, _a) = rt.background().with_cancel();
    let (b, _b) = rt.background().with_cancel();
    let (m, cancel) = a.with_merged(&b);
    cancel.cancel();
    assert_eq!(m.err(), Some(Error::Canceled));
    let (n, cancel) = a.with_merged(&b);
    drop(cancel);
    assert_eq!(n.err(), Some(Error::Canceled));
    assert_eq!((a.err(), b.err()), (None, None));
}

/// A merged context's deadline is the earlier of its parents'; when that passes (here: the
/// second parent's), it is `DeadlineExceeded` with the cause that parent gets, and the first
/// parent is untouched.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_deadline_is_the_earlier_and_fires_with_its_owners_cause(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_deadline_is_the_earlier_and_fires_with_its_owners_cause<R: Runtime>(rt: &R) {
    let root = rt.background();
    let why = cause("shutdown grace period over");
    let (req, _r) = root.with_timeout(tick(rt) * 100);
    let (shutdown, _s) = root.with_timeout_cause(tick(rt), why.clone());
    let (m, _m) = req.with_merged(&shutdown);
    assert_eq!(m.deadline(), shutdown.deadline());
    let (tx, rx) = mpsc::channel();
    let c = m.clone();
    let _f = m.after_func(move || tx.send(c.err()).unwrap());
    if still_before_deadline(rt, &m) {
        assert_eq!(m.err(), None, "done before the deadline");
    }
    rt.advance(past_tick(rt));
    assert_eq!(
        expect(
            rt,
            true,
            &rx,
            "the merge's after-func at the other parent's deadline"
        ),
        Some(Error::DeadlineExceeded)
    );
    assert!(same(m.cause(), &why), "not the cause of the deadline's owner");
    assert_eq!(req.err(), None, "the first parent was touched");
}

/// A merge of two children of one parent (a diamond) runs its after-func and wakes its
/// waiters once when the grandparent is canceled.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_diamond_runs_its_after_func_once(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_diamond_runs_its_after_func_once<R: Runtime>(rt: &R) {
    let (g, cancel) = rt.background().with_cancel();
    let (a, cancel_a) = g.with_cancel();
    let (b, cancel_b) = g.with_cancel();
    let (m, _m) = a.with_merged(&b);
    let runs = Arc::new(AtomicUsize::new(0));
    let r = runs.clone();
    let _f = m.after_func(move || {
        r.fetch_add(1, Ordering::SeqCst);
    });
    cancel.cancel();
    cancel_a.cancel();
    cancel_b.cancel();
    assert_eq!(m.err(), Some(Error::Canceled));
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the after-func ran {runs:?} times"
    );
}

/// Values come from the first parent's chain only; `Display` names both parents; merging with
/// a context that can never be done behaves like `with_cancel`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::merged_values_display_and_never_done_parents(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn merged_values_display_and_never_done_parents<R: Runtime>(rt: &R) {
    #[derive(Debug, PartialEq)]
    struct Mine(u8);
    #[derive(Debug, PartialEq)]
    struct Theirs(u8);
    let root = rt.background();
    let (a, cancel_a) = root.with_value(Mine(1)).with_cancel();
    let b = root.with_value(Theirs(2));
    let (m, _m) = a.with_merged(&b);
    assert_eq!(m.value::<Mine>(), Some(&Mine(1)));
    assert_eq!(m.value::<Theirs>(), None, "a value came from the second parent");
    let name = m.to_string();
    assert!(
        name.starts_with(&format!("{a}.WithMerged({b}")) && name.ends_with(')'),
        "got {name}"
    );
    // `b` can never be done: the merge is a `with_cancel` child of `a`.
    assert_eq!(m.deadline(), None);
    let (n, _n) = Ctx::background().with_merged(&a);
    cancel_a.cancel();
    assert_eq!((m.err(), n.err()), (Some(Error::Canceled), Some(Error::Canceled)));
    let (never, cancel) = root.with_merged(&root.without_cancel());
    assert_eq!(never.err(), None);
    cancel.cancel();
    assert_eq!(never.err(), Some(Error::Canceled));
}
