//! Futures that wake themselves inside their own `poll`, as timers and as foreign `done()`s:
//! the thread that polls or wakes them must get control back, and the deadline or the cancel
//! must still land. These checks take a clock (not a [`Runtime`](super::Runtime)), because
//! they wrap its timers.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use ctx_core::{Clock, Ctx, Done, Error, Forward};

use super::BOUND;
use crate::SelfWaking;

/// Runs `f` on a thread of its own and returns its result, or panics with `what` if it does
/// not return within [`BOUND`] (the thread is then left spinning: the test has failed).
fn returns<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND)
        .unwrap_or_else(|_| panic!("{what}: the thread never got control back"))
}

/// Waits (bounded) until `polls` stops growing: the future is no longer being polled.
fn polling_stops(polls: impl Fn() -> usize, what: &str) {
    let limit = Instant::now() + BOUND;
    let mut last = polls();
    loop {
        thread::sleep(Duration::from_millis(20));
        let now = polls();
        if now == last {
            return;
        }
        assert!(Instant::now() < limit, "{what}: still polled after it was done");
        last = now;
    }
}

/// A timer that wakes itself many times before it waits: arming it returns at once, and the
/// deadline fires. `advance` lets `d` pass on `clock` (a mock's `advance`, or a real sleep).
///
/// # Examples
///
/// ```
/// use ctx_testkit::{MockClock, conformance::self_waking_timer_fires};
/// let clock = MockClock::new();
/// self_waking_timer_fires(clock.clone(), |d| clock.advance(d));
/// ```
pub fn self_waking_timer_fires<C: Clock + Clone>(clock: C, advance: impl Fn(Duration)) {
    let clock = SelfWaking::clock(clock, Some(1_000));
    let root = Ctx::background_with_clock(Arc::new(clock.clone()));
    let d = Duration::from_millis(20);
    let (ctx, _cancel) = root.with_timeout(d);
    let (tx, rx) = mpsc::channel();
    let armed = ctx.clone();
    // The first poll of the timer happens here, on the registering thread.
    let _stop = returns("arming a self-waking timer", move || {
        armed.after_func(move || tx.send(()).unwrap())
    });
    // Its wakes are served elsewhere (not by the thread above); let them run out, so that the
    // timer itself (not a lazy check of the clock) fires the deadline.
    let limit = Instant::now() + BOUND;
    while clock.polls() <= 1_000 {
        assert!(
            Instant::now() < limit,
            "the self-woken timer was not polled again"
        );
        thread::yield_now();
    }
    advance(d);
    rx.recv_timeout(BOUND)
        .expect("the after-func of a self-waking timer's deadline never ran");
    let waiter = ctx.clone();
    let err = returns("waiting on a self-waking timer", move || waiter.wait_blocking());
    assert_eq!(err, Error::DeadlineExceeded);
}

/// A timer that wakes itself forever (and so never completes): arming it returns at once, a
/// cancel still lands (after-funcs run), the lazy deadline check still answers, and once the
/// context is done nobody polls the timer any more.
///
/// # Examples
///
/// ```
/// use ctx_testkit::{MockClock, conformance::self_waking_timer_forever_does_not_spin};
/// let clock = MockClock::new();
/// self_waking_timer_forever_does_not_spin(clock.clone(), |d| clock.advance(d));
/// ```
pub fn self_waking_timer_forever_does_not_spin<C: Clock + Clone>(clock: C, advance: impl Fn(Duration)) {
    let clock = SelfWaking::clock(clock, None);
    let root = Ctx::background_with_clock(Arc::new(clock.clone()));

    // Canceled by hand.
    let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
    let (tx, rx) = mpsc::channel();
    let armed = ctx.clone();
    let _stop = returns("arming a timer that wakes itself forever", move || {
        armed.after_func(move || tx.send(()).unwrap())
    });
    returns("canceling while its timer wakes itself", move || cancel.cancel());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    rx.recv_timeout(BOUND)
        .expect("the after-func of a canceled context never ran");
    polling_stops(|| clock.polls(), "a timer of a canceled context");

    // Its deadline passes: the clock says so even though the timer never completes.
    let d = Duration::from_millis(20);
    let (ctx, _cancel) = root.with_timeout(d);
    let armed = ctx.clone();
    let _stop = returns("arming a timer that wakes itself forever", move || {
        armed.after_func(|| {})
    });
    advance(d);
    let limit = Instant::now() + BOUND;
    while ctx.err().is_none() {
        assert!(Instant::now() < limit, "the deadline never showed in err()");
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    polling_stops(|| clock.polls(), "a timer of an expired context");
}

/// A custom context whose `done()` wakes itself `times` times (forever with `None`) before it
/// waits for `parent`.
struct Hostile {
    parent: Ctx,
    times: Option<usize>,
    polls: Arc<AtomicUsize>,
}

impl Forward for Hostile {
    fn inner(&self) -> &Ctx {
        &self.parent
    }
    fn done(&self) -> Done {
        SelfWaking::done(self.times, self.parent.done(), self.polls.clone())
    }
}

/// `Ctx::wrap` of a custom context whose `done()` wakes itself: wrapping returns at once; when
/// the `done()` completes after many self-wakes, the wrap is done; when it wakes itself
/// forever, dropping the wrap stops the polling.
///
/// # Examples
///
/// ```
/// use ctx_testkit::{MockClock, conformance::self_waking_foreign_done_does_not_spin};
/// self_waking_foreign_done_does_not_spin(MockClock::new().background());
/// ```
pub fn self_waking_foreign_done_does_not_spin(root: Ctx) {
    // Wakes itself 1 000 times, then follows its parent.
    let (parent, cancel) = root.with_cancel();
    let polls = Arc::new(AtomicUsize::new(0));
    let custom = Hostile {
        parent,
        times: Some(1_000),
        polls: polls.clone(),
    };
    let wrapped = returns("wrapping a self-waking done()", move || Ctx::wrap(custom));
    cancel.cancel();
    let waiter = wrapped.clone();
    let err = returns("waiting on a wrapped self-waking done()", move || {
        waiter.wait_blocking()
    });
    assert_eq!(err, Error::Canceled);
    assert_eq!(wrapped.err(), Some(Error::Canceled));

    // Wakes itself forever.
    let (parent, _cancel) = root.with_cancel();
    let polls = Arc::new(AtomicUsize::new(0));
    let custom = Hostile {
        parent,
        times: None,
        polls: polls.clone(),
    };
    let wrapped = returns("wrapping a done() that wakes itself forever", move || {
        Ctx::wrap(custom)
    });
    let (child, cancel_child) = wrapped.with_cancel();
    returns("canceling a child of it", move || cancel_child.cancel());
    assert_eq!(child.err(), Some(Error::Canceled));
    drop((child, wrapped));
    polling_stops(
        || polls.load(Ordering::SeqCst),
        "a foreign done() of a dropped wrap",
    );
}
