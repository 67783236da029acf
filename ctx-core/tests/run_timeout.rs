//! `Ctx::run_timeout` on a `MockClock`, polled by hand: the future's output, `DeadlineExceeded`
//! once the timeout passes (not a nanosecond before), the parent's error when the parent ends
//! first, and the child released with the future.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::FusedFuture;

use ctx_core::{Ctx, Error};
use ctx_testkit::{MockClock, Probe};

const SEC: Duration = Duration::from_secs(1);
const NS: Duration = Duration::from_nanos(1);

/// A future that is pending forever and records that it was dropped.
struct Sentinel(Arc<AtomicBool>);
impl Future for Sentinel {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}
impl Drop for Sentinel {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn the_output_when_the_future_finishes_first() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut run = Probe::new(root.run_timeout(5 * SEC, async { 7 }));
    assert_eq!(run.assert_ready(), Ok(7));
    assert_eq!(clock.pending_timers(), 0, "a ready future arms no timer");
}

#[test]
fn deadline_exceeded_once_the_timeout_passes_and_not_a_nanosecond_before() {
    let clock = MockClock::new();
    let (parent, _keep) = clock.background().with_cancel();
    let gone = Arc::new(AtomicBool::new(false));
    let mut run = Probe::new(parent.run_timeout(5 * SEC, Sentinel(gone.clone())));
    run.assert_pending();
    clock.advance(5 * SEC - NS);
    run.assert_woken(0);
    run.assert_pending();
    assert!(!gone.load(Ordering::SeqCst));
    clock.advance(NS);
    run.assert_woken(1);
    assert_eq!(run.assert_ready(), Err(Error::DeadlineExceeded));
    assert!(gone.load(Ordering::SeqCst), "the future was dropped");
    assert_eq!(parent.err(), None, "the parent is untouched");
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn the_parents_error_when_the_parent_is_canceled_first() {
    let clock = MockClock::new();
    let (parent, cancel) = clock.background().with_cancel();
    let mut run = Probe::new(parent.run_timeout(5 * SEC, std::future::pending::<()>()));
    run.assert_pending();
    cancel.cancel();
    run.assert_woken(1);
    assert_eq!(run.assert_ready(), Err(Error::Canceled));
    assert_eq!(clock.pending_timers(), 0, "the timer is released");
}

#[test]
fn the_parents_deadline_when_it_comes_first() {
    let clock = MockClock::new();
    let (parent, _c) = clock.background().with_timeout(2 * SEC);
    let mut run = Probe::new(parent.run_timeout(5 * SEC, std::future::pending::<()>()));
    run.assert_pending();
    clock.advance(2 * SEC);
    run.assert_woken(1);
    assert_eq!(run.assert_ready(), Err(Error::DeadlineExceeded));
    assert_eq!(parent.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_done_parent_answers_on_the_first_poll_without_polling_the_future() {
    let clock = MockClock::new();
    let (parent, cancel) = clock.background().with_cancel();
    cancel.cancel();
    let polled = Arc::new(AtomicBool::new(false));
    let p = polled.clone();
    let mut run = Probe::new(parent.run_timeout(5 * SEC, async move { p.store(true, Ordering::SeqCst) }));
    assert_eq!(run.assert_ready(), Err(Error::Canceled));
    assert!(!polled.load(Ordering::SeqCst));
}

#[test]
fn the_timeout_counts_from_the_call_on_the_contexts_clock() {
    let clock = MockClock::new();
    let root = clock.background();
    let mut run = Probe::new(root.run_timeout(3 * SEC, std::future::pending::<()>()));
    clock.advance(3 * SEC); // before the first poll: the deadline was fixed at the call
    assert_eq!(run.assert_ready(), Err(Error::DeadlineExceeded));
}

#[test]
fn dropping_the_future_releases_the_child_and_its_timer() {
    let clock = MockClock::new();
    // The child holds its parent, which holds `token`: the count shows when the child is freed.
    let token = Arc::new(());
    let parent = clock.background().with_value(token.clone());
    let gone = Arc::new(AtomicBool::new(false));
    let mut run = Probe::new(parent.run_timeout(5 * SEC, Sentinel(gone.clone())));
    run.assert_pending();
    assert_eq!(clock.pending_timers(), 1);
    drop(parent);
    assert_eq!(Arc::strong_count(&token), 2, "the future holds its child");
    run.drop_future();
    assert!(gone.load(Ordering::SeqCst));
    assert_eq!(clock.pending_timers(), 0, "the child's timer is released");
    assert_eq!(Arc::strong_count(&token), 1, "the child is freed");
}

#[test]
fn it_is_fused_and_send() {
    fn send<T: Send>(_: &T) {}
    let clock = MockClock::new();
    let root = clock.background();
    let mut run = Box::pin(root.run_timeout(SEC, async {}));
    send(&run);
    assert!(!run.is_terminated());
    assert_eq!(clock.block_on(run.as_mut()), Ok(()));
    assert!(run.is_terminated());
}

#[test]
fn under_mock_block_on_the_timeout_passes_without_real_waiting() {
    let clock = MockClock::new();
    let root: Ctx = clock.background();
    let start = clock.now();
    let out = clock.block_on(root.run_timeout(3600 * SEC, std::future::pending::<()>()));
    assert_eq!(out, Err(Error::DeadlineExceeded));
    assert_eq!(clock.now() - start, 3600 * SEC);
}
