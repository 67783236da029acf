//! Checks of `Ctx::sleep`, `sleep_until` and `sleep_blocking` on the runtime's clock.
//!
//! On a mocked clock ([`Runtime::is_mock`]: `MockClock`, tokio's paused time) the sleeps are
//! polled by hand with a counting waker and time is moved with [`Runtime::advance`], so the
//! checks see exact instants and exact wake counts. On a real clock the sleep runs in a
//! spawned task and the check waits at most [`BOUND`](super::BOUND) for its answer.

use std::future::Future;
use std::sync::mpsc;
use std::time::Duration;

use ctx_core::{Ctx, Error};

use super::{Runtime, bg, expect, past_tick, tick};
use crate::Probe;

const HOUR: Duration = Duration::from_secs(3600);

/// Runs `fut` as a task of `rt` and returns a receiver of its output.
fn spawn_answer<R, F>(rt: &R, fut: F) -> mpsc::Receiver<F::Output>
where
    R: Runtime,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    rt.spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx
}

/// `sleep(d)` is `Ok(())` once `d` has passed on the context's clock, and not before: on a
/// mocked clock still pending 1 ns before, woken exactly once at the instant.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_is_ok_once_the_duration_has_passed(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_is_ok_once_the_duration_has_passed<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_cancel();
    let d = tick(rt);
    let start = ctx.now();
    if rt.is_mock() {
        let mut sleep = Probe::new(ctx.sleep(d));
        sleep.assert_pending();
        rt.advance(d - Duration::from_nanos(1));
        sleep.assert_woken(0);
        sleep.assert_pending();
        rt.advance(Duration::from_nanos(1));
        sleep.assert_woken(1);
        assert_eq!(sleep.assert_ready(), Ok(()));
        assert_eq!(ctx.now(), start + d);
    } else {
        let c = ctx.clone();
        let rx = spawn_answer(rt, async move { (c.sleep(d).await, c.now()) });
        let (out, at) = expect(rt, false, &rx, "a sleep on the runtime's clock");
        assert_eq!(out, Ok(()));
        assert!(at >= start + d, "the sleep ended {:?} early", start + d - at);
    }
}

/// `sleep_until(t)` is `Ok(())` once `t` has passed on the context's clock; a `t` that has
/// passed already is `Ok(())` on the first poll.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_until_is_ok_at_the_instant(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_until_is_ok_at_the_instant<R: Runtime>(rt: &R) {
    let ctx = rt.background();
    assert_eq!(Probe::new(ctx.sleep_until(ctx.now())).assert_ready(), Ok(()));
    let at = ctx.now() + tick(rt);
    if rt.is_mock() {
        let mut sleep = Probe::new(ctx.sleep_until(at));
        sleep.assert_pending();
        rt.advance(tick(rt));
        sleep.assert_woken(1);
        assert_eq!(sleep.assert_ready(), Ok(()));
    } else {
        let c = ctx.clone();
        let rx = spawn_answer(rt, async move { (c.sleep_until(at).await, c.now()) });
        let (out, now) = expect(rt, false, &rx, "a sleep_until on the runtime's clock");
        assert_eq!(out, Ok(()));
        assert!(now >= at, "the sleep ended {:?} early", at - now);
    }
}

/// A sleep is `Err(Canceled)` as soon as its context (or an ancestor) is canceled, woken once,
/// long before its end.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_is_err_as_soon_as_the_context_is_canceled(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_is_err_as_soon_as_the_context_is_canceled<R: Runtime>(rt: &R) {
    let (parent, cancel) = rt.background().with_cancel();
    let ctx = parent.with_value(1u8);
    let mut sleep = Probe::new(ctx.sleep(HOUR));
    sleep.assert_pending();
    // A task too, where tasks run by themselves (on a mocked clock they may wait for the
    // test to drive the runtime).
    let task = (!rt.is_mock()).then(|| spawn_answer(rt, ctx.sleep(HOUR)));
    std::thread::yield_now(); // give the task a chance to be waiting: both orders must work
    cancel.cancel();
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::Canceled));
    if let Some(rx) = task {
        assert_eq!(
            expect(rt, false, &rx, "a spawned sleep ended by a cancel"),
            Err(Error::Canceled)
        );
    }
}

/// A sleep on a context that is done already is `Err` on its first poll, even `sleep(ZERO)`;
/// `sleep(ZERO)` on a live context is `Ok(())` on its first poll.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_answers_on_the_first_poll_when_it_can(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_answers_on_the_first_poll_when_it_can<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    assert_eq!(Probe::new(ctx.sleep(Duration::ZERO)).assert_ready(), Ok(()));
    cancel.cancel();
    assert_eq!(Probe::new(ctx.sleep(HOUR)).assert_ready(), Err(Error::Canceled));
    assert_eq!(
        Probe::new(ctx.sleep(Duration::ZERO)).assert_ready(),
        Err(Error::Canceled)
    );
    let (past, _c) = rt.background().with_timeout(Duration::ZERO);
    assert_eq!(
        Probe::new(past.sleep(Duration::ZERO)).assert_ready(),
        Err(Error::DeadlineExceeded)
    );
}

/// When the context's deadline comes before the end of the sleep, the sleep ends at the
/// deadline with `Err(DeadlineExceeded)`.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_ends_at_an_earlier_deadline(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_ends_at_an_earlier_deadline<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_timeout(tick(rt));
    let deadline = ctx.deadline().unwrap();
    if rt.is_mock() {
        let mut sleep = Probe::new(ctx.sleep(HOUR));
        sleep.assert_pending();
        rt.advance(tick(rt) - Duration::from_nanos(1));
        sleep.assert_woken(0);
        rt.advance(Duration::from_nanos(1));
        sleep.assert_woken(1);
        assert_eq!(sleep.assert_ready(), Err(Error::DeadlineExceeded));
        assert_eq!(ctx.now(), deadline);
    } else {
        let c = ctx.clone();
        let rx = spawn_answer(rt, async move { (c.sleep(HOUR).await, c.now()) });
        let (out, at) = expect(rt, false, &rx, "a sleep cut short by the deadline");
        assert_eq!(out, Err(Error::DeadlineExceeded));
        assert!(
            at >= deadline,
            "the sleep ended {:?} before the deadline",
            deadline - at
        );
    }
}

/// A sleep too long for `Instant` never panics and never ends by itself; a cancel ends it.
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::huge_sleep_never_panics(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn huge_sleep_never_panics<R: Runtime>(rt: &R) {
    let (ctx, cancel) = rt.background().with_cancel();
    let mut sleep = Probe::new(ctx.sleep(Duration::MAX));
    sleep.assert_pending();
    if rt.is_mock() {
        rt.advance(HOUR);
    }
    sleep.assert_woken(0);
    sleep.assert_pending();
    cancel.cancel();
    assert_eq!(sleep.assert_ready(), Err(Error::Canceled));
}

/// A dropped sleep releases the waker it was polled with: at once on a mocked clock; on a real
/// one by the time the sleep would have ended (a timer thread, as `futures-timer`'s, may keep
/// a dropped timer's waker until then).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::dropped_sleep_releases_its_waker(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn dropped_sleep_releases_its_waker<R: Runtime>(rt: &R) {
    let (ctx, _c) = rt.background().with_timeout(HOUR);
    let mut sleep = Probe::new(ctx.sleep(tick(rt)));
    sleep.assert_pending();
    sleep.drop_future();
    if !rt.is_mock() {
        rt.advance(past_tick(rt));
        let limit = std::time::Instant::now() + super::BOUND;
        while sleep.wakers_held() > 0 && std::time::Instant::now() < limit {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(sleep.wakers_held(), 0, "a dropped sleep kept its waker");
}

/// `sleep_blocking` blocks the thread until the time has passed on the context's clock
/// (`Ok`), or until the context is done (`Err`).
///
/// # Examples
///
/// ```no_run
/// ctx_testkit::conformance::sleep_blocking_ends_by_time_or_by_cancel(&ctx_testkit::conformance::MockRuntime::new());
/// ```
pub fn sleep_blocking_ends_by_time_or_by_cancel<R: Runtime>(rt: &R) {
    let root: Ctx = rt.background();
    let start = root.now();
    let d = tick(rt);
    let r = root.clone();
    let sleeper = bg(move || r.sleep_blocking(d).map(|()| r.now()));
    if rt.is_mock() {
        // `sleep_blocking(d)` counts from its call, which the thread may not have made yet:
        // advance until it returns (at most `BOUND` of real time).
        let limit = std::time::Instant::now() + super::BOUND;
        while !sleeper.finished() && std::time::Instant::now() < limit {
            rt.advance(past_tick(rt));
            std::thread::yield_now();
        }
    }
    let at = sleeper
        .join("sleep_blocking by time")
        .expect("sleep_blocking on a live context");
    assert!(at >= start + d, "sleep_blocking ended {:?} early", start + d - at);

    let (ctx, cancel) = root.with_cancel();
    let sleeper = bg(move || ctx.sleep_blocking(HOUR));
    cancel.cancel();
    assert_eq!(sleeper.join("sleep_blocking by cancel"), Err(Error::Canceled));
}
