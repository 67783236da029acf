//! The runtime edges that once relied on catching tokio's panics, built and run by CI with
//! `-C panic=abort` (`.ci/run`): each must work without a panic, so this exits 0.
//!
//! ```text
//! RUSTFLAGS="-C panic=abort" cargo run -p ctx-tokio --example abort_edges
//! ```
//!
//! A runtime built without `enable_time` is not among them: tokio gives no way to detect it,
//! and `TokioClock` requires a time driver (see its `# Requirements`).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use ctx_tokio::Error;

const BOUND: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Waits for `ctx` on a thread of its own, bounded.
fn done_within(ctx: &ctx_tokio::Ctx, bound: Duration) -> Option<Error> {
    let (tx, rx) = mpsc::channel();
    let ctx = ctx.clone();
    std::thread::spawn(move || {
        let _ = tx.send(ctx.wait_blocking());
    });
    rx.recv_timeout(bound).ok()
}

/// A timer armed on a runtime that then shuts down: it moves to the system timer and fires.
fn timer_outlives_its_runtime() {
    let rt = runtime();
    let (ctx, _c) = rt.block_on(async { ctx_tokio::background().with_timeout(SHORT * 5) });
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(()).unwrap()); // arms a tokio timer
    drop(rt);
    rx.recv_timeout(BOUND)
        .expect("a timer armed before its runtime shut down never fired");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

/// A timer first armed after its runtime shut down: on the system timer from the start.
fn timer_armed_after_its_runtime_is_gone() {
    let rt = runtime();
    let root = rt.block_on(async { ctx_tokio::background() });
    drop(rt);
    let start = Instant::now();
    let (ctx, _c) = root.with_timeout(SHORT);
    assert_eq!(done_within(&ctx, BOUND), Some(Error::DeadlineExceeded));
    assert!(start.elapsed() >= SHORT, "fired early");
}

/// A deadline near `Instant::MAX` (tokio panics on such a timer): never fires, cancels fine.
fn deadline_near_the_end_of_time() {
    let rt = runtime();
    let mut far = Instant::now();
    let mut step = Duration::from_secs(u64::MAX);
    while step > Duration::ZERO {
        match far.checked_add(step) {
            Some(t) => far = t,
            None => step /= 2,
        }
    }
    let (ctx, cancel) = rt.block_on(async { ctx_tokio::background().with_deadline(far) });
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(()).unwrap()); // arms (no) timer
    assert_eq!(
        done_within(&ctx, SHORT),
        None,
        "a deadline at the end of time fired"
    );
    cancel.cancel();
    rx.recv_timeout(BOUND).expect("the after-func never ran");
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

/// Every edge, in turn; panics (aborts, under `panic = "abort"`) on the first failure.
pub(crate) fn run() {
    timer_outlives_its_runtime();
    timer_armed_after_its_runtime_is_gone();
    deadline_near_the_end_of_time();
}

#[allow(dead_code)] // also compiled into a test, which calls `run`
fn main() {
    run();
    println!("abort_edges: every runtime edge passed without a panic");
}
