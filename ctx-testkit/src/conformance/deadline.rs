//! Checks of deadlines and timeouts.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_core::{Cause, Error};

use super::{Runtime, expect, past_tick, tick};
use crate::Probe;

const HOUR: Duration = Duration::from_secs(3600);

fn cause(msg: &'static str) -> Cause {
    Arc::new(std::io::Error::other(msg))
}

/// An instant before `now` (or `now` itself where `Instant` cannot go back that far).
fn before(now: Instant) -> Instant {
    now.checked_sub(Duration::from_secs(1)).unwrap_or(now)
}

/// `deadline()` is the earliest deadline of the context and its ancestors; value, cancel and
/// later-deadline children inherit the parent's; `without_cancel` drops it.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_is_the_earliest_of_ctx_and_ancestors(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_is_the_earliest_of_ctx_and_ancestors<R: Runtime>(rt: &R) {
    let root = rt.background();
    let now = root.now();
    let (p, _cp) = root.with_deadline(now + 10 * HOUR);
    assert_eq!(p.deadline(), Some(now + 10 * HOUR));
    let (later, _a) = p.with_deadline(now + 20 * HOUR);
    assert_eq!(
        later.deadline(),
        Some(now + 10 * HOUR),
        "a later child deadline must not win"
    );
    let (earlier, _b) = p.with_deadline(now + 5 * HOUR);
    assert_eq!(
        earlier.deadline(),
        Some(now + 5 * HOUR),
        "an earlier child deadline must win"
    );
    let (timeout, _c) = earlier.with_timeout(100 * HOUR);
    assert_eq!(timeout.deadline(), Some(now + 5 * HOUR));
    let (cancel, _d) = earlier.with_cancel();
    assert_eq!(cancel.deadline(), Some(now + 5 * HOUR));
    let value = cancel.with_value(1u8);
    assert_eq!(value.deadline(), Some(now + 5 * HOUR));
    assert_eq!(value.without_cancel().deadline(), None);
    assert_eq!(p.deadline(), Some(now + 10 * HOUR), "deriving changed the parent");
}

/// `with_timeout(d)` has `deadline() == now + d` on the root's clock (exactly, on a mock).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::timeout_deadline_is_now_plus_duration_on_the_roots_clock(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn timeout_deadline_is_now_plus_duration_on_the_roots_clock<R: Runtime>(rt: &R) {
    let root = rt.background();
    let d = Duration::from_secs(90);
    let t0 = root.now();
    let (ctx, _c) = root.with_timeout(d);
    let t1 = root.now();
    let deadline = ctx.deadline().expect("a timeout context has a deadline");
    assert!(
        t0 + d <= deadline && deadline <= t1 + d,
        "deadline is not now + d on the root's clock"
    );
    assert!(ctx.now() >= t1, "a child reads another clock than its root");
    assert_eq!(ctx.remaining().map(|r| r <= d), Some(true));
    if rt.is_mock() {
        assert_eq!(deadline, t0 + d);
        assert_eq!(ctx.remaining(), Some(d));
        rt.advance(Duration::from_secs(7));
        assert_eq!(
            root.now(),
            t0 + Duration::from_secs(7),
            "advance did not move the root's clock"
        );
        let (later, _c) = root.without_cancel().with_timeout(d);
        assert_eq!(later.deadline(), Some(t0 + Duration::from_secs(7) + d));
    }
}

/// `with_deadline(d)` under a parent whose deadline is earlier is a plain cancel child, as in
/// Go: its deadline is the parent's, `Display` says `.WithCancel`, its cause is not used when
/// the parent's deadline passes, and its handle cancels it alone.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::with_deadline_under_earlier_parent_deadline_is_a_cancel_child(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn with_deadline_under_earlier_parent_deadline_is_a_cancel_child<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (parent, _cp) = root.with_timeout(tick(rt));
    let unused = cause("not used");
    let (child, cancel_child) = parent.with_deadline_cause(root.now() + HOUR, unused.clone());
    assert_eq!(child.deadline(), parent.deadline());
    assert!(child.to_string().ends_with(".WithCancel"), "got {child}");
    let (sibling, _cs) = parent.with_timeout_cause(HOUR, cause("not used either"));
    rt.advance(past_tick(rt));
    assert_eq!(
        super::wait_done(&child, "child of an expired parent"),
        Error::DeadlineExceeded
    );
    let why = child.cause().unwrap();
    assert!(
        !Arc::ptr_eq(&why, &unused),
        "the cause of a deadline that was not used was reported"
    );
    assert_eq!(why.downcast_ref::<Error>(), Some(&Error::DeadlineExceeded));
    assert_eq!(sibling.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        sibling.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
    drop(cancel_child);

    let (parent, _cp) = root.with_timeout(HOUR);
    let (child, cancel_child) = parent.with_deadline(root.now() + 2 * HOUR);
    cancel_child.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(parent.err(), None, "the child's handle canceled its parent");
}

/// A deadline in the past (or equal to now), or a zero timeout, gives a context that is born
/// done with `DeadlineExceeded` (and the given cause): `done()` and `run()` answer on the
/// first poll, after-funcs run at once.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_in_the_past_is_born_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_in_the_past_is_born_done<R: Runtime>(rt: &R) {
    let root = rt.background();
    let now = root.now();
    let (a, _a) = root.with_deadline(before(now));
    let (b, _b) = root.with_timeout(Duration::ZERO);
    let (c, _c) = root.with_deadline(now);
    for ctx in [&a, &b, &c] {
        assert_eq!(
            ctx.err(),
            Some(Error::DeadlineExceeded),
            "{ctx} was not born done"
        );
        assert_eq!(
            ctx.cause().unwrap().downcast_ref::<Error>(),
            Some(&Error::DeadlineExceeded)
        );
        assert_eq!(Probe::new(ctx.done()).assert_ready(), Error::DeadlineExceeded);
        assert_eq!(
            Probe::new(ctx.run(async { 1 })).assert_ready(),
            Err(Error::DeadlineExceeded)
        );
    }
    let why = cause("no time at all");
    let (d, _d) = root.with_deadline_cause(before(now), why.clone());
    let (e, _e) = root.with_timeout_cause(Duration::ZERO, why.clone());
    for ctx in [&d, &e] {
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        assert!(
            Arc::ptr_eq(&ctx.cause().unwrap(), &why),
            "{ctx} lost its deadline cause"
        );
    }
    let (tx, rx) = mpsc::channel();
    let _after = a.after_func(move || tx.send(()).unwrap());
    assert!(
        rx.try_recv().is_ok(),
        "an after-func on a born-done context did not run at once"
    );
}

/// `with_timeout(Duration::MAX)` never panics and never expires: `deadline()` is `None` or
/// more than 100 years away; so for the `_cause` form and a far `with_deadline`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::huge_timeout_never_expires(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn huge_timeout_never_expires<R: Runtime>(rt: &R) {
    let root = rt.background();
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let far_enough = |d: Option<Instant>| d.is_none_or(|d| d > root.now() + century);
    let (a, _a) = root.with_timeout(Duration::MAX);
    let (b, _b) = root.with_timeout_cause(Duration::MAX, cause("never"));
    let (c, _c) = a.with_timeout(Duration::MAX);
    let (d, _d) = root.with_timeout(Duration::from_secs(u64::MAX / 2));
    for ctx in [&a, &b, &c, &d] {
        assert!(
            far_enough(ctx.deadline()),
            "{ctx} has a deadline within 100 years"
        );
        assert_eq!(ctx.err(), None);
    }
    let (tx, rx) = mpsc::channel::<()>();
    let _after = a.after_func(move || tx.send(()).unwrap());
    let mut done = Probe::new(a.done());
    done.assert_pending();
    rt.advance(if rt.is_mock() {
        1000 * HOUR
    } else {
        Duration::from_millis(1)
    });
    for ctx in [&a, &b, &c, &d] {
        assert_eq!(ctx.err(), None, "{ctx} expired");
    }
    assert!(
        rx.try_recv().is_err() && done.woken() == 0,
        "a huge timeout fired"
    );
    let (short, _s) = a.with_timeout(HOUR);
    assert_eq!(short.deadline().map(|d| d <= root.now() + HOUR), Some(true));
    assert!(
        a.to_string().starts_with("context.Background.WithDeadline("),
        "got {a}"
    );
}

/// A deadline child of a canceled parent is `Canceled`, even if its own deadline has passed:
/// the parent's error (and cause) wins, as in Go.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_child_of_canceled_parent_is_canceled(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_child_of_canceled_parent_is_canceled<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (parent, cancel) = root.with_cancel_cause();
    let why = cause("parent gone");
    cancel.cancel(why.clone());
    let (a, _a) = parent.with_deadline(before(root.now()));
    let (b, _b) = parent.with_timeout(Duration::ZERO);
    let (c, _c) = parent.with_timeout_cause(Duration::ZERO, cause("own"));
    let (d, _d) = parent.with_timeout(tick(rt));
    for ctx in [&a, &b, &c, &d] {
        assert_eq!(
            ctx.err(),
            Some(Error::Canceled),
            "{ctx}: the parent's error must win"
        );
        assert!(
            Arc::ptr_eq(&ctx.cause().unwrap(), &why),
            "{ctx}: the parent's cause must win"
        );
    }
    rt.advance(past_tick(rt));
    assert_eq!(
        d.err(),
        Some(Error::Canceled),
        "a passing deadline changed a canceled context"
    );
}

/// A context whose deadline has passed is `DeadlineExceeded` even if nobody looked before
/// its handle canceled it (or its last handle was dropped); with its deadline cause.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_passed_unobserved_then_cancel_is_deadline_exceeded(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_passed_unobserved_then_cancel_is_deadline_exceeded<R: Runtime>(rt: &R) {
    let root = rt.background();
    let why = cause("slow");
    let (a, cancel_a) = root.with_timeout(tick(rt));
    let (b, cancel_b) = root.with_timeout_cause(tick(rt), why.clone());
    let (c, cancel_c) = root.with_timeout(tick(rt));
    rt.advance(past_tick(rt));
    cancel_a.cancel();
    cancel_b.cancel();
    drop(cancel_c);
    assert_eq!(a.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        a.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
    assert_eq!(b.err(), Some(Error::DeadlineExceeded));
    assert!(Arc::ptr_eq(&b.cause().unwrap(), &why));
    assert_eq!(
        c.err(),
        Some(Error::DeadlineExceeded),
        "dropping the handle after the deadline"
    );
}

/// A deadline child whose deadline passed unobserved is `DeadlineExceeded` when its parent is
/// canceled afterwards: its timer would have fired first.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_passed_unobserved_then_parent_cancel_is_deadline_exceeded(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_passed_unobserved_then_parent_cancel_is_deadline_exceeded<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (parent, cancel) = root.with_cancel();
    let why = cause("own deadline");
    let (child, _c) = parent.with_timeout_cause(tick(rt), why.clone());
    let (grandchild, _g) = child.with_cancel();
    rt.advance(past_tick(rt));
    cancel.cancel();
    assert_eq!(parent.err(), Some(Error::Canceled));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
    assert_eq!(grandchild.err(), Some(Error::DeadlineExceeded));
    assert!(Arc::ptr_eq(&grandchild.cause().unwrap(), &why));
}

/// The cause of a context whose deadline passed is the cause given to
/// `with_deadline_cause`/`with_timeout_cause` (the same `Arc`, on descendants too), else
/// `DeadlineExceeded`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_cause_is_given_cause_or_deadline_exceeded(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_cause_is_given_cause_or_deadline_exceeded<R: Runtime>(rt: &R) {
    let root = rt.background();
    let why = cause("budget spent");
    let (a, _a) = root.with_timeout_cause(tick(rt), why.clone());
    let (a_child, _ac) = a.with_cancel();
    let a_value = a.with_value(5u8);
    let (b, _b) = root.with_deadline_cause(root.now() + tick(rt), why.clone());
    let (plain, _p) = root.with_timeout(tick(rt));
    rt.advance(past_tick(rt));
    assert_eq!(
        super::wait_done(&a_child, "the child of a deadline context"),
        Error::DeadlineExceeded
    );
    for ctx in [&a, &a_child, &a_value, &b] {
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded), "{ctx}");
        assert!(
            Arc::ptr_eq(&ctx.cause().unwrap(), &why),
            "{ctx} lost the deadline cause"
        );
    }
    assert_eq!(plain.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        plain.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

/// The `CancelHandle` of a deadline context cancels it with `Canceled` and cause `Canceled`
/// (not the deadline cause); the deadline passing later changes nothing.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::cancel_handle_of_deadline_ctx_cancels_with_canceled(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn cancel_handle_of_deadline_ctx_cancels_with_canceled<R: Runtime>(rt: &R) {
    let root = rt.background();
    let why = cause("deadline cause");
    let (ctx, cancel) = root.with_timeout_cause(tick(rt), why.clone());
    let (child, _c) = ctx.with_cancel();
    cancel.cancel();
    if !super::still_before_deadline(rt, &ctx) {
        return; // a real clock on a stalled machine: the deadline passed before the cancel
    }
    assert_eq!(ctx.err(), Some(Error::Canceled));
    let got = ctx.cause().unwrap();
    assert!(!Arc::ptr_eq(&got, &why), "cancel() reported the deadline cause");
    assert_eq!(got.downcast_ref::<Error>(), Some(&Error::Canceled));
    assert_eq!(child.err(), Some(Error::Canceled));
    rt.advance(past_tick(rt));
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "the deadline passing changed err() after cancel"
    );
}

/// When the deadline passes, the context (and its descendants) is `DeadlineExceeded`, with no
/// one polling or waiting: `err()` alone tells. Before that, it is not done.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::deadline_fires_with_nobody_polling(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn deadline_fires_with_nobody_polling<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (ctx, _c) = root.with_timeout(tick(rt));
    let (child, _cc) = ctx.with_cancel();
    let value = child.with_value(1u16);
    let early = ctx.err();
    if super::still_before_deadline(rt, &ctx) {
        assert_eq!(early, None, "done before the deadline");
    }
    if rt.is_mock() {
        rt.advance(tick(rt) - Duration::from_secs(1));
        assert_eq!(ctx.err(), None, "the deadline fired a second early");
        rt.advance(Duration::from_secs(1));
    } else {
        rt.advance(past_tick(rt));
    }
    for c in [&ctx, &child, &value] {
        assert_eq!(c.err(), Some(Error::DeadlineExceeded), "{c}");
    }
    assert_eq!(root.err(), None);
}

/// Nothing fires before the deadline: an after-func, run when the deadline fires, reads a
/// clock time at or after the deadline; on a mock, advancing to 1 ns before fires nothing.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::nothing_fires_before_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn nothing_fires_before_the_deadline<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (ctx, _c) = root.with_timeout(tick(rt));
    let deadline = ctx.deadline().unwrap();
    let (tx, rx) = mpsc::channel();
    let c = ctx.clone();
    let _after = ctx.after_func(move || {
        let _ = tx.send((c.now(), c.err()));
    });
    if rt.is_mock() {
        let mut done = Probe::new(ctx.done());
        done.assert_pending();
        rt.advance(tick(rt) - Duration::from_nanos(1));
        assert!(
            rx.try_recv().is_err(),
            "an after-func ran 1 ns before the deadline"
        );
        assert_eq!(ctx.err(), None);
        done.assert_woken(0);
        rt.advance(Duration::from_nanos(1));
    } else {
        rt.advance(past_tick(rt));
    }
    let (at, err) = expect(rt, true, &rx, "the after-func at the deadline");
    assert!(at >= deadline, "fired {:?} early", deadline - at);
    assert_eq!(
        err,
        Some(Error::DeadlineExceeded),
        "the after-func ran before the context was done"
    );
}

/// An after-func on a deadline context runs when the deadline passes, with nobody polling
/// anything; also on a child whose deadline is its parent's.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_on_deadline_ctx_fires_at_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_on_deadline_ctx_fires_at_the_deadline<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (ctx, _c) = root.with_timeout(tick(rt));
    let (child, _cc) = ctx.with_cancel();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let _a = ctx.after_func(move || tx.send("parent").unwrap());
    let _b = child
        .with_value(0u8)
        .after_func(move || tx2.send("child").unwrap());
    rt.advance(past_tick(rt));
    let mut got = [
        expect(rt, true, &rx, "the after-func at the deadline"),
        expect(rt, true, &rx, "the after-func at the deadline"),
    ];
    got.sort_unstable();
    assert_eq!(got, ["child", "parent"]);
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

/// `done()` of a deadline context resolves with `DeadlineExceeded` at the deadline, in a task
/// spawned on the runtime and under the runtime's `block_on`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::done_resolves_at_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn done_resolves_at_the_deadline<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (ctx, _c) = root.with_timeout(tick(rt));
    let (tx, rx) = mpsc::channel();
    let done = ctx.done();
    rt.spawn(async move {
        let _ = tx.send(done.await);
    });
    rt.advance(past_tick(rt));
    assert_eq!(
        expect(rt, false, &rx, "a spawned done() at the deadline"),
        Error::DeadlineExceeded
    );

    let (ctx, _c) = root.with_timeout(tick(rt));
    if rt.is_mock() {
        rt.advance(past_tick(rt)); // nobody would advance while we block
    }
    assert_eq!(rt.block_on(ctx.done()), Error::DeadlineExceeded);
}

/// `wait_blocking()` returns `DeadlineExceeded` when the deadline passes; no runtime task is
/// needed.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::wait_blocking_returns_at_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn wait_blocking_returns_at_the_deadline<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_timeout(tick(rt));
    let (child, _cc) = ctx.with_cancel();
    let waiter = super::bg(move || child.wait_blocking());
    rt.advance(past_tick(rt));
    assert_eq!(
        waiter.join("wait_blocking at the deadline"),
        Error::DeadlineExceeded
    );
    assert_eq!(ctx.wait_blocking(), Error::DeadlineExceeded);
}

/// `without_cancel()` drops the deadline: its `deadline()` is `None`, it is not done when the
/// parent's deadline passes, and its timeout children count from their own deadline.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::without_cancel_drops_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn without_cancel_drops_the_deadline<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (parent, _c) = root.with_timeout(tick(rt));
    let detached = parent.without_cancel();
    assert_eq!(detached.deadline(), None);
    let (child, _cc) = detached.with_timeout(HOUR);
    assert!(child.deadline() > parent.deadline());
    let (tx, rx) = mpsc::channel::<()>();
    let _after = detached.after_func(move || tx.send(()).unwrap());
    rt.advance(past_tick(rt));
    assert_eq!(
        super::wait_done(&parent, "the parent at its deadline"),
        Error::DeadlineExceeded
    );
    assert_eq!(detached.err(), None);
    assert_eq!(
        child.err(),
        None,
        "a child of without_cancel followed the old deadline"
    );
    assert!(
        rx.try_recv().is_err(),
        "an after-func ran on a without_cancel context"
    );
}
