//! `Ctx::sleep`, `sleep_until` and `sleep_blocking` on a `MockClock`, polled by hand with exact
//! wake counts; and `Done`, `Run`, `RunStream` and `Sleep` as fused futures in a `select!` loop.

use std::sync::mpsc;
use std::time::Duration;

use futures::future::FusedFuture;
use futures::stream::FusedStream;
use futures::{FutureExt, StreamExt};

use ctx_core::{Ctx, Error};
use ctx_testkit::{MockClock, Probe};

const SEC: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);
/// The longest a test waits for another thread.
const BOUND: Duration = Duration::from_secs(5);

#[test]
fn sleep_is_ok_once_the_duration_has_passed_on_the_clock_and_not_a_nanosecond_before() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut sleep = Probe::new(root.sleep(3 * SEC));
    sleep.assert_pending();
    assert_eq!(clock.pending_timers(), 1, "one timer for the sleep");
    clock.advance(3 * SEC - NS);
    sleep.assert_woken(0);
    sleep.assert_pending();
    clock.advance(NS);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Ok(()));
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn sleep_until_is_ok_at_the_instant() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_cancel();
    let at = clock.now() + 2 * SEC;
    let mut sleep = Probe::new(ctx.sleep_until(at));
    sleep.assert_pending();
    clock.advance_to(at);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Ok(()));
    assert_eq!(clock.now(), at);
}

#[test]
fn nothing_passes_on_a_mock_clock_until_it_is_advanced() {
    let clock = MockClock::new();
    let mut sleep = Probe::new(clock.background().sleep(NS));
    for _ in 0..100 {
        sleep.assert_pending();
        std::thread::yield_now();
    }
    sleep.assert_woken(0);
}

#[test]
fn sleep_is_err_as_soon_as_the_context_is_canceled_and_releases_its_timer() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    let mut sleep = Probe::new(ctx.sleep(SEC));
    sleep.assert_pending();
    cancel.cancel();
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::Canceled));
    assert_eq!(clock.pending_timers(), 0, "the sleep's timer was dropped");
    assert_eq!(sleep.wakers_held(), 0);
    clock.advance(SEC);
    sleep.assert_woken(1);
}

#[test]
fn sleep_of_a_child_ends_when_an_ancestor_is_canceled() {
    let clock = MockClock::new();
    let (parent, cancel) = clock.background().with_cancel();
    let child = parent.with_value(7u8);
    let mut sleep = Probe::new(child.sleep(SEC));
    sleep.assert_pending();
    cancel.cancel();
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::Canceled));
}

#[test]
fn sleep_on_a_done_context_is_err_on_the_first_poll_even_for_zero() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    cancel.cancel();
    assert_eq!(Probe::new(ctx.sleep(SEC)).assert_ready(), Err(Error::Canceled));
    assert_eq!(
        Probe::new(ctx.sleep(Duration::ZERO)).assert_ready(),
        Err(Error::Canceled)
    );
    let past = clock.now() - SEC;
    assert_eq!(
        Probe::new(ctx.sleep_until(past)).assert_ready(),
        Err(Error::Canceled)
    );
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn sleep_zero_and_sleep_until_the_past_are_ok_on_the_first_poll_with_no_timer() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(SEC);
    assert_eq!(Probe::new(ctx.sleep(Duration::ZERO)).assert_ready(), Ok(()));
    assert_eq!(Probe::new(ctx.sleep_until(clock.now())).assert_ready(), Ok(()));
    assert_eq!(
        Probe::new(ctx.sleep_until(clock.now() - SEC)).assert_ready(),
        Ok(())
    );
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn a_deadline_before_the_end_ends_the_sleep_at_the_deadline() {
    let clock = MockClock::new();
    let start = clock.now();
    let (ctx, _c) = clock.background().with_timeout(5 * SEC);
    let mut sleep = Probe::new(ctx.sleep(10 * SEC));
    sleep.assert_pending();
    assert_eq!(
        clock.pending_timers(),
        1,
        "only the deadline's timer: the sleep needs none"
    );
    clock.advance(5 * SEC - NS);
    sleep.assert_woken(0);
    clock.advance(NS);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::DeadlineExceeded));
    assert_eq!(clock.now(), start + 5 * SEC);
}

#[test]
fn a_deadline_equal_to_the_end_ends_the_sleep_with_deadline_exceeded() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(SEC);
    let mut sleep = Probe::new(ctx.sleep(SEC));
    sleep.assert_pending();
    clock.advance(SEC);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::DeadlineExceeded));
}

#[test]
fn a_deadline_after_the_end_does_not_matter() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(5 * SEC);
    let mut sleep = Probe::new(ctx.sleep(SEC));
    sleep.assert_pending();
    clock.advance(SEC);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Ok(()));
    assert_eq!(ctx.err(), None);
}

#[test]
fn a_deadline_passed_unobserved_is_seen_on_the_first_poll() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(SEC);
    clock.advance(SEC); // no timer armed: nobody waited
    let mut sleep = Probe::new(ctx.sleep(Duration::ZERO));
    assert_eq!(sleep.assert_ready(), Err(Error::DeadlineExceeded));
}

#[test]
fn huge_durations_never_panic_and_never_end_by_themselves() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    let mut sleep = Probe::new(ctx.sleep(Duration::MAX));
    sleep.assert_pending();
    clock.advance(Duration::from_secs(100 * 365 * 24 * 3600));
    sleep.assert_woken(0);
    sleep.assert_pending();
    cancel.cancel();
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Err(Error::Canceled));
    // The same on the system clock, whose `Instant` is real.
    let mut sleep = Probe::new(Ctx::background().sleep(Duration::MAX));
    sleep.assert_pending();
}

#[test]
fn sleep_on_contexts_that_cannot_be_done_ends_by_time_alone() {
    let clock = MockClock::new();
    let (parent, cancel) = clock.background().with_cancel();
    let detached = parent.without_cancel();
    let mut sleep = Probe::new(detached.sleep(SEC));
    sleep.assert_pending();
    cancel.cancel();
    sleep.assert_woken(0);
    sleep.assert_pending();
    clock.advance(SEC);
    sleep.assert_woken(1);
    assert_eq!(sleep.assert_ready(), Ok(()));
}

#[test]
fn a_dropped_sleep_releases_its_waker_and_its_timer() {
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(10 * SEC);
    let mut sleep = Probe::new(ctx.sleep(SEC));
    sleep.assert_pending();
    assert!(sleep.wakers_held() > 0);
    sleep.drop_future();
    assert_eq!(sleep.wakers_held(), 0);
    assert_eq!(
        clock.pending_timers(),
        1,
        "the sleep's timer is gone; the deadline's stays while the context lives"
    );
}

#[test]
fn sleep_is_terminated_once_it_has_answered() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut sleep = root.sleep(SEC);
    assert!(!sleep.is_terminated());
    assert!((&mut sleep).now_or_never().is_none());
    assert!(!sleep.is_terminated());
    clock.advance(SEC);
    assert_eq!((&mut sleep).now_or_never(), Some(Ok(())));
    assert!(sleep.is_terminated());
}

#[test]
#[should_panic(expected = "`Sleep` polled after completion")]
fn sleep_polled_after_completion_panics() {
    let mut sleep = Ctx::background().sleep(Duration::ZERO);
    assert_eq!((&mut sleep).now_or_never(), Some(Ok(())));
    let _ = (&mut sleep).now_or_never();
}

#[test]
fn sleep_blocking_returns_when_another_thread_advances_the_clock() {
    let clock = MockClock::new();
    let root = clock.background();
    let (tx, rx) = mpsc::channel();
    let sleeper = std::thread::spawn(move || tx.send(root.sleep_blocking(SEC)).unwrap());
    // Advance once the sleeper's timer is registered.
    let limit = std::time::Instant::now() + BOUND;
    while clock.pending_timers() == 0 {
        assert!(
            std::time::Instant::now() < limit,
            "the sleeper never registered its timer"
        );
        std::thread::yield_now();
    }
    clock.advance(SEC - NS);
    assert!(rx.try_recv().is_err(), "sleep_blocking returned early");
    clock.advance(NS);
    assert_eq!(rx.recv_timeout(BOUND), Ok(Ok(())));
    sleeper.join().unwrap();
}

#[test]
fn sleep_blocking_returns_err_when_canceled_from_another_thread() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let sleeper = std::thread::spawn(move || tx.send(ctx.sleep_blocking(SEC)).unwrap());
    cancel.cancel();
    assert_eq!(rx.recv_timeout(BOUND), Ok(Err(Error::Canceled)));
    sleeper.join().unwrap();
}

// ===== fused futures =====

#[test]
fn done_is_terminated_only_after_it_answered() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut done = ctx.done();
    assert!(!done.is_terminated());
    assert!((&mut done).now_or_never().is_none());
    cancel.cancel();
    assert!(
        !done.is_terminated(),
        "done, but this future has not answered yet"
    );
    assert_eq!((&mut done).now_or_never(), Some(Error::Canceled));
    assert!(done.is_terminated());
    assert!(!ctx_core::Done::never().is_terminated());
}

#[test]
fn run_is_terminated_after_it_answered() {
    let ctx = Ctx::background();
    let mut run = ctx.run(std::future::ready(1));
    assert!(!run.is_terminated());
    assert_eq!((&mut run).now_or_never(), Some(Ok(1)));
    assert!(run.is_terminated());
}

#[test]
fn run_stream_is_terminated_after_it_ended() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut s = ctx.run_stream(futures::stream::pending::<u8>());
    assert!(!s.is_terminated());
    cancel.cancel();
    assert_eq!(s.next().now_or_never(), Some(Some(Err(Error::Canceled))));
    assert!(s.is_terminated());
    assert_eq!(s.next().now_or_never(), Some(None));
}

/// A `select!` loop keeps `Done`, `Run` and `Sleep` across iterations; each answers once and
/// is then skipped (a `Run` or `Sleep` polled again would panic, a `Done` would answer twice).
#[test]
fn done_run_and_sleep_stay_in_a_select_loop() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_cancel();
    let mut done = ctx.done();
    let mut tick = ctx.sleep(SEC);
    let mut run = ctx.run(std::future::ready(7));
    let mut lines = ctx.run_stream(futures::stream::iter(["a", "b"])).fuse();
    let mut events = Probe::new(async move {
        let mut events = Vec::new();
        // Bounded: a future that kept answering after it finished would loop for ever.
        for _ in 0..20 {
            futures::select! {
                r = run => events.push(format!("run {r:?}")),
                r = tick => events.push(format!("sleep {r:?}")),
                line = lines.next() => events.push(format!("line {line:?}")),
                e = done => events.push(format!("done {e:?}")),
                complete => return events,
            }
        }
        panic!("the select loop never completed: {events:?}");
    });
    events.assert_pending();
    clock.advance(SEC);
    events.assert_pending();
    cancel.cancel();
    let mut got = events.assert_ready();
    got.sort();
    assert_eq!(
        got,
        [
            "done Canceled",
            "line None",
            "line Some(Ok(\"a\"))",
            "line Some(Ok(\"b\"))",
            "run Ok(7)",
            "sleep Ok(())",
        ]
    );
}
