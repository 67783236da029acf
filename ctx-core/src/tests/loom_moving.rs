//! Moving deadlines (invariants 18 and 19 of `tree/mod.rs`): `touch` racing the lazy expiry
//! and a cancel of an idle context; a grace context's parent ending while its own handle
//! cancels it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use crate::clock::Timer;
use crate::{Cause, Clock, Ctx, Error};

/// A clock that jumps one hour ahead when told to; its timers never fire.
#[derive(Debug)]
struct JumpClock {
    base: Instant,
    late: AtomicBool,
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

fn jump_clock() -> Arc<JumpClock> {
    Arc::new(JumpClock {
        base: Instant::now(),
        late: AtomicBool::new(false),
    })
}

/// The idle deadline passed unobserved; then a `touch()` and a read race. The touch takes
/// effect exactly when the read does not expire the context: a read that says
/// `DeadlineExceeded` left the deadline where it was, one that says `None` saw the touch.
#[test]
fn touch_vs_lazy_expiry_agree() {
    loom::model(|| {
        let clock = jump_clock();
        let root = Ctx::background_with_clock(clock.clone());
        let (ctx, idle) = root.with_idle_timeout(Duration::from_secs(60));
        let (child, _c) = ctx.with_cancel();
        let old = clock.base + Duration::from_secs(60);
        let touched = clock.base + Duration::from_secs(3660);
        clock.late.store(true, Ordering::SeqCst);
        let toucher = idle.clone(); // `idle` stays armed here: its drop would cancel
        let observed = ctx.clone();
        let t = thread::spawn(move || {
            toucher.touch();
            observed.deadline() // what the toucher sees right after its touch
        });
        let seen = child.err();
        let after_touch = t.join().unwrap();
        match seen {
            Some(e) => {
                assert_eq!(e, Error::DeadlineExceeded);
                assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
                assert_eq!(ctx.deadline(), Some(old), "expired: the touch moved nothing");
                assert_eq!(after_touch, Some(old), "a touch that took effect was lost");
            }
            None => {
                assert_eq!(ctx.deadline(), Some(touched), "not expired: the touch came first");
                assert_eq!(ctx.err(), None);
                assert_eq!(child.err(), None);
            }
        }
    });
}

/// The idle deadline passed unobserved; then a `touch()` and the handle's `cancel()` race.
/// `Canceled` only if the touch came first (the deadline moved); else `DeadlineExceeded`
/// and the deadline stays.
#[test]
fn touch_vs_cancel_agree() {
    loom::model(|| {
        let clock = jump_clock();
        let root = Ctx::background_with_clock(clock.clone());
        let (ctx, idle) = root.with_idle_timeout(Duration::from_secs(60));
        let old = clock.base + Duration::from_secs(60);
        let touched = clock.base + Duration::from_secs(3660);
        clock.late.store(true, Ordering::SeqCst);
        let toucher = idle.clone();
        let t = thread::spawn(move || toucher.touch());
        idle.cancel();
        t.join().unwrap();
        match ctx.err() {
            Some(Error::Canceled) => assert_eq!(ctx.deadline(), Some(touched)),
            Some(Error::DeadlineExceeded) => assert_eq!(ctx.deadline(), Some(old)),
            None => panic!("canceled, yet not done"),
        }
    });
}

/// A zero-grace context: its parent is canceled with a cause while its own handle cancels
/// it. Whoever wins, it and its child agree, and its parent's slab is left empty.
#[test]
fn grace_parent_end_vs_own_cancel() {
    loom::model(|| {
        let (soft, stop) = Ctx::background().with_cancel_cause();
        let (hard, cancel) = soft.with_grace(Duration::ZERO);
        let (child, _c) = hard.with_cancel();
        let why: Cause = Arc::new(std::io::Error::other("shutdown"));
        let w = why.clone();
        let t = thread::spawn(move || stop.cancel(w));
        cancel.cancel();
        t.join().unwrap();
        assert_eq!(hard.err(), Some(Error::Canceled));
        assert_eq!(child.err(), Some(Error::Canceled));
        let (a, b) = (hard.cause().unwrap(), child.cause().unwrap());
        let from_parent = Arc::ptr_eq(&a, &why);
        assert_eq!(
            from_parent,
            Arc::ptr_eq(&b, &why),
            "the child took the same outcome"
        );
        assert_eq!(crate::tree::child_count(&soft.node), 0);
    });
}
