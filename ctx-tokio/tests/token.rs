//! Interop with tokio-util's `CancellationToken`, both ways.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use ctx_tokio::{Cause, Ctx, CtxExt, Error};
use tokio_util::sync::CancellationToken;

/// Waits (on another thread) until `ctx` is done; fails after 2 s instead of hanging.
fn done_within_bound(ctx: &Ctx) -> Error {
    let (tx, rx) = mpsc::channel();
    let ctx = ctx.clone();
    std::thread::spawn(move || tx.send(ctx.wait_blocking()));
    rx.recv_timeout(Duration::from_secs(2))
        .expect("not done within 2 s")
}

// ===== Ctx -> CancellationToken =====

#[test]
fn token_is_canceled_when_the_ctx_is_canceled() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let token = ctx.to_cancellation_token();
    assert!(!token.is_cancelled());
    cancel.cancel();
    assert!(token.is_cancelled());
}

#[test]
fn token_of_a_done_ctx_is_canceled_at_once() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    assert!(ctx.to_cancellation_token().is_cancelled());
}

#[test]
fn canceling_the_token_leaves_the_ctx_alone() {
    let (ctx, _cancel) = Ctx::background().with_cancel();
    ctx.to_cancellation_token().cancel();
    assert_eq!(ctx.err(), None);
}

#[test]
fn token_is_canceled_even_when_every_ctx_clone_is_dropped_first() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (child, child_cancel) = parent.with_cancel();
    let token = child.to_cancellation_token();
    child_cancel.disarm();
    drop(child);
    cancel.cancel();
    assert!(token.is_cancelled());
}

#[tokio::test(start_paused = true)]
async fn token_is_canceled_at_the_deadline_with_nobody_polling_the_ctx() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(3600));
    let token = ctx.to_cancellation_token();
    token.cancelled().await; // paused time auto-advances to tokio's timer for the deadline
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

// ===== CancellationToken -> Ctx =====

#[test]
fn child_answers_canceled_as_soon_as_the_token_is_canceled() {
    let token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&Ctx::background(), token.clone());
    assert_eq!(ctx.err(), None);
    token.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::Canceled));
}

#[test]
fn contexts_derived_from_the_child_and_its_done_follow_the_token() {
    let token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&Ctx::background(), token.clone());
    let (grandchild, _c) = ctx.with_cancel();
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(()).unwrap());
    token.cancel();
    assert_eq!(done_within_bound(&ctx), Error::Canceled);
    assert_eq!(done_within_bound(&grandchild), Error::Canceled);
    rx.recv_timeout(Duration::from_secs(2))
        .expect("the after-func never ran");
}

/// Holds ctx-core's one watcher thread (which re-polls foreign `done()` futures) inside a poll
/// until dropped, so that what a test sees meanwhile does not depend on that thread.
struct HoldWatcher {
    release: Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    _wrap: Ctx,
}

impl HoldWatcher {
    fn start() -> HoldWatcher {
        use std::task::{Poll, Waker};
        struct Gated(std::sync::Mutex<Option<ctx_tokio::Done>>);
        impl ctx_tokio::Context for Gated {
            fn deadline(&self) -> Option<std::time::Instant> {
                None
            }
            fn done(&self) -> ctx_tokio::Done {
                self.0
                    .lock()
                    .unwrap()
                    .take()
                    .unwrap_or_else(ctx_tokio::Done::never)
            }
            fn err(&self) -> Option<Error> {
                None
            }
            fn cause(&self) -> Option<Cause> {
                None
            }
            fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
                None
            }
        }
        let release = Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let first = Arc::new(std::sync::Mutex::new(None::<Waker>));
        let (entered, on_entered) = mpsc::channel();
        let (r, w) = (release.clone(), first.clone());
        let mut polled = false;
        let gate = std::future::poll_fn(move |cx| {
            if !std::mem::replace(&mut polled, true) {
                *w.lock().unwrap() = Some(cx.waker().clone()); // inline, in `wrap`
                return Poll::Pending;
            }
            let _ = entered.send(()); // on the watcher thread: hold it
            let (lock, cv) = &*r;
            drop(
                cv.wait_while(lock.lock().unwrap(), |released| !*released)
                    .unwrap(),
            );
            Poll::Ready(Error::Canceled)
        });
        let wrap = Ctx::wrap(Gated(std::sync::Mutex::new(Some(ctx_tokio::Done::new(gate)))));
        first.lock().unwrap().take().expect("polled in `wrap`").wake();
        on_entered
            .recv_timeout(Duration::from_secs(10))
            .expect("the watcher thread polled the gate");
        HoldWatcher { release, _wrap: wrap }
    }
}

impl Drop for HoldWatcher {
    fn drop(&mut self) {
        *self.release.0.lock().unwrap() = true;
        self.release.1.notify_all();
    }
}

/// Issue 10, point 3: once `token.cancel()` has returned, everything derived from the child is
/// done for whoever asks — value children, children born now, after-funcs registered now,
/// `done()` polled now — without waiting for ctx-core's watcher thread (held here).
#[test]
fn everything_derived_from_the_child_is_done_as_soon_as_the_token_is_canceled() {
    use futures::FutureExt;
    let token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&Ctx::background(), token.clone());
    let value = ctx.with_value(7u8);
    let hold = HoldWatcher::start();
    token.cancel();
    assert_eq!(value.err(), Some(Error::Canceled), "a value child of the child");
    let (born, _c) = value.with_cancel();
    assert_eq!(born.err(), Some(Error::Canceled), "born open under a done parent");
    let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let r = ran.clone();
    let _stop = value.after_func(move || r.store(true, std::sync::atomic::Ordering::SeqCst));
    assert!(
        ran.load(std::sync::atomic::Ordering::SeqCst),
        "after_func runs at once"
    );
    assert_eq!(ctx.done().now_or_never(), Some(Error::Canceled));
    drop(hold);
}

#[test]
fn child_is_canceled_when_a_parent_token_is() {
    let parent_token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&Ctx::background(), parent_token.child_token());
    parent_token.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn child_of_a_canceled_token_is_born_done() {
    let token = CancellationToken::new();
    token.cancel();
    let (ctx, _cancel) = ctx_tokio::from_token(&Ctx::background(), token);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    let (grandchild, _c) = ctx.with_cancel();
    assert_eq!(grandchild.err(), Some(Error::Canceled));
}

#[test]
fn child_takes_the_parents_error_and_cause() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, CancellationToken::new());
    let why: Cause = Arc::new(std::io::Error::other("shutting down"));
    let (grandchild, _c) = ctx.with_cancel();
    cancel.cancel(why.clone());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    assert_eq!(done_within_bound(&grandchild), Error::Canceled);
    assert!(Arc::ptr_eq(&grandchild.cause().unwrap(), &why));
}

#[test]
fn child_of_a_done_parent_is_born_done_with_its_cause() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let why: Cause = Arc::new(std::io::Error::other("gone"));
    cancel.cancel(why.clone());
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, CancellationToken::new());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn the_childs_own_handle_cancels_neither_the_token_nor_the_parent() {
    let token = CancellationToken::new();
    let (parent, _p) = Ctx::background().with_cancel();
    let (ctx, cancel) = ctx_tokio::from_token(&parent, token.clone());
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(done_within_bound(&ctx), Error::Canceled);
    assert!(!token.is_cancelled());
    assert_eq!(parent.err(), None);
}

#[test]
fn child_sees_the_parents_values_and_deadline() {
    let (parent, _p) = Ctx::background()
        .with_value(42u32)
        .with_timeout(Duration::from_secs(60));
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, CancellationToken::new());
    assert_eq!(ctx.value::<u32>(), Some(&42));
    assert_eq!(ctx.deadline(), parent.deadline());
}

#[tokio::test(start_paused = true)]
async fn child_keeps_the_parents_tokio_clock_and_deadline() {
    let (parent, _p) = ctx_tokio::background().with_timeout(Duration::from_secs(10));
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, CancellationToken::new());
    tokio::time::advance(Duration::from_secs(3600)).await;
    let (child, _c) = ctx.with_timeout(Duration::from_secs(5));
    assert_eq!(child.now(), tokio::time::Instant::now().into_std());
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn child_is_done_at_the_parents_deadline_with_nobody_polling() {
    let (parent, _p) = ctx_tokio::background().with_timeout(Duration::from_secs(10));
    let token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, token.clone());
    let back = ctx.to_cancellation_token();
    back.cancelled().await; // fired by the parent's timer, through the child
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert!(!token.is_cancelled());
}

#[test]
fn answers_never_change_once_the_token_won() {
    let token = CancellationToken::new();
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (ctx, _cancel) = ctx_tokio::from_token(&parent, token.clone());
    token.cancel();
    let first = ctx.cause().unwrap();
    cancel.cancel(Arc::new(std::io::Error::other("later")) as Cause);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_waiting_on_the_child_wakes_when_another_thread_cancels_the_token() {
    let token = CancellationToken::new();
    let (ctx, _cancel) = ctx_tokio::from_token(&ctx_tokio::background(), token.clone());
    let waiter = tokio::spawn(ctx.done());
    std::thread::spawn(move || token.cancel()).join().unwrap();
    assert_eq!(waiter.await.unwrap(), Error::Canceled);
}
