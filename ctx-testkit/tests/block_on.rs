//! `MockClock::block_on`: mock time moves by itself, exactly as far as needed; wakes from other
//! threads are waited for; a future that can never complete is a panic, not a hang.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ctx_core::{Ctx, Error};
use ctx_testkit::MockClock;

const SEC: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
/// Generous: the point is "not an hour", not a speed target.
const REAL_BOUND: Duration = Duration::from_secs(2);

#[test]
fn an_hour_of_sleep_moves_the_clock_by_exactly_an_hour_in_no_real_time() {
    let clock = MockClock::new();
    let root = clock.background();
    let start = clock.now();
    let real = Instant::now();
    let out = clock.block_on(async move { root.sleep(HOUR).await });
    assert_eq!(out, Ok(()));
    assert_eq!(clock.now(), start + HOUR);
    assert!(real.elapsed() < REAL_BOUND);
}

#[test]
fn sleeps_in_a_row_add_up_exactly() {
    let clock = MockClock::new();
    let root = clock.background();
    let start = clock.now();
    let slept = clock.block_on(async move {
        let mut total = Duration::ZERO;
        for d in [SEC, 2 * SEC, 4 * SEC] {
            root.sleep(d).await.unwrap();
            total += d;
        }
        total
    });
    assert_eq!(clock.now(), start + slept);
    assert_eq!(slept, 7 * SEC);
}

#[test]
fn a_timeout_fires_at_its_deadline() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(5 * SEC);
    let start = clock.now();
    let out = clock.block_on(async move { ctx.run(std::future::pending::<()>()).await });
    assert_eq!(out, Err(Error::DeadlineExceeded));
    assert_eq!(clock.now(), start + 5 * SEC);
}

#[test]
fn time_moves_only_as_far_as_the_future_needs() {
    let clock = MockClock::new();
    let root = clock.background();
    // Another context's timer, far away and armed: it must not be reached.
    let (other, _c) = root.with_timeout(HOUR);
    let _armed = other.after_func(|| {});
    assert_eq!(clock.pending_timers(), 1);
    let start = clock.now();
    let r = root.clone();
    assert_eq!(clock.block_on(async move { r.sleep(3 * SEC).await }), Ok(()));
    assert_eq!(clock.now(), start + 3 * SEC);
    assert_eq!(other.err(), None);
}

#[test]
fn timers_of_others_that_come_first_fire_on_the_way() {
    let clock = MockClock::new();
    let root = clock.background();
    let (other, _c) = root.with_timeout(SEC);
    let _armed = other.after_func(|| {});
    let r = root.clone();
    assert_eq!(clock.block_on(async move { r.sleep(3 * SEC).await }), Ok(()));
    assert_eq!(other.err(), Some(Error::DeadlineExceeded));
}

/// Ready after `n` self-wakes (each poll wakes its own waker and is pending).
struct YieldTimes(u32);

impl Future for YieldTimes {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[test]
fn a_future_that_woke_itself_is_polled_again_before_time_moves() {
    let clock = MockClock::new();
    let (other, _c) = clock.background().with_timeout(SEC);
    let _armed = other.after_func(|| {});
    let start = clock.now();
    clock.block_on(YieldTimes(3));
    assert_eq!(clock.now(), start, "time moved although the future was woken");
}

#[test]
fn a_wake_from_another_thread_is_waited_for_when_no_timer_is_pending() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    let start = clock.now();
    let canceler = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20)); // let block_on park first
        cancel.cancel();
    });
    let out = clock.block_on(async move { ctx.done().await });
    assert_eq!(out, Error::Canceled);
    assert_eq!(clock.now(), start);
    canceler.join().unwrap();
}

#[test]
fn a_timer_registered_by_another_thread_moves_the_clock() {
    let clock = MockClock::new();
    let root = clock.background();
    let start = clock.now();
    let (tx, rx) = futures::channel::oneshot::channel();
    let sleeper = std::thread::spawn(move || {
        let _ = tx.send(root.sleep_blocking(10 * SEC));
    });
    let out = clock.block_on(rx);
    assert_eq!(out, Ok(Ok(())));
    assert_eq!(clock.now(), start + 10 * SEC);
    sleeper.join().unwrap();
}

#[test]
#[should_panic(expected = "it can never complete")]
fn a_future_nothing_can_wake_panics_instead_of_hanging() {
    let clock = MockClock::new();
    clock.block_on(std::future::pending::<()>());
}

#[test]
fn the_panic_comes_within_a_bounded_real_time() {
    let clock = MockClock::new();
    let root = clock.background();
    let finished = Arc::new(AtomicBool::new(false));
    let flag = finished.clone();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        // A wait on a context of another tree: this clock cannot end it.
        let _ = root;
        let (ctx, _c) = Ctx::background().with_cancel();
        clock.block_on(ctx.done());
        flag.store(true, Ordering::SeqCst);
    });
    let panicked = t.join().is_err();
    assert!(panicked, "block_on returned for a future nothing could wake");
    assert!(!finished.load(Ordering::SeqCst));
    let took = start.elapsed();
    assert!(took >= MockClock::IDLE_LIMIT, "gave up after {took:?}");
    assert!(
        took < MockClock::IDLE_LIMIT + REAL_BOUND,
        "gave up after {took:?}"
    );
}
