//! ctx on async-std, in real time: short deadlines (≤ 50 ms), generous upper bounds. The
//! engine's use of a clock (lazy timers, release on cancel and drop) is tested in ctx-smol,
//! whose clock is the same few lines over async-io as this crate's.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_async_std::Error;
use futures::FutureExt;

use ctx_testkit::conformance::{BOUND, SHORT, assert_on_time};

#[async_std::test]
async fn done_completes_at_the_deadline_on_async_std() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(SHORT);
    assert_eq!(ctx.done().await, Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[test]
fn after_func_runs_at_the_deadline_with_nobody_polling() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(SHORT);
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(Instant::now()).unwrap());
    let fired = rx.recv_timeout(BOUND).expect("the after-func never ran");
    assert!(fired - start >= SHORT, "fired early");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn wait_blocking_returns_at_the_deadline_on_a_plain_thread() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(SHORT);
    let err = std::thread::spawn(move || ctx.wait_blocking()).join().unwrap();
    assert_eq!(err, Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[async_std::test]
async fn select_on_done_beats_a_long_sleep() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(SHORT);
    let won = futures::select! {
        err = ctx.done().fuse() => Some(err),
        _ = async_std::task::sleep(Duration::from_secs(30)).fuse() => None,
    };
    assert_eq!(won, Some(Error::DeadlineExceeded));
    assert_on_time(start, SHORT);
}

#[async_std::test]
async fn run_gives_the_error_at_the_deadline_or_the_output_before_it() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(SHORT);
    let quick = ctx.run(async { 5 }).await;
    assert_eq!(quick, Ok(5));
    let slow = ctx.run(async_std::task::sleep(Duration::from_secs(30))).await;
    assert_eq!(slow, Err(Error::DeadlineExceeded));
    assert_on_time(start, SHORT);
}

#[test]
fn cancel_reaches_a_spawned_async_std_task() {
    let (ctx, cancel) = ctx_async_std::background().with_timeout(Duration::from_secs(30));
    let task = async_std::task::spawn(async move { ctx.run(std::future::pending::<()>()).await });
    cancel.cancel();
    assert_eq!(async_std::task::block_on(task), Err(Error::Canceled));
}

#[test]
fn roots_can_be_made_outside_the_runtime_and_are_named_like_go() {
    let (bg, todo) = std::thread::spawn(|| (ctx_async_std::background(), ctx_async_std::todo()))
        .join()
        .unwrap();
    assert_eq!(bg.to_string(), "context.Background");
    assert_eq!(todo.to_string(), "context.TODO");
    assert_eq!(bg.err(), None);
}

#[test]
fn the_clock_reads_real_time_and_a_huge_timeout_never_fires() {
    use ctx_async_std::{AsyncIoClock, Clock};
    let before = Instant::now();
    let now = AsyncIoClock::new().now();
    assert!(now >= before && now <= Instant::now());
    let (ctx, _cancel) = ctx_async_std::background().with_timeout(Duration::MAX);
    let won = async_std::task::block_on(async {
        futures::select! {
            _ = ctx.done().fuse() => false,
            _ = async_std::task::sleep(Duration::from_millis(5)).fuse() => true,
        }
    });
    assert!(won);
    assert_eq!(ctx.err(), None);
}

/// async-io's time is `Instant::now()`, which nothing pauses: the clock says so, and reads it.
#[test]
fn the_async_io_clock_reads_instant_now() {
    use ctx_async_std::{AsyncIoClock, Clock};
    assert!(AsyncIoClock::new().is_instant_now());
    ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(
        std::sync::Arc::new(AsyncIoClock::new()),
    );
}
