//! An after-func never holds up a wake-up: a cancel wakes every waiter of the subtree it ends
//! before it runs any after-func, so an after-func may block until those waiters have acted (a
//! shutdown drain does) — whether the cancel comes from a handle, a deadline fired by the clock,
//! or a deadline noticed by a read (lazy expiry).
//!
//! Each scenario: `server` has two children, each awaited by a worker thread that has already
//! registered its waker; `server.after_func(f)` where `f` waits (with a bound, so that a
//! regression fails instead of hanging) until both workers say they woke. Then `server`'s parent
//! ends.

use std::pin::pin;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_testkit::MockClock;

mod common;
use common::StuckClock;

/// How long `f` waits for a worker before it gives up (and the test fails).
const BOUND: Duration = Duration::from_secs(10);

/// Unparks the worker's thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Starts a worker on `ctx`: it polls `ctx.done()` once (so its waker is registered when this
/// returns), then parks until woken and reports the error it saw.
fn worker(ctx: Ctx, woke: mpsc::Sender<Error>) -> thread::JoinHandle<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let waker = Waker::from(Arc::new(Unpark(thread::current())));
        let mut cx = TaskContext::from_waker(&waker);
        let mut done = pin!(ctx.done());
        assert!(done.as_mut().poll(&mut cx).is_pending(), "done before the cancel");
        ready_tx.send(()).unwrap();
        let err = loop {
            if let Poll::Ready(e) = done.as_mut().poll(&mut cx) {
                break e;
            }
            thread::park();
        };
        woke.send(err).unwrap();
    });
    ready_rx.recv_timeout(BOUND).expect("the worker never registered");
    handle
}

/// Sets up `server` under `parent` with two waiting workers and a blocking after-func, runs
/// `end` (which must end `parent`), and checks that `f` saw both workers wake.
fn after_func_sees_its_waiters_woken(parent: &Ctx, end: impl FnOnce()) {
    let (server, _server_cancel) = parent.with_cancel();
    let (woke_tx, woke_rx) = mpsc::channel();
    let mut handles = Vec::new();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (w, h) = server.with_cancel();
            handles.push(h); // open until `parent` ends
            worker(w, woke_tx.clone())
        })
        .collect();
    let seen: Arc<Mutex<Option<Vec<Error>>>> = Arc::default();
    let record = seen.clone();
    let _f = server.after_func(move || {
        let woke = wait_for(&woke_rx, 2);
        *record.lock().unwrap() = Some(woke);
    });

    end();

    let seen = seen.lock().unwrap().take();
    let woke = seen.expect("the after-func did not run before the cancel returned");
    assert_eq!(
        woke.len(),
        2,
        "the after-func ran before the waiters of its own cancel were woken: it saw {woke:?}"
    );
    for w in workers {
        w.join().unwrap();
    }
    drop(handles);
}

/// Receives up to `n` reports, each within `BOUND`.
fn wait_for(rx: &Receiver<Error>, n: usize) -> Vec<Error> {
    (0..n).map_while(|_| rx.recv_timeout(BOUND).ok()).collect()
}

#[test]
fn a_handles_cancel_wakes_every_waiter_before_any_after_func() {
    let (shutdown, cancel) = Ctx::background().with_cancel();
    after_func_sees_its_waiters_woken(&shutdown, || cancel.cancel());
}

#[test]
fn a_deadline_fired_by_the_clock_wakes_every_waiter_before_any_after_func() {
    let clock = MockClock::new();
    let (shutdown, _cancel) = clock.background().with_timeout(Duration::from_secs(1));
    after_func_sees_its_waiters_woken(&shutdown, || clock.advance(Duration::from_secs(1)));
}

#[test]
fn a_lazy_expiry_wakes_every_waiter_before_any_after_func() {
    let clock = Arc::new(StuckClock::new());
    let (shutdown, _cancel) = Ctx::background_with_clock(clock.clone()).with_timeout(Duration::from_secs(1));
    after_func_sees_its_waiters_woken(&shutdown, || {
        clock.advance(Duration::from_secs(2));
        assert_eq!(shutdown.err(), Some(Error::DeadlineExceeded));
    });
}
