//! The cost contract of deadlines: a deadline nobody waits for arms no timer; the first waiter
//! arms exactly one, shared by every descendant; a cancel releases it. Uses the `test-util`
//! counters, so this file holds its tests behind one lock (the counters are process-wide).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ctx_core::test_util::{timers_armed, watchers_started};
use ctx_core::{Context, Ctx, Done, Error};
use futures::FutureExt;
use futures::executor::block_on;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_deadline_nobody_waits_for_arms_no_timer() {
    let _g = serial();
    let before = timers_armed();
    let (ctx, cancel) = Ctx::background().with_timeout(Duration::from_secs(60));
    let (child, _c) = ctx.with_cancel();
    assert_eq!(child.err(), None);
    assert!(ctx.deadline().is_some());
    cancel.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(timers_armed(), before, "err()/cancel armed a timer");
}

#[test]
#[cfg_attr(miri, ignore = "arms a real timer: its thread outlives the test")]
fn polling_done_arms_one_timer_shared_by_descendants() {
    let _g = serial();
    let before = timers_armed();
    let (ctx, cancel) = Ctx::background().with_timeout(Duration::from_secs(60));
    let (a, _ca) = ctx.with_cancel();
    let b = ctx.with_value(5u8);
    let mut da = a.done();
    let mut db = b.done();
    assert!((&mut da).now_or_never().is_none());
    assert!((&mut db).now_or_never().is_none());
    assert!(ctx.done().now_or_never().is_none());
    assert_eq!(timers_armed(), before + 1, "one timer for one deadline");
    cancel.cancel();
    assert_eq!(block_on(da), Error::Canceled);
    assert_eq!(block_on(db), Error::Canceled);
}

#[test]
#[cfg_attr(miri, ignore = "arms a real timer: its thread outlives the test")]
fn after_func_on_a_deadline_context_arms_its_timer_and_fires_with_nobody_polling() {
    let _g = serial();
    let before = timers_armed();
    let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_millis(20));
    let (tx, rx) = std::sync::mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(()).unwrap());
    assert_eq!(timers_armed(), before + 1);
    rx.recv_timeout(Duration::from_secs(5))
        .expect("after-func did not fire at the deadline");
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
#[cfg_attr(miri, ignore = "arms a real timer: its thread outlives the test")]
fn wait_blocking_returns_at_the_deadline_without_a_runtime() {
    let _g = serial();
    let start = std::time::Instant::now();
    let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_millis(20));
    assert_eq!(ctx.wait_blocking(), Error::DeadlineExceeded);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(20), "fired early: {took:?}");
    assert!(took < Duration::from_secs(5), "fired far too late: {took:?}");
}

/// A user type that wraps a `Ctx` and overrides only `value_any`.
struct Shadow(Ctx);

impl ctx_core::Forward for Shadow {
    fn inner(&self) -> &Ctx {
        &self.0
    }
    fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

#[test]
fn wrapping_a_ctx_backed_type_spawns_no_watcher_and_cancels_at_once() {
    let _g = serial();
    let before = watchers_started();
    let (parent, cancel) = Ctx::background().with_cancel();
    let wrapped = Ctx::wrap(Shadow(parent));
    let (c1, _h1) = wrapped.with_cancel();
    let (c2, _h2) = wrapped.with_timeout(Duration::from_secs(9));
    assert_eq!(watchers_started(), before);
    cancel.cancel();
    assert_eq!(c1.err(), Some(Error::Canceled));
    assert_eq!(c2.err(), Some(Error::Canceled));
}

/// A truly foreign `done()`: one watcher for the wrapped context, however many children.
struct Foreign {
    rx: Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
    done: Arc<Mutex<Option<Error>>>,
}

impl Context for Foreign {
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
    fn done(&self) -> Done {
        match self.rx.lock().unwrap().take() {
            Some(rx) => Done::new(async move {
                let _ = rx.await;
                Error::Canceled
            }),
            None => Done::never(),
        }
    }
    fn err(&self) -> Option<Error> {
        *self.done.lock().unwrap()
    }
    fn cause(&self) -> Option<ctx_core::Cause> {
        None
    }
    fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}

#[test]
#[cfg_attr(miri, ignore = "starts the watcher thread, which outlives the test")]
fn wrapping_a_foreign_done_starts_one_watcher_for_all_children() {
    let _g = serial();
    let before = watchers_started();
    let (tx, rx) = futures::channel::oneshot::channel();
    let state = Arc::new(Mutex::new(None));
    let wrapped = Ctx::wrap(Foreign {
        rx: Mutex::new(Some(rx)),
        done: state.clone(),
    });
    let kids: Vec<_> = (0..10).map(|_| wrapped.with_cancel()).collect();
    assert_eq!(watchers_started(), before + 1);
    let mut d = kids[3].0.done();
    assert!((&mut d).now_or_never().is_none());
    *state.lock().unwrap() = Some(Error::Canceled);
    tx.send(()).unwrap();
    // The watcher re-polls on ctx-core's watcher thread: every child follows a moment later.
    assert_eq!(block_on(d), Error::Canceled);
    for (k, _) in &kids {
        assert_eq!(k.wait_blocking(), Error::Canceled);
    }
}

/// The same, with a future that promises to wake outside its locks: children are done before
/// `send` returns, with no watcher thread involved.
#[test]
fn wrapping_an_inline_foreign_done_cancels_children_before_the_wake_returns() {
    struct Inline {
        rx: Mutex<Option<futures::channel::oneshot::Receiver<()>>>,
    }
    impl Context for Inline {
        fn deadline(&self) -> Option<std::time::Instant> {
            None
        }
        fn done(&self) -> Done {
            match self.rx.lock().unwrap().take() {
                Some(rx) => ctx_core::test_util::done_inline(async move {
                    let _ = rx.await;
                    Error::Canceled
                }),
                None => Done::never(),
            }
        }
        fn err(&self) -> Option<Error> {
            None
        }
        fn cause(&self) -> Option<ctx_core::Cause> {
            None
        }
        fn value_any(&self, _key: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
            None
        }
    }
    let _g = serial();
    let (tx, rx) = futures::channel::oneshot::channel();
    let wrapped = Ctx::wrap(Inline {
        rx: Mutex::new(Some(rx)),
    });
    let (child, _h) = wrapped.with_cancel();
    let (grandchild, _g2) = child.with_cancel();
    tx.send(()).unwrap();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(grandchild.err(), Some(Error::Canceled));
}

#[test]
#[cfg_attr(miri, ignore = "arms a real timer: its thread outlives the test")]
fn run_of_a_ready_future_on_a_deadline_context_arms_no_timer() {
    let _g = serial();
    let before = timers_armed();
    let (ctx, _cancel) = Ctx::background().with_timeout(Duration::from_secs(60));
    assert_eq!(block_on(ctx.run(async { 7 })), Ok(7));
    assert_eq!(timers_armed(), before, "a ready future armed the deadline timer");
    // A pending one does wait on the context, and so arms it.
    let mut pending = Box::pin(ctx.run(std::future::pending::<()>()));
    assert!((&mut pending).now_or_never().is_none());
    assert_eq!(timers_armed(), before + 1);
}
