//! Checks of a clock itself, for the adapters whose clock is their own.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx_core::{Clock, Ctx, Error};

const HOUR: Duration = Duration::from_secs(3600);

/// A clock that says it reads `Instant::now()` ([`Clock::is_instant_now`]) does: its `now()`
/// lies between two readings of `Instant::now()` taken around it, every time; and a root made
/// with it dates deadlines from `Instant::now()` (ctx-core then reads the time itself), proves
/// a deadline an hour away still ahead and cancels its context. A clock that does not say so
/// passes at once: it is read through its `now()`, whatever that is. Panics on a failure.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// ctx_testkit::conformance::a_clock_that_says_instant_now_reads_it(Arc::new(
///     ctx_core::clock::SystemClock::default(),
/// ));
/// ```
pub fn a_clock_that_says_instant_now_reads_it(clock: Arc<dyn Clock>) {
    if !clock.is_instant_now() {
        return;
    }
    for _ in 0..1_000 {
        let before = Instant::now();
        let t = clock.now();
        let after = Instant::now();
        assert!(
            before <= t && t <= after,
            "a clock that says is_instant_now() read {t:?}, outside [{before:?}, {after:?}]"
        );
    }
    let root = Ctx::background_with_clock(clock);
    let before = Instant::now();
    let (ctx, cancel) = root.with_timeout(HOUR);
    let deadline = ctx.deadline().expect("a timeout context has a deadline");
    assert!(before + HOUR <= deadline && deadline <= Instant::now() + HOUR);
    assert_eq!(ctx.err(), None);
    assert!(!ctx.is_done());
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
}
