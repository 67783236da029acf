//! `Ctx::with_idle_timeout` and `IdleHandle`: done once the timeout passes with no `touch()`.
//! Every timing on `MockClock`, or on a clock whose timers never fire (for the lazy checks).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Cause, Clock, Ctx, Error, IdleHandle};
use ctx_testkit::MockClock;
use futures::FutureExt;
use futures_test::task::new_count_waker;

fn sec(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// A clock moved by hand whose timers never fire: only a read can notice a deadline.
#[derive(Debug)]
struct Lazy {
    base: Instant,
    offset: std::sync::Mutex<Duration>,
}

impl Lazy {
    fn new() -> Arc<Lazy> {
        Arc::new(Lazy {
            base: Instant::now(),
            offset: std::sync::Mutex::new(Duration::ZERO),
        })
    }
    fn advance(&self, d: Duration) {
        *self.offset.lock().unwrap() += d;
    }
}

impl Clock for Lazy {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap()
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

#[test]
fn idle_ctx_times_out_when_nobody_touches_it() {
    let clock = MockClock::new();
    let (ctx, _idle) = clock.background().with_idle_timeout(sec(60));
    clock.advance(sec(59));
    assert_eq!(ctx.err(), None);
    clock.advance(sec(1));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[test]
fn each_touch_moves_the_deadline_later() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    assert_eq!(ctx.deadline(), Some(clock.now() + sec(60)));
    for _ in 0..5 {
        clock.advance(sec(50));
        idle.touch();
        assert_eq!(ctx.deadline(), Some(clock.now() + sec(60)));
    }
    assert_eq!(ctx.err(), None, "250s old, but touched every 50s");
    clock.advance(sec(60));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn the_timer_finds_a_later_deadline_and_sleeps_again() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    let mut done = ctx.done();
    let (waker, wakes) = new_count_waker();
    assert!(done.poll_unpin(&mut TaskContext::from_waker(&waker)).is_pending());
    assert_eq!(clock.pending_timers(), 1);
    clock.advance(sec(30));
    idle.touch();
    assert_eq!(clock.pending_timers(), 1, "touch armed nothing");
    clock.advance(sec(30)); // the timer fires at 60s and finds 90s
    assert_eq!(wakes.get(), 0);
    assert_eq!(clock.pending_timers(), 1, "re-armed for the later deadline");
    assert_eq!(clock.next_deadline(), Some(clock.now() + sec(30)));
    clock.advance(sec(30));
    assert_eq!(wakes.get(), 1);
    assert_eq!(
        done.poll_unpin(&mut TaskContext::from_waker(&waker)),
        Poll::Ready(Error::DeadlineExceeded)
    );
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn a_lazy_read_of_a_touched_deadline_is_not_expired() {
    let clock = Lazy::new();
    let root = Ctx::background_with_clock(clock.clone());
    let (ctx, idle) = root.with_idle_timeout(sec(60));
    let (child, _c) = ctx.with_cancel();
    clock.advance(sec(50));
    idle.touch();
    clock.advance(sec(50)); // 100s after the call, 50s after the touch; no timer fires
    assert_eq!(ctx.err(), None);
    assert_eq!(child.err(), None);
    clock.advance(sec(10));
    assert_eq!(
        child.err(),
        Some(Error::DeadlineExceeded),
        "a child's read ends it"
    );
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_cancel_after_the_idle_deadline_passed_unobserved_is_deadline_exceeded() {
    let clock = Lazy::new();
    let root = Ctx::background_with_clock(clock.clone());
    let (ctx, idle) = root.with_idle_timeout(sec(60));
    clock.advance(sec(61));
    idle.cancel();
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn touch_after_done_does_nothing() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    idle.cancel();
    let before = ctx.deadline();
    clock.advance(sec(10));
    idle.touch();
    assert_eq!(ctx.deadline(), before);
    assert_eq!(ctx.err(), Some(Error::Canceled));

    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    clock.advance(sec(60));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let before = ctx.deadline();
    clock.advance(sec(1));
    idle.touch();
    assert_eq!(ctx.deadline(), before, "expired: touch moves nothing");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn done_with_its_parent_with_the_parents_error_and_cause() {
    let clock = MockClock::new();
    let (parent, stop) = clock.background().with_cancel_cause();
    let (ctx, _idle) = parent.with_idle_timeout(sec(60));
    let why: Cause = Arc::new(std::io::Error::other("server stopping"));
    stop.cancel(why.clone());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn deadline_is_the_earlier_of_the_parents_and_the_idle_one() {
    let clock = MockClock::new();
    let (parent, _p) = clock.background().with_timeout(sec(100));
    let (ctx, idle) = parent.with_idle_timeout(sec(60));
    assert_eq!(ctx.deadline(), Some(clock.now() + sec(60)));
    clock.advance(sec(50));
    idle.touch();
    assert_eq!(ctx.deadline(), parent.deadline(), "the parent's is earlier now");
    clock.advance(sec(50));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_child_follows_the_moving_deadline_a_timed_child_keeps_its_own() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    let (child, _c) = ctx.with_cancel();
    let value = ctx.with_value(3u8);
    let (timed, _t) = ctx.with_timeout(sec(90));
    let (short, _s) = ctx.with_timeout(sec(30));
    clock.advance(sec(40));
    idle.touch();
    assert_eq!(child.deadline(), Some(clock.now() + sec(60)));
    assert_eq!(value.deadline(), Some(clock.now() + sec(60)));
    assert_eq!(
        timed.deadline(),
        Some(clock.now() + sec(50)),
        "its own 90s is earlier now"
    );
    assert_eq!(short.err(), Some(Error::DeadlineExceeded), "its own 30s passed");
    clock.advance(sec(50));
    assert_eq!(timed.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.err(), None, "the touch keeps the rest alive");
    clock.advance(sec(10));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(value.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn zero_timeout_is_born_done_and_a_huge_one_never_expires() {
    let clock = MockClock::new();
    let (ctx, _idle) = clock.background().with_idle_timeout(Duration::ZERO);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let (ctx, idle) = clock.background().with_idle_timeout(Duration::MAX);
    idle.touch();
    assert_eq!(ctx.deadline(), None);
    clock.advance(sec(1 << 40));
    assert_eq!(ctx.err(), None);
}

#[test]
fn dropping_the_last_handle_cancels_disarm_does_not() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    let other = idle.clone();
    drop(idle);
    assert_eq!(ctx.err(), None);
    drop(other);
    assert_eq!(ctx.err(), Some(Error::Canceled));

    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    idle.disarm();
    assert_eq!(ctx.err(), None);
    clock.advance(sec(60));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded), "still times out");
}

#[test]
fn canceling_it_never_touches_its_parent() {
    let clock = MockClock::new();
    let (parent, _p) = clock.background().with_cancel();
    let (ctx, idle) = parent.with_idle_timeout(sec(60));
    idle.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    clock.advance(sec(60));
    assert_eq!(parent.err(), None);
}

#[test]
fn after_funcs_run_once_when_it_times_out() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    let ran = Arc::new(AtomicBool::new(false));
    let r = ran.clone();
    let _a = ctx.after_func(move || r.store(true, SeqCst));
    clock.advance(sec(59));
    idle.touch();
    clock.advance(sec(59));
    assert!(!ran.load(SeqCst));
    clock.advance(sec(1));
    assert!(ran.load(SeqCst));
}

#[test]
fn display_and_debug() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    assert_eq!(ctx.to_string(), "context.Background.WithIdleTimeout(60s)");
    assert_eq!(format!("{idle:?}"), "IdleHandle { done: false }");
    idle.cancel();
    assert_eq!(format!("{idle:?}"), "IdleHandle { done: true }");
}

#[test]
fn idle_handle_is_clone_send_sync_debug() {
    fn check<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    check::<IdleHandle>();
}

#[test]
fn touched_from_many_threads_it_stays_alive() {
    let clock = MockClock::new();
    let (ctx, idle) = clock.background().with_idle_timeout(sec(60));
    for _ in 0..10 {
        clock.advance(sec(30));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let idle = idle.clone();
                s.spawn(move || idle.touch());
            }
        });
    }
    assert_eq!(ctx.err(), None);
    assert_eq!(ctx.deadline(), Some(clock.now() + sec(60)));
}
