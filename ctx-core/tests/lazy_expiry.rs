//! A deadline that has passed but whose timer has not fired is noticed by whoever reads the
//! context first: `err()`, `is_done()`, `cause()` or `Debug` then expire it right there, so
//! its wakers are woken and its after-funcs run on the reading thread, before the read returns.

use std::pin::pin;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use ctx_core::{Ctx, Error};

mod common;
use common::StuckClock;

/// Records the thread that woke it.
#[derive(Default)]
struct ThreadWaker(Mutex<Option<ThreadId>>);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        *self.0.lock().unwrap() = Some(thread::current().id());
    }
}

/// Makes a context whose 1 s deadline has passed unnoticed, with a pending `done()` and an
/// after-func, then runs `read` on a thread of its own; checks that the waker and the
/// after-func both ran on that thread, before `read` returned.
fn expires_on_the_reading_thread(read: fn(&Ctx)) {
    let clock = Arc::new(StuckClock::new());
    let root = Ctx::background_with_clock(clock.clone());
    let (ctx, _cancel) = root.with_timeout(Duration::from_secs(1));

    let after_func_thread = Arc::new(Mutex::new(None));
    let record = after_func_thread.clone();
    let _after = ctx.after_func(move || *record.lock().unwrap() = Some(thread::current().id()));
    let waker = Arc::new(ThreadWaker::default());
    let mut done = pin!(ctx.done());
    let poll = done
        .as_mut()
        .poll(&mut TaskContext::from_waker(&Waker::from(waker.clone())));
    assert!(poll.is_pending());

    clock.advance(Duration::from_secs(2));
    assert_eq!(
        *after_func_thread.lock().unwrap(),
        None,
        "no timer fires on this clock"
    );

    let (tx, rx) = mpsc::channel();
    let reader_ctx = ctx.clone();
    let ran = after_func_thread.clone();
    let woke = waker.clone();
    let reader = thread::spawn(move || {
        read(&reader_ctx);
        // Both ran before `read` returned.
        let seen = (*ran.lock().unwrap(), *woke.0.lock().unwrap());
        tx.send((thread::current().id(), seen)).unwrap();
    });
    let (reader_id, (after_func_on, woken_on)) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("watchdog: the read never returned");
    reader.join().unwrap();
    assert_eq!(
        after_func_on,
        Some(reader_id),
        "the after-func ran on the reading thread"
    );
    assert_eq!(
        woken_on,
        Some(reader_id),
        "the waker was woken on the reading thread"
    );
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    let poll = done.as_mut().poll(&mut TaskContext::from_waker(Waker::noop()));
    assert_eq!(poll, Poll::Ready(Error::DeadlineExceeded));
}

#[test]
fn err_expires_a_passed_deadline_on_the_reading_thread() {
    expires_on_the_reading_thread(|ctx| assert_eq!(ctx.err(), Some(Error::DeadlineExceeded)));
}

#[test]
fn is_done_expires_a_passed_deadline_on_the_reading_thread() {
    expires_on_the_reading_thread(|ctx| assert!(ctx.is_done()));
}

#[test]
fn cause_expires_a_passed_deadline_on_the_reading_thread() {
    expires_on_the_reading_thread(|ctx| {
        let cause = ctx.cause().unwrap();
        assert_eq!(cause.downcast_ref::<Error>(), Some(&Error::DeadlineExceeded));
    });
}

#[test]
fn debug_expires_a_passed_deadline_on_the_reading_thread() {
    expires_on_the_reading_thread(|ctx| {
        let shown = format!("{ctx:?}");
        assert!(shown.contains("DeadlineExceeded"), "{shown}");
    });
}
