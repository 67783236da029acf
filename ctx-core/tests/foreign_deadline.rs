//! A custom context whose `deadline()` is set but whose `done()` never fires. One rule for it,
//! on every path: the wrap is done with `DeadlineExceeded` at that deadline on its clock, as a
//! `with_cancel` child of it always was. So its `err()`, its `done()`, a `sleep` on it or on a
//! value child, and its children all agree.

use std::any::{Any, TypeId};
use std::pin::pin;
use std::sync::mpsc;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use ctx_core::{Cause, Context, Ctx, Done, Error};
use ctx_testkit::MockClock;
use futures::task::noop_waker_ref;

/// A deadline 50 ms away and a `done()` that never fires; its values (the clock among them) are
/// those of a `MockClock` root.
#[derive(Debug)]
struct NeverDone {
    inner: Ctx,
    deadline: Instant,
}

impl Context for NeverDone {
    fn deadline(&self) -> Option<Instant> {
        Some(self.deadline)
    }
    fn done(&self) -> Done {
        Done::never()
    }
    fn err(&self) -> Option<Error> {
        None
    }
    fn cause(&self) -> Option<Cause> {
        None
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.inner.value_any(key)
    }
}

fn wrapped(clock: &MockClock) -> Ctx {
    Ctx::wrap(NeverDone {
        inner: clock.background(),
        deadline: clock.now() + Duration::from_millis(50),
    })
}

#[test]
fn err_and_done_end_at_the_foreign_deadline() {
    let clock = MockClock::new();
    let w = wrapped(&clock);
    let mut cx = TaskContext::from_waker(noop_waker_ref());
    let mut done = pin!(w.done());
    assert!(done.as_mut().poll(&mut cx).is_pending());
    assert_eq!(w.err(), None);
    clock.advance(Duration::from_millis(50));
    assert_eq!(done.as_mut().poll(&mut cx), Poll::Ready(Error::DeadlineExceeded));
    assert_eq!(w.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_sleep_on_the_wrap_or_a_value_child_ends_at_the_deadline() {
    let clock = MockClock::new();
    let w = wrapped(&clock);
    let v = w.with_value(7u8);
    let start = clock.now();
    let out = clock.block_on(async {
        let a = w.sleep(Duration::from_millis(200)).await;
        let b = v.sleep(Duration::from_millis(100)).await;
        (a, b)
    });
    assert_eq!(out, (Err(Error::DeadlineExceeded), Err(Error::DeadlineExceeded)));
    assert_eq!(clock.now() - start, Duration::from_millis(50));
}

#[test]
fn sleep_blocking_on_the_wrap_ends_at_the_deadline() {
    let clock = MockClock::new();
    let w = wrapped(&clock);
    let (tx, rx) = mpsc::channel();
    let sleeper = std::thread::spawn(move || tx.send(w.sleep_blocking(Duration::from_millis(200))));
    let bound = Instant::now() + Duration::from_secs(10); // a watchdog, in real time
    while clock.pending_timers() == 0 && Instant::now() < bound {
        std::thread::yield_now(); // until the sleeper waits
    }
    clock.advance(Duration::from_millis(50));
    let got = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("sleep_blocking never ended");
    assert_eq!(got, Err(Error::DeadlineExceeded));
    sleeper.join().unwrap().unwrap();
    // (Without a deadline timer the sleeper would never end: the watchdog above fails the test
    // and the thread is left behind.)
}

#[test]
fn children_agree_with_the_wrap() {
    let clock = MockClock::new();
    let w = wrapped(&clock);
    let (child, _h) = w.with_cancel();
    clock.advance(Duration::from_millis(50)); // nobody waits: every answer is a lazy check
    assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    assert_eq!(w.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        w.cause().map(|c| c.to_string()),
        Some(Error::DeadlineExceeded.to_string())
    );
}
