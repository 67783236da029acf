//! `ctx_tokio::spawn`: a task bound to a context.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctx_tokio::Error;

/// The longest a test waits for a task.
const BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn spawn_gives_the_output_when_the_future_finishes_first() {
    let (ctx, _cancel) = ctx_tokio::background().with_cancel();
    let task = ctx_tokio::spawn(&ctx, async { "ok" });
    assert_eq!(task.await, Ok("ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawned_task_ends_with_canceled_and_drops_its_future_when_the_ctx_is_canceled() {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicBool::new(false));
    let guard = SetOnDrop(dropped.clone());
    let (ctx, cancel) = ctx_tokio::background().with_cancel();
    let task = ctx_tokio::spawn(&ctx, async move {
        let _guard = guard;
        std::future::pending::<()>().await
    });
    cancel.cancel();
    assert_eq!(task.await, Err(Error::Canceled));
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn spawned_task_ends_with_deadline_exceeded_at_the_deadline() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(30));
    let task = ctx_tokio::spawn(&ctx, tokio::time::sleep(Duration::from_secs(31)));
    assert_eq!(task.await, Err(Error::DeadlineExceeded));
}

#[tokio::test]
async fn spawn_on_a_done_ctx_ends_at_once_without_polling_the_future() {
    let (ctx, cancel) = ctx_tokio::background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let task = ctx_tokio::spawn(&ctx, async move { flag.store(true, Ordering::SeqCst) });
    assert_eq!(task.await, Err(Error::Canceled));
    assert!(!polled.load(Ordering::SeqCst));
}

/// The handle's output is the task's `Result<T, Error>` itself: a fallible future nests one
/// level (its own `Result` inside the context's), not two with tokio's `JoinError`.
#[tokio::test]
async fn the_handle_gives_the_result_with_no_join_error_layer() {
    let ctx = ctx_tokio::background();
    let task = ctx_tokio::spawn(&ctx, async { "7".parse::<u32>() });
    let out: Result<Result<u32, std::num::ParseIntError>, Error> = task.await;
    assert_eq!(out, Ok(Ok(7)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_of_the_task_is_resumed_where_the_handle_is_awaited() {
    use futures::FutureExt;
    let ctx = ctx_tokio::background();
    let task = ctx_tokio::spawn(&ctx, async { panic!("boom") });
    let caught = tokio::time::timeout(BOUND, std::panic::AssertUnwindSafe(task).catch_unwind())
        .await
        .expect("the task ended");
    let payload = caught.expect_err("the panic was resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
}

#[tokio::test]
async fn an_aborted_task_is_canceled() {
    let ctx = ctx_tokio::background();
    let task = ctx_tokio::spawn(&ctx, std::future::pending::<()>());
    assert!(!task.is_finished());
    task.abort();
    assert_eq!(tokio::time::timeout(BOUND, task).await, Ok(Err(Error::Canceled)));
}

#[test]
fn a_task_dropped_by_the_runtimes_shutdown_is_canceled() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let task = {
        let _enter = rt.enter();
        ctx_tokio::spawn(&ctx_tokio::background(), std::future::pending::<()>())
    };
    drop(rt); // drops the pending task
    assert_eq!(futures::executor::block_on(task), Err(Error::Canceled));
}

#[tokio::test]
async fn into_inner_gives_tokios_handle_and_its_join_error() {
    let ctx = ctx_tokio::background();
    let task = ctx_tokio::spawn(&ctx, std::future::pending::<()>()).into_inner();
    task.abort();
    let joined = tokio::time::timeout(BOUND, task).await.expect("the task ended");
    assert!(joined.unwrap_err().is_cancelled());
}

/// `spawn_try`: a fallible future's `Result<T, E>`, with the context's error converted into `E`
/// (here `io::Error`, which keeps it as its source), not `Ok(Ok(..))`; an abort too.
#[tokio::test(start_paused = true)]
async fn spawn_try_flattens_the_futures_result_and_the_contexts_error() {
    use std::io;
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(30));
    let ok = ctx_tokio::spawn_try(&ctx, async { Ok::<u8, io::Error>(7) });
    assert_eq!(ok.await.unwrap(), 7);
    let failed = ctx_tokio::spawn_try(&ctx, async { Err::<u8, _>(io::Error::other("bad shard")) });
    let err = failed.await.unwrap_err();
    assert_eq!(err.to_string(), "bad shard");
    assert!(
        err.get_ref().unwrap().downcast_ref::<Error>().is_none(),
        "the task's own error"
    );
    let aborted = ctx_tokio::spawn_try(&ctx, std::future::pending::<io::Result<()>>());
    aborted.abort();
    assert_eq!(aborted.await.unwrap_err().kind(), io::ErrorKind::Interrupted);
    let slow = ctx_tokio::spawn_try(&ctx, std::future::pending::<io::Result<()>>());
    let err = slow.await.unwrap_err(); // paused time: the deadline passes at once
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(
        err.get_ref().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}
