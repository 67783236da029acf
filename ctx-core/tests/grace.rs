//! `Ctx::with_grace`: done a grace period after its parent is done, with the parent's error and
//! cause. Every timing on `MockClock`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use ctx_core::{Cause, Ctx, Error};
use ctx_testkit::MockClock;
use futures::FutureExt;
use futures_test::task::new_count_waker;

const SECS_30: Duration = Duration::from_secs(30);

fn sec(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn grace_ctx_is_done_grace_after_its_parent_with_the_parents_error() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    clock.advance(sec(5));
    stop.cancel();
    assert_eq!(soft.err(), Some(Error::Canceled));
    assert_eq!(hard.err(), None, "not done with its parent");
    clock.advance(sec(29));
    assert_eq!(hard.err(), None, "29s into a 30s grace period");
    clock.advance(sec(1));
    assert_eq!(hard.err(), Some(Error::Canceled));
}

#[test]
fn grace_ctx_takes_the_parents_cause_as_the_same_arc() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel_cause();
    let (hard, _h) = soft.with_grace(SECS_30);
    let why: Cause = Arc::new(std::io::Error::other("received SIGTERM"));
    stop.cancel(why.clone());
    assert!(hard.cause().is_none());
    clock.advance(SECS_30);
    assert!(Arc::ptr_eq(&hard.cause().unwrap(), &why));
}

#[test]
fn a_parent_deadline_starts_the_grace_period_at_that_deadline_even_if_nobody_waits() {
    let clock = MockClock::new();
    let (soft, _s) = clock.background().with_timeout(sec(10));
    let (hard, _h) = soft.with_grace(sec(5));
    // Nobody waits on `soft`: the grace period must still start at its deadline.
    let mut done = hard.done();
    let (waker, wakes) = new_count_waker();
    assert!(done.poll_unpin(&mut TaskContext::from_waker(&waker)).is_pending());
    // No read in between: only timers may notice `soft`'s deadline and then the grace's end.
    clock.advance(sec(14));
    assert_eq!(wakes.get(), 0);
    clock.advance(sec(1));
    assert_eq!(wakes.get(), 1, "the grace timer woke the waiter");
    assert_eq!(soft.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        done.poll_unpin(&mut TaskContext::from_waker(&waker)),
        Poll::Ready(Error::DeadlineExceeded)
    );
}

#[test]
fn a_parent_deadline_noticed_late_still_counts_from_the_deadline() {
    let clock = MockClock::new();
    let (soft, _s) = clock.background().with_timeout(sec(10));
    let (hard, _h) = soft.with_grace(sec(5));
    // Jump past both without firing anything in between: the lazy reads must agree.
    clock.advance(sec(20));
    assert_eq!(hard.err(), Some(Error::DeadlineExceeded));
    assert_eq!(soft.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn deadline_is_the_parents_plus_grace_then_the_instant_it_will_be_done() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_timeout(sec(100));
    let (hard, _h) = soft.with_grace(SECS_30);
    assert_eq!(hard.deadline(), Some(soft.deadline().unwrap() + SECS_30));
    clock.advance(sec(10));
    stop.cancel();
    assert_eq!(hard.deadline(), Some(clock.now() + SECS_30));
    assert!(hard.remaining().unwrap() == SECS_30);

    let (root_grace, _g) = clock.background().with_grace(SECS_30);
    assert_eq!(root_grace.deadline(), None, "a parent with no deadline");
    let (huge, _g) = soft.with_grace(Duration::MAX);
    assert_eq!(
        huge.deadline(),
        None,
        "too far away for Instant: saturates to none"
    );
}

#[test]
fn the_handle_cancels_it_early_and_its_last_drop_too() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, cancel) = soft.with_grace(SECS_30);
    stop.cancel();
    cancel.cancel();
    assert_eq!(hard.err(), Some(Error::Canceled));

    let (soft, _stop) = clock.background().with_timeout(sec(5));
    let (hard, cancel) = soft.with_grace(SECS_30);
    let other = cancel.clone();
    drop(cancel);
    assert_eq!(hard.err(), None);
    drop(other);
    assert_eq!(
        hard.err(),
        Some(Error::Canceled),
        "before its parent is even done"
    );
    clock.advance(sec(60));
    assert_eq!(hard.err(), Some(Error::Canceled), "first end wins");
}

#[test]
fn zero_grace_is_done_together_with_its_parent() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(Duration::ZERO);
    let (below, _b) = hard.with_cancel();
    stop.cancel();
    assert_eq!(hard.err(), Some(Error::Canceled));
    assert_eq!(below.err(), Some(Error::Canceled));
}

#[test]
fn zero_grace_waiters_are_woken_by_the_parents_cancel() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(Duration::ZERO);
    let mut done = hard.done();
    let (waker, wakes) = new_count_waker();
    assert!(done.poll_unpin(&mut TaskContext::from_waker(&waker)).is_pending());
    stop.cancel();
    assert_eq!(wakes.get(), 1);
}

#[test]
fn a_grace_ctx_of_a_done_parent_counts_from_the_call() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    stop.cancel();
    clock.advance(sec(100));
    let (hard, _h) = soft.with_grace(sec(10));
    assert_eq!(hard.err(), None);
    assert_eq!(hard.deadline(), Some(clock.now() + sec(10)));
    clock.advance(sec(10));
    assert_eq!(hard.err(), Some(Error::Canceled));

    let (hard, _h) = soft.with_grace(Duration::ZERO);
    assert_eq!(hard.err(), Some(Error::Canceled), "zero grace: born done");
}

#[test]
fn a_grace_ctx_of_a_parent_whose_deadline_passed_unobserved_counts_from_the_call() {
    let clock = MockClock::new();
    let (soft, _s) = clock.background().with_timeout(sec(10));
    clock.advance(sec(100));
    let (hard, _h) = soft.with_grace(sec(10));
    assert_eq!(hard.err(), None);
    clock.advance(sec(10));
    assert_eq!(hard.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn children_of_the_grace_ctx_end_with_it() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    let (child, _c) = hard.with_cancel();
    let (timed, _t) = hard.with_timeout(sec(3600));
    let value = hard.with_value(7u8);
    stop.cancel();
    assert_eq!(child.err(), None);
    assert_eq!(
        child.deadline(),
        Some(clock.now() + SECS_30),
        "follows its parent"
    );
    assert_eq!(timed.deadline(), Some(clock.now() + SECS_30));
    assert_eq!(value.deadline(), Some(clock.now() + SECS_30));
    let mut done = child.done();
    let (waker, wakes) = new_count_waker();
    assert!(done.poll_unpin(&mut TaskContext::from_waker(&waker)).is_pending());
    clock.advance(SECS_30);
    assert_eq!(wakes.get(), 1);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(timed.err(), Some(Error::Canceled));
    assert_eq!(value.err(), Some(Error::Canceled));
}

#[test]
fn canceling_a_child_of_the_grace_ctx_touches_nothing_above() {
    let clock = MockClock::new();
    let (soft, _stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    let (child, cancel) = hard.with_cancel();
    cancel.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(hard.err(), None);
    assert_eq!(soft.err(), None);
}

#[test]
fn canceling_the_grace_ctx_never_touches_its_parent() {
    let clock = MockClock::new();
    let (soft, _stop) = clock.background().with_cancel();
    let (hard, cancel) = soft.with_grace(SECS_30);
    cancel.cancel();
    assert_eq!(hard.err(), Some(Error::Canceled));
    assert_eq!(soft.err(), None);
}

#[test]
fn values_and_name_are_the_parents() {
    let clock = MockClock::new();
    let soft = clock.background().with_value("request 7");
    let (soft, _s) = soft.with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    assert_eq!(hard.value::<&str>(), Some(&"request 7"));
    assert_eq!(
        hard.to_string(),
        "context.Background.WithValue(&str).WithCancel.WithGrace(30s)"
    );
    let (ms, _m) = Ctx::background().with_grace(Duration::from_millis(1500));
    assert_eq!(ms.to_string(), "context.Background.WithGrace(1.5s)");
}

#[test]
fn at_most_one_timer_armed_only_once_the_parent_is_done() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    let (_child, _c) = hard.with_cancel();
    let _done = hard.done();
    assert_eq!(clock.pending_timers(), 0, "no timer before the parent is done");
    stop.cancel();
    assert_eq!(clock.pending_timers(), 1);
    assert_eq!(clock.next_deadline(), Some(clock.now() + SECS_30));
    clock.advance(SECS_30);
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn after_funcs_of_the_grace_ctx_run_when_it_ends_not_before() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(SECS_30);
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let _a = hard.after_func(move || {
        r.fetch_add(1, SeqCst);
    });
    stop.cancel();
    assert_eq!(ran.load(SeqCst), 0);
    clock.advance(SECS_30);
    assert_eq!(ran.load(SeqCst), 1);
}

#[test]
fn a_grace_ctx_below_a_grace_ctx_adds_up() {
    let clock = MockClock::new();
    let (soft, stop) = clock.background().with_cancel();
    let (hard, _h) = soft.with_grace(sec(10));
    let (harder, _h2) = hard.with_grace(sec(5));
    stop.cancel();
    clock.advance(sec(10));
    assert_eq!(hard.err(), Some(Error::Canceled));
    assert_eq!(harder.err(), None);
    clock.advance(sec(5));
    assert_eq!(harder.err(), Some(Error::Canceled));
}

#[test]
fn a_grace_ctx_of_a_background_root_is_never_done() {
    let (hard, _h) = Ctx::background().with_grace(SECS_30);
    assert_eq!(hard.err(), None);
    assert_eq!(hard.deadline(), None);
}

/// A clock moved by hand whose timers never fire: only a read can notice a deadline.
#[derive(Debug)]
struct Lazy {
    base: std::time::Instant,
    offset: std::sync::Mutex<Duration>,
}

impl ctx_core::Clock for Lazy {
    fn now(&self) -> std::time::Instant {
        self.base + *self.offset.lock().unwrap()
    }
    fn sleep_until(&self, _deadline: std::time::Instant) -> ctx_core::clock::Timer {
        Box::pin(std::future::pending())
    }
}

#[test]
fn lazy_reads_start_and_end_the_grace_period_from_the_parents_deadline() {
    let clock = Arc::new(Lazy {
        base: std::time::Instant::now(),
        offset: std::sync::Mutex::new(Duration::ZERO),
    });
    let root = Ctx::background_with_clock(clock.clone());
    let (soft, _s) = root.with_timeout(sec(10));
    let (hard, _h) = soft.with_grace(sec(5));
    let (child, _c) = hard.with_cancel();
    *clock.offset.lock().unwrap() = sec(12); // no timer fires
    assert_eq!(hard.err(), None, "2s into the grace period");
    assert_eq!(soft.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        hard.deadline(),
        Some(clock.base + sec(15)),
        "counted from the deadline"
    );
    *clock.offset.lock().unwrap() = sec(15);
    assert_eq!(
        child.err(),
        Some(Error::DeadlineExceeded),
        "a child's read ends it"
    );
    assert_eq!(hard.err(), Some(Error::DeadlineExceeded));

    // Nobody looked at all until after the grace period: the first read ends everything.
    let (soft, _s) = root.with_timeout(sec(10));
    let (hard, _h) = soft.with_grace(sec(5));
    *clock.offset.lock().unwrap() = sec(40);
    assert_eq!(hard.err(), Some(Error::DeadlineExceeded));
    assert_eq!(soft.err(), Some(Error::DeadlineExceeded));
}
