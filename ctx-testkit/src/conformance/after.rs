//! Checks of `after_func`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use ctx_core::Error;

use super::{MANY, Runtime, expect, past_tick, tick};

/// A counter and a function that bumps it.
fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Box<dyn FnOnce() + Send> + Clone) {
    let n = Arc::new(AtomicUsize::new(0));
    let m = n.clone();
    let make = move || {
        let m = m.clone();
        Box::new(move || {
            m.fetch_add(1, Ordering::SeqCst);
        }) as Box<dyn FnOnce() + Send>
    };
    (n, make)
}

fn count(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

/// An after-func runs exactly once, after the context is done — on its own cancel or an
/// ancestor's — however many cancels follow; each of several registrations runs once.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_runs_once_after_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_runs_once_after_done<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let (parent, cancel_parent) = rt.background().with_cancel();
    let (ctx, cancel) = parent.with_cancel();
    let (tx, rx) = mpsc::channel();
    let c = ctx.clone();
    let _a = ctx.after_func(move || tx.send(c.err()).unwrap());
    let _b = ctx.after_func(f());
    let _c = ctx.after_func(f());
    let _d = ctx.with_value(1u8).after_func(f());
    assert_eq!(count(&n), 0, "an after-func ran before the context was done");
    cancel.cancel();
    assert_eq!(
        rx.try_recv(),
        Ok(Some(Error::Canceled)),
        "the after-func did not see the context done"
    );
    assert_eq!(count(&n), 3);
    cancel.cancel();
    cancel_parent.cancel();
    assert_eq!(count(&n), 3, "an after-func ran twice");

    let (n, f) = counter();
    let (parent, cancel_parent) = rt.background().with_cancel();
    let (child, _cc) = parent.with_cancel();
    let (grandchild, _cg) = child.with_timeout(std::time::Duration::from_secs(3600));
    let _e = grandchild.after_func(f());
    let _f = parent.after_func(f());
    cancel_parent.cancel();
    assert_eq!(count(&n), 2, "an ancestor's cancel did not run the after-funcs");
}

/// `stop()` returns true exactly when it kept `f` from running: true before the context is
/// done (and `f` then never runs), false after `f` ran, false on a second call; under races
/// with a concurrent cancel, `stop() == true` exactly when `f` did not run.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_stop_is_true_exactly_when_it_kept_f_from_running(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_stop_is_true_exactly_when_it_kept_f_from_running<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let (ctx, cancel) = rt.background().with_cancel();
    let stop = ctx.after_func(f());
    let other = ctx.after_func(f());
    assert!(stop.stop(), "stop() before done must keep f from running");
    assert!(!stop.stop(), "a second stop() must return false");
    cancel.cancel();
    assert_eq!(count(&n), 1, "a stopped after-func ran (or the other did not)");
    assert!(!other.stop(), "stop() after f ran must return false");

    for _ in 0..MANY {
        let (n, f) = counter();
        let (ctx, cancel) = rt.background().with_cancel();
        let stop = ctx.after_func(f());
        let t = std::thread::spawn(move || cancel.cancel());
        let stopped = stop.stop();
        t.join().unwrap();
        assert_eq!(
            stopped,
            count(&n) == 0,
            "stop() = {stopped} but f ran {} time(s)",
            count(&n)
        );
        assert!(count(&n) <= 1);
    }
}

/// On a context that is already done, `f` runs at once, on the calling thread, and `stop()`
/// then returns false.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_on_done_ctx_runs_at_once(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_on_done_ctx_runs_at_once<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let (ctx, cancel) = rt.background().with_cancel();
    cancel.cancel();
    let caller = std::thread::current().id();
    let (tx, rx) = mpsc::channel();
    let stop = ctx.after_func(move || tx.send(std::thread::current().id()).unwrap());
    assert_eq!(
        rx.try_recv(),
        Ok(caller),
        "f did not run at once on the calling thread"
    );
    assert!(!stop.stop());
    let (expired, _e) = rt.background().with_timeout(std::time::Duration::ZERO);
    let stop = expired.after_func(f());
    assert_eq!(count(&n), 1);
    assert!(!stop.stop());
}

/// On a context that can never be done (a root, `without_cancel`, values over them) `f` never
/// runs and `stop()` returns true.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_never_runs_on_contexts_that_cannot_be_done(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_never_runs_on_contexts_that_cannot_be_done<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let root = rt.background();
    let (parent, cancel) = root.with_cancel();
    let detached = parent.without_cancel();
    let stops = [
        root.after_func(f()),
        root.with_value(1u8).after_func(f()),
        detached.after_func(f()),
        detached.with_value(2u8).after_func(f()),
    ];
    cancel.cancel();
    rt.advance(tick(rt));
    assert_eq!(count(&n), 0, "an after-func ran on a context that cannot be done");
    for s in &stops {
        assert!(s.stop(), "stop() on a never-done context must return true");
    }
}

/// An after-func registration keeps its context attached: with every `Ctx` clone dropped and
/// the handle disarmed, `f` still runs when an ancestor is canceled.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_survives_dropping_every_ctx_clone(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_survives_dropping_every_ctx_clone<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let (parent, cancel_parent) = rt.background().with_cancel();
    let (ctx, cancel) = parent.with_cancel();
    let (grandchild, cancel_g) = ctx.with_cancel();
    let _stop = grandchild.after_func(f());
    let stop_value = ctx.with_value(1u8).after_func(f());
    cancel.disarm();
    cancel_g.disarm();
    drop(grandchild);
    drop(ctx);
    drop(stop_value); // not a stop()
    assert_eq!(count(&n), 0);
    cancel_parent.cancel();
    assert_eq!(
        count(&n),
        2,
        "an after-func was lost when its context's clones were dropped"
    );
}

/// As [`after_func_survives_dropping_every_ctx_clone`], for a deadline: `f` runs when the
/// deadline passes although nothing references the context.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_survives_dropping_every_ctx_clone_until_the_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_survives_dropping_every_ctx_clone_until_the_deadline<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_timeout(tick(rt));
    let (child, cancel_child) = ctx.with_cancel();
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let _a = ctx.after_func(move || tx.send(()).unwrap());
    let _b = child.after_func(move || tx2.send(()).unwrap());
    cancel.disarm();
    cancel_child.disarm();
    drop(child);
    drop(ctx);
    rt.advance(past_tick(rt));
    expect(rt, true, &rx, "an after-func of a dropped deadline context");
    expect(
        rt,
        true,
        &rx,
        "an after-func of a dropped child of a deadline context",
    );
}

/// `f` may use the tree without deadlock: read it, derive from it, register after-funcs,
/// cancel other contexts, stop another registration.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::after_func_may_use_the_tree_without_deadlock(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn after_func_may_use_the_tree_without_deadlock<R: Runtime>(rt: &R) {
    let root = rt.background();
    let (ctx, cancel) = root.with_cancel();
    let (sibling, cancel_sibling) = root.with_cancel();
    let (child, _cc) = ctx.with_cancel();
    let (tx, rx) = mpsc::channel();
    let other = Arc::new(std::sync::Mutex::new(None));
    let other_slot = other.clone();
    let c = ctx.clone();
    let s = sibling.clone();
    let _stop = ctx.after_func(move || {
        let err = c.err();
        let (born, _b) = c.with_cancel();
        let (live, live_cancel) = s.with_cancel();
        let (tx2, rx2) = mpsc::channel();
        let _inner = c.after_func(move || tx2.send(()).unwrap());
        let nested_ran = rx2.try_recv().is_ok();
        cancel_sibling.cancel();
        live_cancel.cancel();
        let stopped = other_slot
            .lock()
            .unwrap()
            .take()
            .map(|o: ctx_core::AfterFunc| o.stop());
        let _ = tx.send((err, born.err(), live.err(), s.err(), nested_ran, stopped));
    });
    *other.lock().unwrap() = Some(child.after_func(|| {}));
    let t = std::thread::spawn(move || cancel.cancel());
    let got = match rx.recv_timeout(super::BOUND) {
        Ok(v) => v,
        Err(_) => panic!("the after-func did not finish: deadlock?"),
    };
    t.join().unwrap();
    assert_eq!(got.0, Some(Error::Canceled), "f saw its context not done");
    assert_eq!(
        got.1,
        Some(Error::Canceled),
        "a child derived in f was not born done"
    );
    assert_eq!(got.2, Some(Error::Canceled));
    assert_eq!(
        got.3,
        Some(Error::Canceled),
        "canceling another context in f did not work"
    );
    assert!(
        got.4,
        "an after-func registered in f on the done context did not run at once"
    );
    assert!(got.5.is_some());
}

/// Dropping the `AfterFunc` handle does not stop `f`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropping_after_func_handle_does_not_stop_it(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropping_after_func_handle_does_not_stop_it<R: Runtime>(rt: &R) {
    let (n, f) = counter();
    let (ctx, cancel) = rt.background().with_cancel();
    drop(ctx.after_func(f()));
    cancel.cancel();
    assert_eq!(count(&n), 1, "dropping the AfterFunc handle stopped f");
}
