//! Testing code that uses contexts, without sleeping: "a handler that must give up after 5 s",
//! tested with `ctx_testkit::MockClock`. Time moves only when the test says so, so these tests
//! take microseconds and give the same answer on every run.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_testkit::MockClock;
use futures::FutureExt;
use futures::channel::oneshot;
use futures::executor::LocalPool;
use futures::task::LocalSpawnExt;

/// The code under test: a handler that gives its backend at most 5 s, less if its caller's
/// deadline is earlier.
async fn handler<F: Future<Output = String>>(ctx: &Ctx, backend: F) -> Result<String, Error> {
    let (ctx, _cancel) = ctx.with_timeout(Duration::from_secs(5));
    ctx.run(backend).await
}

/// A backend that never answers and records when its future is dropped.
fn stuck_backend(dropped: &Arc<AtomicBool>) -> impl Future<Output = String> + use<> {
    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let guard = SetOnDrop(dropped.clone());
    async move {
        let _guard = guard;
        std::future::pending::<String>().await
    }
}

#[test]
fn the_handler_gives_up_after_exactly_five_seconds_and_drops_the_backend() {
    let clock = MockClock::new();
    let root = clock.background();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut call = Box::pin(handler(&root, stuck_backend(&dropped)));

    assert_eq!((&mut call).now_or_never(), None); // waiting on the backend
    clock.advance(Duration::from_millis(4_999));
    assert_eq!((&mut call).now_or_never(), None, "gave up before 5 s");
    assert!(!dropped.load(Ordering::SeqCst));

    clock.advance(Duration::from_millis(1));
    assert_eq!((&mut call).now_or_never(), Some(Err(Error::DeadlineExceeded)));
    assert!(
        dropped.load(Ordering::SeqCst),
        "the backend's future is dropped when the handler gives up"
    );
}

#[test]
fn the_handler_returns_the_backend_answer_when_it_comes_in_time() {
    let clock = MockClock::new();
    let root = clock.background();
    let (tx, rx) = oneshot::channel::<String>();
    let mut call = Box::pin(handler(&root, rx.map(|r| r.expect("the sender is kept"))));

    assert_eq!((&mut call).now_or_never(), None);
    clock.advance(Duration::from_millis(4_900));
    tx.send("answer".to_owned()).expect("the handler is waiting");
    assert_eq!((&mut call).now_or_never(), Some(Ok("answer".to_owned())));
}

#[test]
fn the_handler_honours_a_shorter_deadline_from_its_caller() {
    let clock = MockClock::new();
    let (caller, _cancel) = clock.background().with_timeout(Duration::from_secs(1));
    let dropped = Arc::new(AtomicBool::new(false));
    let mut call = Box::pin(handler(&caller, stuck_backend(&dropped)));

    assert_eq!((&mut call).now_or_never(), None);
    clock.advance(Duration::from_secs(1));
    assert_eq!((&mut call).now_or_never(), Some(Err(Error::DeadlineExceeded)));
}

#[test]
fn the_handler_stops_at_once_when_its_caller_cancels() {
    let clock = MockClock::new();
    let (caller, cancel) = clock.background().with_cancel();
    let dropped = Arc::new(AtomicBool::new(false));
    let mut call = Box::pin(handler(&caller, stuck_backend(&dropped)));

    assert_eq!((&mut call).now_or_never(), None);
    cancel.cancel(); // no time passes at all
    assert_eq!((&mut call).now_or_never(), Some(Err(Error::Canceled)));
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn the_handler_gives_up_on_an_executor_too_with_no_real_sleep() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut pool = LocalPool::new();
    let (result_tx, mut result_rx) = oneshot::channel();
    let dropped = Arc::new(AtomicBool::new(false));
    let backend = stuck_backend(&dropped);
    pool.spawner()
        .spawn_local(async move {
            let _ = result_tx.send(handler(&root, backend).await);
        })
        .expect("spawn on the local pool");

    pool.run_until_stalled();
    clock.advance(Duration::from_secs(3));
    pool.run_until_stalled();
    assert_eq!(result_rx.try_recv(), Ok(None), "still waiting after 3 s");

    clock.advance(Duration::from_secs(2)); // wakes the task: the deadline fired
    pool.run_until_stalled();
    assert_eq!(result_rx.try_recv(), Ok(Some(Err(Error::DeadlineExceeded))));
}
