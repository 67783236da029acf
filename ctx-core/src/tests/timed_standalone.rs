//! The cancel of a root's timed child (`with_timeout` of a root: invariant 11 of `tree`): when a
//! coarse reading of the system clock proves its deadline still ahead, the cancel is the
//! standalone node's one compare-exchange; anything else (a deadline that reading cannot prove
//! ahead, a clock that does not say it reads `Instant::now()`, a child, a waiter) is left to the
//! general path, which reads the clock in full.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::{SystemClock, Timer};
use crate::tree::cancel_standalone;
use crate::{Clock, Ctx, Error};

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn a_far_deadline_on_the_system_clock_cancels_in_one_exchange() {
    let (ctx, handle) = Ctx::background().with_timeout(HOUR);
    assert!(
        cancel_standalone(&ctx.node),
        "an hour ahead is proven by a coarse reading"
    );
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(!cancel_standalone(&ctx.node), "done: nothing more to mark");
    drop(handle);
    assert_eq!(ctx.err(), Some(Error::Canceled));

    // With a deadline cause (boxed timing), the same.
    let (ctx, _handle) = Ctx::background().with_timeout_cause(HOUR, "slow");
    assert!(cancel_standalone(&ctx.node));
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        ctx.cause().map(|c| c.to_string()),
        Some(Error::Canceled.to_string())
    );
}

#[test]
fn a_near_deadline_is_left_to_the_full_clock_read() {
    // A nanosecond ahead is never proven by a coarse reading (its slack is a millisecond and
    // more): the general path decides, with `Instant::now()`.
    let (ctx, handle) = Ctx::background().with_timeout(Duration::from_nanos(1));
    assert!(!cancel_standalone(&ctx.node));
    handle.cancel();
    assert!(ctx.err().is_some());
}

/// A clock that does not say it reads `Instant::now()` (a paused runtime's, a test's).
#[derive(Debug)]
struct Unsaid;

impl Clock for Unsaid {
    fn now(&self) -> Instant {
        Instant::now()
    }
    fn sleep_until(&self, _: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

#[test]
fn a_users_clock_proves_nothing() {
    let root = Ctx::background_with_clock(Arc::new(Unsaid));
    let (ctx, handle) = root.with_timeout(HOUR);
    assert!(!cancel_standalone(&ctx.node), "a user's clock is asked in full");
    handle.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn a_clock_that_reads_instant_now_is_proven_as_the_system_clock() {
    // `SystemClock` says so (`Clock::is_instant_now`), as a runtime's clock that cannot pause.
    let root = Ctx::background_with_clock(Arc::new(SystemClock::default()));
    let (ctx, handle) = root.with_timeout(HOUR);
    assert!(
        cancel_standalone(&ctx.node),
        "an hour ahead is proven by a coarse reading"
    );
    assert_eq!(ctx.err(), Some(Error::Canceled));
    drop(handle);
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn a_child_sends_the_cancel_to_the_general_path() {
    let (ctx, handle) = Ctx::background().with_timeout(HOUR);
    let (child, _child_handle) = ctx.with_cancel();
    assert!(!cancel_standalone(&ctx.node), "a node with a child is walked");
    handle.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(child.err(), Some(Error::Canceled));
}

// A waiter on a deadline node asks for its timer: on the system clock, ctx-core's timer thread,
// which outlives the test (Miri stops at a thread left running).
#[cfg(not(miri))]
#[test]
fn a_waiter_sends_the_cancel_to_the_general_path() {
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use futures::task::noop_waker;

    let (ctx, handle) = Ctx::background().with_timeout(HOUR);
    let mut done = ctx.done();
    let waker = noop_waker();
    assert!(
        Pin::new(&mut done)
            .poll(&mut Context::from_waker(&waker))
            .is_pending()
    );
    assert!(
        !cancel_standalone(&ctx.node),
        "a node with dependents is marked under its lock"
    );
    handle.cancel();
    assert_eq!(
        Pin::new(&mut done).poll(&mut Context::from_waker(&waker)),
        Poll::Ready(Error::Canceled)
    );
}
