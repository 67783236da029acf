//! `ctx_tokio::spawn`: a task bound to a context.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctx_tokio::Error;

#[tokio::test]
async fn spawn_gives_the_output_when_the_future_finishes_first() {
    let (ctx, _cancel) = ctx_tokio::background().with_cancel();
    let task = ctx_tokio::spawn(&ctx, async { "ok" });
    assert_eq!(task.await.unwrap(), Ok("ok"));
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
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    assert!(dropped.load(Ordering::SeqCst));
}

#[tokio::test(start_paused = true)]
async fn spawned_task_ends_with_deadline_exceeded_at_the_deadline() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(30));
    let task = ctx_tokio::spawn(&ctx, tokio::time::sleep(Duration::from_secs(31)));
    assert_eq!(task.await.unwrap(), Err(Error::DeadlineExceeded));
}

#[tokio::test]
async fn spawn_on_a_done_ctx_ends_at_once_without_polling_the_future() {
    let (ctx, cancel) = ctx_tokio::background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicBool::new(false));
    let flag = polled.clone();
    let task = ctx_tokio::spawn(&ctx, async move { flag.store(true, Ordering::SeqCst) });
    assert_eq!(task.await.unwrap(), Err(Error::Canceled));
    assert!(!polled.load(Ordering::SeqCst));
}
