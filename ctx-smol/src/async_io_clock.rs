//! [`AsyncIoClock`] and the roots built on it.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use ctx_core::clock::Timer;
use ctx_core::{Clock, Ctx};

/// A background root whose deadlines are fired by the async-io reactor. Go:
/// `context.Background()`.
///
/// Never canceled, no deadline, no values; every context derived from it uses
/// [`AsyncIoClock`]. It may be called inside or outside an executor.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// let root = ctx_smol::background();
/// assert_eq!(root.to_string(), "context.Background");
/// let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
/// assert_eq!(ctx.wait_blocking(), ctx_smol::Error::DeadlineExceeded);
/// ```
#[doc(alias = "Background")]
pub fn background() -> Ctx {
    Ctx::background_with_clock(shared())
}

/// Like [`background()`], but marks code that has not decided which context to use yet. Go:
/// `context.TODO()`.
///
/// # Examples
///
/// ```
/// assert_eq!(ctx_smol::todo().to_string(), "context.TODO");
/// ```
#[doc(alias = "TODO")]
pub fn todo() -> Ctx {
    Ctx::todo_with_clock(shared())
}

/// One clock for every root: roots then share one allocation.
fn shared() -> Arc<dyn Clock> {
    static CLOCK: LazyLock<Arc<dyn Clock>> = LazyLock::new(|| Arc::new(AsyncIoClock::new()));
    CLOCK.clone()
}

/// Real time ([`Instant::now`]) with timers from [`async_io::Timer`]: the clock of smol and
/// async-std.
///
/// The async-io reactor fires its timers whether or not an executor is running (its own
/// `async-io` thread drives the reactor when no `block_on` does), so a deadline context built on
/// this clock is done at its deadline even when nobody polls it.
///
/// # Precision
///
/// A timer may fire late, never early: async-io never completes a timer before its instant, and
/// ctx-core re-reads [`now`](Clock::now) before declaring a deadline exceeded.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ctx_smol::{AsyncIoClock, Ctx, Error};
///
/// let root = Ctx::background_with_clock(Arc::new(AsyncIoClock::new()));
/// let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
/// assert_eq!(smol::block_on(ctx.done()), Error::DeadlineExceeded);
/// ```
#[doc(alias = "SmolClock")]
#[doc(alias = "AsyncStdClock")]
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct AsyncIoClock;

impl AsyncIoClock {
    /// The async-io clock. It holds no state: every `AsyncIoClock` is the same clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_smol::{AsyncIoClock, Clock};
    /// let t = AsyncIoClock::new().now();
    /// assert!(AsyncIoClock::new().now() >= t);
    /// ```
    pub const fn new() -> AsyncIoClock {
        AsyncIoClock
    }
}

impl Clock for AsyncIoClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// `true`: async-io's time is `Instant::now()`, which nothing pauses.
    fn is_instant_now(&self) -> bool {
        true
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        let timer = async_io::Timer::at(deadline);
        Box::pin(async move {
            timer.await;
        })
    }
}
