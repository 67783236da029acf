//! ctx on tokio's paused clock: no real waiting, exact instants.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use ctx_tokio::clock::Timer;
use ctx_tokio::{Clock, Ctx, Error, TokioClock};

const HOUR: Duration = Duration::from_secs(3600);

fn tokio_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// An after-func fired by a timer runs on a thread of its own: wait for it (in real time,
/// bounded, so a lost after-func fails instead of hanging).
fn after_func_ran(rx: &mpsc::Receiver<()>, what: &str) {
    rx.recv_timeout(Duration::from_secs(10)).expect(what);
}

#[tokio::test(start_paused = true)]
async fn with_timeout_deadline_is_tokio_now_plus_the_timeout() {
    tokio::time::advance(HOUR).await; // tokio's clock now runs an hour ahead of the system's
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(5));
    assert_eq!(ctx.deadline(), Some(tokio_now() + Duration::from_secs(5)));
    assert_eq!(ctx.now(), tokio_now());
    assert_eq!(ctx.remaining(), Some(Duration::from_secs(5)));
}

#[tokio::test(start_paused = true)]
async fn paused_time_is_read_right_from_a_thread_outside_the_runtime() {
    tokio::time::advance(HOUR).await;
    let root = ctx_tokio::background();
    let expected = tokio_now();
    let (now, deadline) = std::thread::spawn(move || {
        let (ctx, _cancel) = root.with_timeout(Duration::from_secs(7));
        (ctx.now(), ctx.deadline())
    })
    .join()
    .unwrap();
    assert_eq!(now, expected);
    assert_eq!(deadline, Some(expected + Duration::from_secs(7)));
}

#[tokio::test(start_paused = true)]
async fn advancing_to_the_deadline_fires_after_funcs() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(10));
    let (tx, rx) = mpsc::channel();
    let _stop = ctx.after_func(move || tx.send(()).unwrap());
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(ctx.err(), None, "fired a second early");
    tokio::time::advance(Duration::from_secs(1)).await;
    // Done at once; the after-func runs on a thread of its own, soon after.
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    after_func_ran(&rx, "the timer did not fire at the deadline");
    assert!(rx.try_recv().is_err(), "an after-func ran twice");
}

#[tokio::test(start_paused = true)]
async fn done_resolves_by_auto_advance_without_real_waiting() {
    let real = Instant::now();
    let start = tokio_now();
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(HOUR);
    assert_eq!(ctx.done().await, Error::DeadlineExceeded);
    assert!(tokio_now() >= start + HOUR);
    assert!(real.elapsed() < Duration::from_secs(2), "waited for real");
}

#[tokio::test(start_paused = true)]
async fn run_and_select_follow_paused_time() {
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(60));
    let won = tokio::select! {
        err = ctx.done() => Some(err),
        _ = tokio::time::sleep(Duration::from_secs(61)) => None,
    };
    assert_eq!(won, Some(Error::DeadlineExceeded));
    let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(60));
    let quick = ctx.run(tokio::time::sleep(Duration::from_secs(59))).await;
    assert_eq!(quick, Ok(()));
    let slow = ctx.run(tokio::time::sleep(Duration::from_secs(2))).await;
    assert_eq!(slow, Err(Error::DeadlineExceeded));
}

#[tokio::test(start_paused = true)]
async fn a_timer_armed_from_a_thread_outside_the_runtime_is_tokios() {
    let root = ctx_tokio::background();
    let (tx, rx) = mpsc::channel();
    // The timer is created on a plain thread: the clock must enter the runtime to make it.
    let (ctx, cancel) = std::thread::spawn(move || {
        let (ctx, cancel) = root.with_timeout(HOUR);
        let _stop = ctx.after_func(move || tx.send(()).unwrap());
        (ctx, cancel)
    })
    .join()
    .unwrap();
    tokio::time::advance(HOUR).await; // paused: only tokio's timer can see this hour pass
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    after_func_ran(&rx, "the timer was not tokio's");
    drop(cancel);
}

// ===== timers are armed lazily and released =====

/// Wraps [`TokioClock`] and counts the sleep futures it made and those still alive.
#[derive(Debug)]
struct CountingClock {
    inner: TokioClock,
    made: AtomicUsize,
    live: Arc<AtomicUsize>,
}

struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        self.inner.now()
    }
    fn sleep_until(&self, deadline: Instant) -> Timer {
        self.made.fetch_add(1, Ordering::SeqCst);
        self.live.fetch_add(1, Ordering::SeqCst);
        let guard = LiveGuard(self.live.clone());
        let sleep = self.inner.sleep_until(deadline);
        Box::pin(async move {
            let _guard = guard;
            sleep.await;
        })
    }
}

fn counting_root() -> (Ctx, Arc<CountingClock>) {
    let clock = Arc::new(CountingClock {
        inner: TokioClock::current(),
        made: AtomicUsize::new(0),
        live: Arc::new(AtomicUsize::new(0)),
    });
    (Ctx::background_with_clock(clock.clone()), clock)
}

#[tokio::test(start_paused = true)]
async fn no_timer_exists_for_a_deadline_nobody_waits_for() {
    let (root, clock) = counting_root();
    let (ctx, _cancel) = root.with_timeout(HOUR);
    let (_child, _c) = ctx.with_cancel();
    tokio::time::advance(HOUR / 2).await;
    assert_eq!(ctx.err(), None);
    assert_eq!(clock.made.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_armed_timer_is_released_when_the_context_is_canceled() {
    let (root, clock) = counting_root();
    let (ctx, cancel) = root.with_timeout(HOUR);
    let _stop = ctx.after_func(|| {});
    assert_eq!(clock.live.load(Ordering::SeqCst), 1);
    cancel.cancel();
    assert_eq!(clock.live.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn an_armed_timer_is_released_when_the_context_is_dropped() {
    let (root, clock) = counting_root();
    let (ctx, cancel) = root.with_timeout(HOUR);
    cancel.disarm();
    let waiter = tokio::spawn(ctx.done());
    tokio::task::yield_now().await; // the task polls `done()`: the timer is armed
    assert_eq!(clock.live.load(Ordering::SeqCst), 1);
    waiter.abort();
    let _ = waiter.await;
    drop(ctx);
    assert_eq!(clock.live.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn a_fired_timer_is_released_too() {
    let (root, clock) = counting_root();
    let (ctx, _cancel) = root.with_timeout(HOUR);
    assert_eq!(ctx.done().await, Error::DeadlineExceeded);
    assert_eq!(clock.made.load(Ordering::SeqCst), 1);
    assert_eq!(clock.live.load(Ordering::SeqCst), 0);
}
