//! `ctx_smol::spawn`: a task on smol's global executor, bound to a context. Every wait is
//! bounded by `BOUND` (a watchdog that fails the test instead of hanging).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctx_smol::Error;
use ctx_testkit::MockClock;
use ctx_testkit::conformance::BOUND;

/// `fut`'s output under `smol::block_on`; fails the test if it takes longer than [`BOUND`].
#[track_caller]
fn within_bound<T>(fut: impl Future<Output = T>) -> T {
    let watchdog = async {
        smol::Timer::after(BOUND).await;
        None
    };
    smol::block_on(smol::future::or(async { Some(fut.await) }, watchdog))
        .unwrap_or_else(|| panic!("the task did not end within {BOUND:?}"))
}

/// Sets its flag when dropped: tells whether a spawned future was dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn spawn_gives_the_output_when_the_future_finishes_first() {
    let (ctx, _cancel) = ctx_smol::background().with_cancel();
    let task = ctx_smol::spawn(&ctx, async { "ok" });
    assert_eq!(within_bound(task), Ok("ok"));
}

#[test]
fn spawned_task_runs_on_the_global_executor_without_being_awaited() {
    let (ctx, _cancel) = ctx_smol::background().with_cancel();
    let (tx, rx) = std::sync::mpsc::channel();
    ctx_smol::spawn(&ctx, async move { tx.send(7).unwrap() }).detach();
    assert_eq!(rx.recv_timeout(BOUND), Ok(7));
}

#[test]
fn spawned_task_ends_with_canceled_and_drops_its_future_when_the_ctx_is_canceled() {
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let (ctx, cancel) = ctx_smol::background().with_cancel();
    let task = ctx_smol::spawn(&ctx, async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    cancel.cancel();
    assert_eq!(within_bound(task), Err(Error::Canceled));
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn spawned_task_ends_with_deadline_exceeded_at_the_deadline() {
    let clock = MockClock::new();
    let (ctx, _cancel) = clock.background().with_timeout(Duration::from_secs(30));
    let task = ctx_smol::spawn(&ctx, std::future::pending::<()>());
    clock.advance(Duration::from_secs(29));
    assert!(!task.is_finished());
    clock.advance(Duration::from_secs(1));
    assert_eq!(within_bound(task), Err(Error::DeadlineExceeded));
}

#[test]
fn spawn_on_a_done_ctx_ends_at_once_without_polling_the_future() {
    let (ctx, cancel) = ctx_smol::background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let task = ctx_smol::spawn(&ctx, async move { flag.store(true, Ordering::SeqCst) });
    assert_eq!(within_bound(task), Err(Error::Canceled));
    assert!(!polled.load(Ordering::SeqCst));
}

/// `spawn_try`: a fallible future's `Result<T, E>`, with the context's error converted into
/// `E` (here `io::Error`, which keeps it as its source), not `Ok(Ok(..))`.
#[test]
fn spawn_try_flattens_the_futures_result_and_the_contexts_error() {
    use std::io;
    let (ctx, cancel) = ctx_smol::background().with_cancel();
    let ok = ctx_smol::spawn_try(&ctx, async { Ok::<u8, io::Error>(7) });
    assert_eq!(within_bound(ok).unwrap(), 7);
    let failed = ctx_smol::spawn_try(&ctx, async { Err::<u8, _>(io::Error::other("bad shard")) });
    let err = within_bound(failed).unwrap_err();
    assert_eq!(err.to_string(), "bad shard");
    assert!(
        err.get_ref().unwrap().downcast_ref::<Error>().is_none(),
        "the task's own error"
    );
    let stuck = ctx_smol::spawn_try(&ctx, std::future::pending::<io::Result<()>>());
    cancel.cancel();
    let err = within_bound(stuck).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    assert_eq!(
        err.get_ref().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
}
