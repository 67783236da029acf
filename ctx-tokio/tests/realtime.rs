//! ctx on tokio in real time: short deadlines (≤ 50 ms), generous upper bounds, on both
//! runtime flavours.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_tokio::Error;
use tokio::runtime::{Builder, Runtime};

use ctx_testkit::conformance::{BOUND, SHORT, assert_on_time};

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn done_fires_at_the_deadline_on(rt: Runtime) {
    rt.block_on(async {
        let start = Instant::now();
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(SHORT);
        assert_eq!(ctx.done().await, Error::DeadlineExceeded);
        assert_on_time(start, SHORT);
    });
}

#[test]
fn done_completes_at_the_deadline_on_a_current_thread_runtime() {
    done_fires_at_the_deadline_on(current_thread());
}

#[test]
fn done_completes_at_the_deadline_on_a_multi_thread_runtime() {
    done_fires_at_the_deadline_on(multi_thread());
}

#[test]
fn after_func_runs_at_the_deadline_with_nobody_polling() {
    let rt = multi_thread();
    let start = Instant::now();
    let (ctx, _cancel) = {
        let _enter = rt.enter();
        ctx_tokio::background().with_timeout(SHORT)
    };
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(Instant::now()).unwrap());
    // This thread is not a runtime thread and nobody polls `ctx`: tokio's driver fires it.
    let fired = rx.recv_timeout(BOUND).expect("the after-func never ran");
    assert!(fired - start >= SHORT, "fired early");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn wait_blocking_returns_at_the_deadline_on_a_plain_thread() {
    let rt = multi_thread();
    let start = Instant::now();
    let (ctx, _cancel) = rt.block_on(async { ctx_tokio::background().with_timeout(SHORT) });
    let err = std::thread::spawn(move || ctx.wait_blocking()).join().unwrap();
    assert_eq!(err, Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_on_done_beats_a_long_sleep() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(SHORT);
    let won = tokio::select! {
        err = ctx.done() => Some(err),
        _ = tokio::time::sleep(Duration::from_secs(30)) => None,
    };
    assert_eq!(won, Some(Error::DeadlineExceeded));
    assert_on_time(start, SHORT);
}

#[tokio::test]
async fn run_gives_the_output_before_the_deadline_and_the_error_after_it() {
    let start = Instant::now();
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(SHORT);
    assert_eq!(ctx.run(async { 3 }).await, Ok(3));
    let slow = ctx.run(tokio::time::sleep(Duration::from_secs(30))).await;
    assert_eq!(slow, Err(Error::DeadlineExceeded));
    assert_on_time(start, SHORT);
}

#[test]
fn deadlines_fire_on_a_runtime_without_a_time_driver() {
    // Tokio refuses to make timers here; the clock falls back to the system timer thread
    // (the panic message tokio prints once, naming `enable_time`, is expected).
    let rt = Builder::new_current_thread().build().unwrap();
    let start = Instant::now();
    let err = rt.block_on(async {
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(SHORT);
        ctx.done().await
    });
    assert_eq!(err, Error::DeadlineExceeded);
    assert_on_time(start, SHORT);
}

/// Issue 10, point 6: a deadline's after-func that blocks (here until a gate opens) blocks
/// neither tokio's timer driver nor the runtime: a later deadline still fires, and a task still
/// sees it. Bounded waits: a stall fails instead of hanging.
fn a_blocked_after_func_stalls_nothing_on(rt: Runtime) {
    let (gate, open_gate) = ctx_tokio::Ctx::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let (first, second, _c1, _c2) = rt.block_on(async {
        let (first, c1) = ctx_tokio::background().with_timeout(SHORT);
        let (second, c2) = ctx_tokio::background().with_timeout(SHORT * 2);
        (first, second, c1, c2)
    });
    let _a = first.after_func(move || {
        tx.send(()).unwrap();
        gate.wait_blocking();
    });
    let seen = rt.block_on(async move {
        let waited = tokio::time::timeout(BOUND, second.done()).await;
        waited.expect("a blocked after-func stalled the second deadline")
    });
    assert_eq!(seen, Error::DeadlineExceeded);
    rx.recv_timeout(BOUND).expect("the blocking after-func never ran");
    open_gate.cancel();
}

/// Runs the check on a thread of its own: a runtime thread blocked by the after-func fails
/// the test instead of hanging it.
fn under_watchdog(rt: fn() -> Runtime) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        a_blocked_after_func_stalls_nothing_on(rt());
        let _ = tx.send(());
    });
    rx.recv_timeout(BOUND * 3)
        .expect("stalled: the runtime's thread ran the blocking after-func");
}

#[test]
fn a_blocked_after_func_stalls_nothing_on_a_current_thread_runtime() {
    under_watchdog(current_thread);
}

#[test]
fn a_blocked_after_func_stalls_nothing_on_a_multi_thread_runtime() {
    under_watchdog(multi_thread);
}
