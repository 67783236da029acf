//! Lazy deadline expiry (`err()` finding the deadline passed) racing an explicit cancel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use crate::clock::Timer;
use crate::{Clock, Ctx, Error};

/// A clock that jumps one hour ahead when told to; its timers never fire (nobody waits here).
#[derive(Debug)]
struct JumpClock {
    base: Instant,
    late: AtomicBool,
}

impl JumpClock {
    /// A root on a new clock, not yet late.
    fn root() -> (Arc<JumpClock>, Ctx) {
        let clock = Arc::new(JumpClock {
            base: Instant::now(),
            late: AtomicBool::new(false),
        });
        let root = Ctx::background_with_clock(clock.clone());
        (clock, root)
    }
}

impl Clock for JumpClock {
    fn now(&self) -> Instant {
        if self.late.load(Ordering::SeqCst) {
            self.base + Duration::from_secs(3600)
        } else {
            self.base
        }
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

/// The deadline passed before anyone looked; then `err()` and `cancel()` race. Both the
/// context and its child end `DeadlineExceeded`, whoever wins.
#[test]
fn lazy_expiry_vs_cancel_both_see_deadline_exceeded() {
    loom::model(|| {
        let (clock, root) = JumpClock::root();
        let (ctx, cancel) = root.with_timeout(Duration::from_secs(1));
        let (child, _h) = ctx.with_cancel();
        clock.late.store(true, Ordering::SeqCst);
        let c = child.clone();
        let t = thread::spawn(move || c.err());
        cancel.cancel();
        let seen = t.join().unwrap();
        assert_eq!(
            seen,
            Some(Error::DeadlineExceeded),
            "child.err() on the racing thread"
        );
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    });
}

/// A clock that counts its live sleeps (created and not yet dropped); they never fire.
#[derive(Debug, Default)]
struct CountingClock {
    live: Arc<loom::sync::atomic::AtomicUsize>,
}

struct CountedSleep(Arc<loom::sync::atomic::AtomicUsize>);

impl Drop for CountedSleep {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        self.live.fetch_add(1, Ordering::SeqCst);
        let guard = CountedSleep(self.live.clone());
        Box::pin(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        })
    }
}

/// Two waiters on two children of one deadline arm its timer at the same time: one timer stays
/// armed on the owner (a racing loser is released), and canceling the owner releases it.
#[test]
fn racing_waiters_leave_exactly_one_timer_and_cancel_releases_it() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Waker};

    fn poll_pending(ctx: &Ctx) -> crate::Done {
        let mut done = ctx.done();
        let waker = Waker::noop();
        assert!(
            Pin::new(&mut done)
                .poll(&mut Context::from_waker(waker))
                .is_pending()
        );
        done
    }

    loom::model(|| {
        let clock = Arc::new(CountingClock::default());
        let live = clock.live.clone();
        let root = Ctx::background_with_clock(clock);
        let (owner, cancel) = root.with_timeout(Duration::from_secs(60));
        let (a, _ha) = owner.with_cancel();
        let (b, _hb) = owner.with_cancel();
        let t = thread::spawn(move || {
            let d = poll_pending(&a);
            (d, a)
        });
        let db = poll_pending(&b);
        let (da, _a) = t.join().unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 1, "one timer for one deadline");
        cancel.cancel();
        assert_eq!(live.load(Ordering::SeqCst), 0, "cancel released the timer");
        drop((da, db));
    });
}

/// Two waiters below a middle node climb to the owner at the same time, each marking what it
/// passes `TIMED` (invariant 14): whichever stops early on the other's mark, exactly one timer is
/// armed once both have returned, and canceling the owner wakes both and releases it.
#[test]
fn waiters_climbing_through_one_middle_node_arm_one_timer() {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    fn poll(done: &mut crate::Done) -> Poll<Error> {
        Pin::new(done).poll(&mut Context::from_waker(Waker::noop()))
    }

    loom::model(|| {
        let clock = Arc::new(CountingClock::default());
        let live = clock.live.clone();
        let root = Ctx::background_with_clock(clock);
        let (owner, cancel) = root.with_timeout(Duration::from_secs(60));
        let (mid, _hm) = owner.with_cancel();
        let (a, _ha) = mid.with_cancel();
        let (b, _hb) = mid.with_cancel();
        let t = thread::spawn(move || {
            let mut d = a.done();
            assert!(poll(&mut d).is_pending());
            (d, a)
        });
        let mut db = b.done();
        assert!(poll(&mut db).is_pending());
        let (mut da, _a) = t.join().unwrap();
        assert_eq!(live.load(Ordering::SeqCst), 1, "one timer for one deadline");
        cancel.cancel();
        assert_eq!(poll(&mut da), Poll::Ready(Error::Canceled));
        assert_eq!(poll(&mut db), Poll::Ready(Error::Canceled));
        assert_eq!(live.load(Ordering::SeqCst), 0, "cancel released the timer");
    });
}

/// A node canceled explicitly while its inherited deadline is still ahead, racing the lazy
/// expiry of its child once the deadline has passed: the child ends as its parent does. A cancel
/// that reached the parent first is what the child gets, not the deadline's owner's outcome, even
/// while the parent's walk has not reached the child yet (as in Go, where the child has only its
/// parent's word).
#[test]
fn lazy_expiry_below_a_canceled_parent_takes_the_parents_outcome() {
    loom::model(|| {
        let (clock, root) = JumpClock::root();
        let (owner, _keep) = root.with_timeout(Duration::from_secs(1));
        let (parent, cancel) = owner.with_cancel();
        let (child, child_handle) = parent.with_cancel();
        child_handle.disarm();
        let t = thread::spawn(move || cancel.cancel());
        clock.late.store(true, Ordering::SeqCst);
        let seen = child.err();
        t.join().unwrap();
        let parent_err = parent.err();
        assert!(parent_err.is_some());
        assert_eq!(child.err(), parent_err, "the child ends as its parent");
        assert_eq!(seen, parent_err, "child.err() while the cancel raced it");
    });
}
