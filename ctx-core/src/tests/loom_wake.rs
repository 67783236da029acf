//! cancel ⇄ `done()` poll: no lost wake-up; cancel ⇄ `Done` drop; the watch protocol.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::{Ctx, Done, Error};

/// A waker that counts its wakes (the other loom models use it too).
pub(super) struct Flag(pub(super) AtomicUsize);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Polls `done` once with `flag`'s waker.
pub(super) fn poll_once(done: &mut Done, flag: &Arc<Flag>) -> Poll<Error> {
    let waker = Waker::from(flag.clone());
    Pin::new(done).poll(&mut Context::from_waker(&waker))
}

/// The poll either sees the cancel or registers a waker the cancel then wakes: one of the two
/// always happens, so a task parked on `done()` is never forgotten.
#[test]
fn cancel_vs_done_poll_never_loses_the_wakeup() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let flag = Arc::new(Flag(AtomicUsize::new(0)));
        let f = flag.clone();
        let t = thread::spawn(move || {
            let mut done = ctx.done();
            let first = poll_once(&mut done, &f);
            (first, done)
        });
        cancel.cancel();
        let (first, mut done) = t.join().unwrap();
        match first {
            Poll::Ready(e) => assert_eq!(e, Error::Canceled),
            Poll::Pending => {
                assert_eq!(flag.0.load(Ordering::SeqCst), 1, "registered waker not woken");
                assert_eq!(poll_once(&mut done, &flag), Poll::Ready(Error::Canceled));
            }
        }
    });
}

/// A `Done` dropped while the context is canceled neither wakes a stale waker twice nor
/// leaves its slot behind.
#[test]
fn cancel_vs_done_drop_is_clean() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let flag = Arc::new(Flag(AtomicUsize::new(0)));
        let mut done = ctx.done();
        assert_eq!(poll_once(&mut done, &flag), Poll::Pending);
        let t = thread::spawn(move || drop(done));
        cancel.cancel();
        t.join().unwrap();
        assert!(flag.0.load(Ordering::SeqCst) <= 1);
        assert_eq!(crate::tree::waiter_count(&ctx.node), 0);
    });
}

/// A first waiter, kept inline (invariant 23), moved to the entries by a second registration
/// while a cancel races both: the first is woken exactly once wherever the cancel found it, and
/// the second either saw the cancel or is woken too; nothing is left behind.
#[test]
fn inline_waiter_moving_vs_cancel_wakes_both_once() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let first = Arc::new(Flag(AtomicUsize::new(0)));
        let mut first_done = ctx.done();
        assert_eq!(poll_once(&mut first_done, &first), Poll::Pending);
        let second = Arc::new(Flag(AtomicUsize::new(0)));
        let s = second.clone();
        let c = ctx.clone();
        let t = thread::spawn(move || {
            let mut done = c.done();
            let polled = poll_once(&mut done, &s);
            (polled, done)
        });
        cancel.cancel();
        let (polled, mut second_done) = t.join().unwrap();
        assert_eq!(first.0.load(Ordering::SeqCst), 1, "the first waiter, woken once");
        match polled {
            Poll::Ready(e) => assert_eq!(e, Error::Canceled),
            Poll::Pending => {
                assert_eq!(
                    second.0.load(Ordering::SeqCst),
                    1,
                    "the second waiter, woken once"
                );
                assert_eq!(poll_once(&mut second_done, &second), Poll::Ready(Error::Canceled));
            }
        }
        assert_eq!(poll_once(&mut first_done, &first), Poll::Ready(Error::Canceled));
        assert_eq!(crate::tree::waiter_count(&ctx.node), 0);
    });
}

/// A re-poll by the task whose waker is registered takes no lock; racing a cancel, it answers
/// `Ready`, or `Pending` with the registered waker woken exactly once.
#[test]
fn repoll_without_lock_vs_cancel_never_loses_the_wakeup() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let flag = Arc::new(Flag(AtomicUsize::new(0)));
        let waker = Waker::from(flag.clone());
        let mut done = ctx.done();
        let poll = |done: &mut Done, waker: &Waker| Pin::new(done).poll(&mut Context::from_waker(waker));
        assert_eq!(poll(&mut done, &waker), Poll::Pending);
        let t = thread::spawn(move || {
            let again = poll(&mut done, &waker);
            (again, done, waker)
        });
        cancel.cancel();
        let (again, mut done, waker) = t.join().unwrap();
        assert_eq!(
            flag.0.load(Ordering::SeqCst),
            1,
            "the registered waker, woken once"
        );
        if let Poll::Ready(e) = again {
            assert_eq!(e, Error::Canceled);
        }
        assert_eq!(poll(&mut done, &waker), Poll::Ready(Error::Canceled));
    });
}

/// A foreign `done()` completing while the wrapped context is dropped: the watcher either
/// delivers the cancel or is canceled; nothing hangs or double-fires.
#[test]
fn foreign_done_firing_vs_wrapper_drop() {
    struct Foreign {
        ready: Arc<AtomicUsize>,
        waker: Arc<loom::sync::Mutex<Option<Waker>>>,
    }
    impl Future for Foreign {
        type Output = Error;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Error> {
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            if self.ready.load(Ordering::SeqCst) == 1 {
                Poll::Ready(Error::Canceled)
            } else {
                Poll::Pending
            }
        }
    }
    loom::model(|| {
        let ready = Arc::new(AtomicUsize::new(0));
        let waker = Arc::new(loom::sync::Mutex::new(None::<Waker>));
        let done = Done::new(Foreign {
            ready: ready.clone(),
            waker: waker.clone(),
        });
        struct F(std::sync::Mutex<Option<Done>>);
        impl crate::Context for F {
            fn deadline(&self) -> Option<std::time::Instant> {
                None
            }
            fn done(&self) -> Done {
                self.0.lock().unwrap().take().unwrap_or_else(Done::never)
            }
            fn err(&self) -> Option<Error> {
                None
            }
            fn cause(&self) -> Option<crate::Cause> {
                None
            }
            fn value_any(&self, _: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
                None
            }
        }
        let wrapped = Ctx::wrap(F(std::sync::Mutex::new(Some(done))));
        let (child, _h) = wrapped.with_cancel();
        let t = thread::spawn(move || {
            ready.store(1, Ordering::SeqCst);
            let w = waker.lock().unwrap().take();
            if let Some(w) = w {
                w.wake();
            }
        });
        drop(wrapped);
        t.join().unwrap();
        // The child keeps the bridge alive but not the watcher: either the wake arrived before
        // the wrapper was dropped (child canceled) or the watcher was canceled first.
        let _ = child.err();
    });
}
