//! The conformance suite on `MockClock` time (`ctx_testkit::conformance::MockRuntime`; the
//! workspace's one run of it on a mock clock, Miri included), plus the ctx-core-specific checks
//! that need the `test-util` counters or the mock's timer queue.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use ctx_core::{Cause, Context, Ctx, Done, Error, test_util};
use ctx_testkit::conformance::{self, MockRuntime, Runtime};
use ctx_testkit::{MockClock, Passthrough, Probe};

ctx_testkit::conformance_suite!(MockRuntime::new());

/// A user type whose `done()` is foreign: it never completes.
struct Foreign(Ctx);

impl Context for Foreign {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        Done::new(std::future::pending())
    }
    fn err(&self) -> Option<Error> {
        None
    }
    fn cause(&self) -> Option<Cause> {
        None
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.0.value_any(key)
    }
}

/// The watcher counter is global and other tests in this binary start watchers concurrently:
/// a wrap that starts none shows "no change" on at least one of a few attempts; one that
/// always starts one never does.
#[test]
fn wrap_of_a_ctx_wrapper_starts_no_watcher() {
    let clock = MockClock::new();
    let (inner, cancel) = clock.background().with_cancel();
    let unchanged = (0..20).any(|_| {
        let before = test_util::watchers_started();
        let wrapped = Ctx::wrap(Passthrough(inner.clone()));
        let (_child, _c) = wrapped.with_cancel();
        test_util::watchers_started() == before
    });
    assert!(
        unchanged,
        "Ctx::wrap of a type whose done() is a Ctx's started a watcher"
    );
    let wrapped = Ctx::wrap(Passthrough(inner));
    let (child, _c) = wrapped.with_cancel();
    cancel.cancel();
    assert_eq!(
        child.err(),
        Some(Error::Canceled),
        "a child of a Ctx wrapper was not canceled at once"
    );
}

#[test]
fn wrap_of_a_foreign_done_starts_one_watcher() {
    let clock = MockClock::new();
    let before = test_util::watchers_started();
    let wrapped = Ctx::wrap(Foreign(clock.background()));
    let (_a, _ca) = wrapped.with_cancel();
    let (_b, _cb) = wrapped.with_timeout(Duration::from_secs(1));
    assert!(
        test_util::watchers_started() > before,
        "a foreign done() is not watched"
    );
}

/// A foreign `done()` that is woken while its own lock is held (as `futures::future::Shared`
/// does) must not deadlock the thread that completes it. Minimal form of the conformance
/// check `wrap_of_foreign_done_cancels_children`.
#[test]
#[cfg_attr(
    miri,
    ignore = "ctx-core's watcher thread outlives the test, which Miri rejects"
)]
fn foreign_done_woken_under_its_own_lock_does_not_deadlock() {
    /// Wakes its waker with its lock held, and takes that lock when polled.
    #[derive(Default)]
    struct Gate(Mutex<(bool, Option<Waker>)>);
    struct GateDone(Arc<Gate>);
    impl std::future::Future for GateDone {
        type Output = Error;
        fn poll(self: std::pin::Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Error> {
            let mut g = self.0.0.lock().unwrap();
            if g.0 {
                return Poll::Ready(Error::Canceled);
            }
            g.1 = Some(cx.waker().clone());
            Poll::Pending
        }
    }
    struct Gated(Arc<Gate>);
    impl Context for Gated {
        fn deadline(&self) -> Option<Instant> {
            None
        }
        fn done(&self) -> Done {
            Done::new(GateDone(self.0.clone()))
        }
        fn err(&self) -> Option<Error> {
            self.0.0.lock().unwrap().0.then_some(Error::Canceled)
        }
        fn cause(&self) -> Option<Cause> {
            self.err().map(|e| Arc::new(e) as Cause)
        }
        fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
            None
        }
    }

    let gate = Arc::new(Gate::default());
    let wrapped = Ctx::wrap(Gated(gate.clone()));
    let (child, _c) = wrapped.with_cancel();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut g = gate.0.lock().unwrap();
        g.0 = true;
        if let Some(w) = g.1.take() {
            w.wake(); // under the lock, on purpose
        }
        drop(g);
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(conformance::BOUND).is_ok(),
        "completing the foreign done() deadlocked"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_blocking());
    });
    assert_eq!(rx.recv_timeout(conformance::BOUND), Ok(Error::Canceled));
}

#[test]
fn no_timer_is_armed_until_somebody_waits_and_canceling_drops_it() {
    let rt = MockRuntime::new();
    let (ctx, cancel) = rt.background().with_timeout(Duration::from_secs(5));
    let (_child, _cc) = ctx.with_cancel();
    assert_eq!(
        rt.clock().pending_timers(),
        0,
        "a timer was armed with nobody waiting"
    );
    let mut done = Probe::new(ctx.done());
    done.assert_pending();
    let mut other = Probe::new(ctx.done());
    other.assert_pending();
    assert_eq!(
        rt.clock().pending_timers(),
        1,
        "waiters on one deadline must share one timer"
    );
    assert_eq!(rt.clock().next_deadline(), ctx.deadline());
    cancel.cancel();
    assert_eq!(
        rt.clock().pending_timers(),
        0,
        "a canceled context kept its timer"
    );
    done.assert_woken(1);
}

#[test]
fn one_timer_serves_a_deadline_and_all_its_descendants() {
    let rt = MockRuntime::new();
    let (ctx, _c) = rt.background().with_timeout(Duration::from_secs(5));
    let (a, _a) = ctx.with_cancel();
    let (b, _b) = a.with_timeout(Duration::from_secs(60));
    let _x = a.after_func(|| {});
    let _y = b.after_func(|| {});
    let mut p = Probe::new(b.with_value(1u8).done());
    p.assert_pending();
    assert_eq!(rt.clock().pending_timers(), 1);
    rt.advance(Duration::from_secs(5));
    assert_eq!(rt.clock().pending_timers(), 0);
    p.assert_woken(1);
    assert_eq!(b.err(), Some(Error::DeadlineExceeded));
}
