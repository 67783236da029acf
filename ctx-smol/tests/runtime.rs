//! ctx on smol and async-io, in real time: short deadlines (≤ 50 ms), generous upper bounds.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_smol::clock::Timer;
use ctx_smol::{AsyncIoClock, Clock, Ctx, Error};
use futures::FutureExt;

use ctx_testkit::conformance::{BOUND, SHORT, assert_on_time};

#[test]
fn done_completes_at_the_deadline_under_smol_block_on() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
    assert_eq!(smol::block_on(ctx.done()), Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[test]
fn after_func_runs_at_the_deadline_with_nobody_polling() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(Instant::now()).unwrap());
    let fired = rx.recv_timeout(BOUND).expect("the after-func never ran");
    assert!(fired - start >= SHORT, "fired early");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn wait_blocking_returns_at_the_deadline_on_a_plain_thread() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
    let err = std::thread::spawn(move || ctx.wait_blocking()).join().unwrap();
    assert_eq!(err, Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[test]
fn select_on_done_beats_a_long_sleep() {
    let start = Instant::now();
    let won = smol::block_on(async {
        let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
        futures::select! {
            err = ctx.done().fuse() => Some(err),
            _ = smol::Timer::after(Duration::from_secs(30)).fuse() => None,
        }
    });
    assert_eq!(won, Some(Error::DeadlineExceeded));
    assert_on_time(start, SHORT);
}

#[test]
fn run_gives_the_error_at_the_deadline_and_drops_the_future() {
    struct Flag(Arc<AtomicUsize>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let flag = Flag(dropped.clone());
    let start = Instant::now();
    let out = smol::block_on(async {
        let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
        ctx.run(async move {
            let _flag = flag;
            smol::Timer::after(Duration::from_secs(30)).await;
        })
        .await
    });
    assert_eq!(out, Err(Error::DeadlineExceeded));
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
    assert_on_time(start, SHORT);
}

#[test]
fn run_gives_the_output_when_the_future_finishes_first() {
    let out = smol::block_on(async {
        let (ctx, _cancel) = ctx_smol::background().with_timeout(BOUND);
        ctx.run(async {
            smol::Timer::after(Duration::from_millis(1)).await;
            7
        })
        .await
    });
    assert_eq!(out, Ok(7));
}

#[test]
fn deadline_fires_for_a_task_on_an_async_executor() {
    let ex = async_executor::Executor::new();
    let start = Instant::now();
    let (ctx, _cancel) = ctx_smol::background().with_timeout(SHORT);
    let task = ex.spawn({
        let ctx = ctx.clone();
        async move { ctx.done().await }
    });
    assert_eq!(smol::block_on(ex.run(task)), Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[test]
fn cancel_wakes_a_task_on_an_async_executor() {
    let ex = async_executor::Executor::new();
    let (ctx, cancel) = ctx_smol::background().with_timeout(Duration::from_secs(30));
    let task = ex.spawn(async move { ctx.run(std::future::pending::<()>()).await });
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(5));
        cancel.cancel();
    });
    assert_eq!(futures::executor::block_on(ex.run(task)), Err(Error::Canceled));
}

#[test]
fn roots_can_be_made_outside_any_executor_and_are_named_like_go() {
    let (bg, todo) = std::thread::spawn(|| (ctx_smol::background(), ctx_smol::todo()))
        .join()
        .unwrap();
    assert_eq!(bg.to_string(), "context.Background");
    assert_eq!(todo.to_string(), "context.TODO");
    assert_eq!(bg.err(), None);
    assert_eq!(bg.deadline(), None);
}

#[test]
fn with_timeout_deadline_is_now_plus_the_timeout() {
    let d = Duration::from_secs(9);
    let before = Instant::now();
    let (ctx, _cancel) = ctx_smol::background().with_timeout(d);
    let after = Instant::now();
    let deadline = ctx.deadline().unwrap();
    assert!(deadline >= before + d && deadline <= after + d);
}

#[test]
fn a_huge_timeout_never_fires_and_never_panics() {
    let (ctx, _cancel) = ctx_smol::background().with_timeout(Duration::MAX);
    let won = smol::block_on(async {
        futures::select! {
            _ = ctx.done().fuse() => false,
            _ = smol::Timer::after(Duration::from_millis(5)).fuse() => true,
        }
    });
    assert!(won);
    assert_eq!(ctx.err(), None);
}

// ===== timers are armed lazily and released =====

/// Wraps [`AsyncIoClock`] and counts the sleep futures it made and those still alive.
#[derive(Debug, Default)]
struct CountingClock {
    made: AtomicUsize,
    live: Arc<AtomicUsize>,
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        AsyncIoClock::new().now()
    }
    fn sleep_until(&self, deadline: Instant) -> Timer {
        self.made.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(self.live.clone());
        let sleep = AsyncIoClock::new().sleep_until(deadline);
        Box::pin(async move {
            let _guard = guard;
            sleep.await;
        })
    }
}

fn counting_root() -> (Ctx, Arc<CountingClock>) {
    let clock = Arc::new(CountingClock::default());
    (Ctx::background_with_clock(clock.clone()), clock)
}

#[test]
fn no_timer_exists_for_a_deadline_nobody_waits_for() {
    let (root, clock) = counting_root();
    let (ctx, _cancel) = root.with_timeout(Duration::from_secs(3600));
    let (_child, _c) = ctx.with_cancel();
    assert_eq!(ctx.err(), None);
    assert_eq!(clock.made.load(Ordering::SeqCst), 0);
}

#[test]
fn an_armed_timer_is_released_when_the_context_is_canceled() {
    let (root, clock) = counting_root();
    let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
    let _stop = ctx.after_func(|| {});
    assert_eq!(clock.made.load(Ordering::SeqCst), 1);
    assert_eq!(clock.live.load(Ordering::SeqCst), 1);
    cancel.cancel();
    assert_eq!(clock.live.load(Ordering::SeqCst), 0);
}

#[test]
fn an_armed_timer_is_released_when_the_context_is_dropped() {
    let (root, clock) = counting_root();
    let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
    cancel.disarm();
    let mut done = ctx.done();
    assert!((&mut done).now_or_never().is_none());
    assert_eq!(clock.live.load(Ordering::SeqCst), 1);
    drop(done);
    drop(ctx);
    assert_eq!(clock.live.load(Ordering::SeqCst), 0);
}

/// async-io's time is `Instant::now()`, which nothing pauses: the clock says so, and reads it.
#[test]
fn the_async_io_clock_reads_instant_now() {
    assert!(AsyncIoClock::new().is_instant_now());
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(Arc::new(AsyncIoClock::new()));
}
