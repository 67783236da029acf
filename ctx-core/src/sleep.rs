//! [`Sleep`]: waiting on the context's own clock, cut short when the context is done.
//!
//! Built from two things ctx-core already has: the context's [`Done`] and one timer of its
//! clock ([`Clock::sleep_until`](crate::Clock::sleep_until)). The timer is made on the first
//! pending poll only, and only when the sleep ends before the context's deadline: when the
//! deadline comes first, `Done` (and the deadline timer it arms) is all the sleep needs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures_core::future::FusedFuture;
use sync_wrapper::SyncWrapper;

use crate::clock::Timer;
use crate::{Ctx, Done, Error};

// ===== sleeping on the context's clock =====

impl Ctx {
    /// Waits `duration` on this context's clock, or less if the context is done first. Go:
    /// `select { case <-time.After(d): case <-ctx.Done(): }`.
    ///
    /// The [`Sleep`] is `Ok(())` once `duration` has passed on the context's clock (the root's:
    /// the system clock, a runtime's clock such as tokio's paused time, or a `MockClock`, on
    /// which nothing passes until the test advances it), and `Err(error)` as soon as the
    /// context is done first: on its first poll if it is done already. When the context's
    /// deadline comes at or before the end of the sleep, the sleep ends at the deadline with
    /// `Err(DeadlineExceeded)` (the context is done then). `sleep(Duration::ZERO)` on a live
    /// context is `Ok(())` on the first poll; a duration too large for `Instant` never ends by
    /// itself and never panics.
    ///
    /// So code that backs off or polls on a timer, written with `ctx.sleep`, stops at once
    /// when its work is abandoned, and is tested with `MockClock` in microseconds.
    ///
    /// # Precision
    ///
    /// As the clock's timers: may end late, never early.
    ///
    /// # Examples
    ///
    /// On a `MockClock` tree (from ctx-testkit), whose `block_on` moves time to the next timer
    /// whenever the future is idle, an hour passes in no real time:
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// use ctx_testkit::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let (ctx, _cancel) = clock.background().with_timeout(Duration::from_secs(20));
    /// clock.block_on(async {
    ///     assert_eq!(ctx.sleep(Duration::from_secs(1)).await, Ok(()));
    ///     // The deadline comes first: the sleep ends there.
    ///     assert_eq!(ctx.sleep(Duration::from_secs(3600)).await, Err(Error::DeadlineExceeded));
    /// });
    /// assert_eq!(ctx.now(), clock.now()); // 20 s after the start, on the mock's timeline
    /// ```
    #[doc(alias = "delay")]
    #[doc(alias = "After")]
    pub fn sleep(&self, duration: Duration) -> Sleep {
        Sleep::new(self, self.now().checked_add(duration))
    }

    /// Waits until `deadline` on this context's clock, or less if the context is done first;
    /// [`sleep`](Ctx::sleep) with an instant. A `deadline` that has passed is `Ok(())` on the
    /// first poll of a live context.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_testkit::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let ctx = clock.background();
    /// let at = ctx.now() + Duration::from_millis(2);
    /// assert_eq!(clock.block_on(ctx.sleep_until(at)), Ok(()));
    /// assert_eq!(ctx.now(), at);
    /// ```
    #[doc(alias = "delay_until")]
    pub fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::new(self, Some(deadline))
    }

    /// [`sleep`](Ctx::sleep), blocking this thread: `Ok(())` once `duration` has passed on the
    /// context's clock, `Err(error)` as soon as the context is done first. No runtime needed;
    /// do not call it on an async executor's thread. On a `MockClock` tree it returns when
    /// another thread advances the clock far enough (or cancels).
    ///
    /// # Examples
    ///
    /// Here on a `MockClock` tree (from ctx-testkit), where another thread moves time; on
    /// `Ctx::background()` the same code waits in real time.
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// use ctx_testkit::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let (ctx, cancel) = clock.background().with_cancel();
    /// assert_eq!(ctx.sleep_blocking(Duration::ZERO), Ok(()));
    ///
    /// let mover = clock.clone();
    /// let advancer = std::thread::spawn(move || {
    ///     while mover.pending_timers() == 0 {
    ///         std::thread::yield_now(); // until the sleeper's timer is armed
    ///     }
    ///     mover.advance(Duration::from_secs(60));
    /// });
    /// assert_eq!(ctx.sleep_blocking(Duration::from_secs(60)), Ok(()));
    /// advancer.join().unwrap();
    ///
    /// let canceler = std::thread::spawn(move || cancel.cancel());
    /// assert_eq!(ctx.sleep_blocking(Duration::from_secs(3600)), Err(Error::Canceled));
    /// canceler.join().unwrap();
    /// ```
    #[doc(alias = "Sleep")]
    pub fn sleep_blocking(&self, duration: Duration) -> Result<(), Error> {
        crate::done::block_on(self.sleep(duration))
    }
}

impl Sleep {
    /// A sleep on `ctx`'s clock until `end` (`None`: an instant too far for `Instant`, so the
    /// sleep never ends by itself).
    pub(crate) fn new(ctx: &Ctx, end: Option<Instant>) -> Sleep {
        // The context's deadline at or before the end: the context is done then (a deadline
        // equal to `now` is reached), and `Done` says so with its own error. No timer of ours.
        let end = match (end, ctx.deadline()) {
            (Some(end), Some(deadline)) if deadline <= end => None,
            (end, _) => end,
        };
        Sleep {
            state: Some(Waiting {
                ctx: ctx.clone(),
                done: ctx.done(),
                end,
                timer: None,
            }),
        }
    }
}

/// The future returned by [`Ctx::sleep`] and [`Ctx::sleep_until`]: `Ok(())` once the time has
/// passed on the context's clock, `Err(error)` as soon as the context is done first.
///
/// `Sleep` is `Send + Sync + Unpin + 'static` and a [`FusedFuture`]: once it has answered,
/// [`is_terminated`](FusedFuture::is_terminated) is `true`, so it can stay in a `select!` loop.
///
/// # Cancellation safety
///
/// Dropping a `Sleep` drops its timer and releases the waker it was polled with; nothing else
/// is affected.
///
/// # Panics
///
/// When polled again after it has answered (as most futures do).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::Error;
/// use ctx_testkit::MockClock;
///
/// let clock = MockClock::new(); // `Ctx::background()` works the same, in real time
/// let (ctx, cancel) = clock.background().with_cancel();
/// clock.block_on(async {
///     assert_eq!(ctx.sleep(Duration::from_millis(1)).await, Ok(()));
///     cancel.cancel();
///     assert_eq!(ctx.sleep(Duration::from_secs(3600)).await, Err(Error::Canceled));
/// });
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct Sleep {
    /// `None` once the sleep has answered: its timer, `Done` and context are released then.
    state: Option<Waiting>,
}

struct Waiting {
    ctx: Ctx,
    done: Done,
    /// When the sleep ends by itself; `None`: only the context can end it.
    end: Option<Instant>,
    /// The clock's timer for `end`, made on the first poll that finds `end` in the future.
    /// (`SyncWrapper`: only `poll`, through `&mut`, touches it, so `Sleep` is `Sync`.)
    timer: Option<SyncWrapper<Timer>>,
}

impl Future for Sleep {
    type Output = Result<(), Error>;

    /// The context first, then the time, then wait on both. Each source registers the waker
    /// it is polled with before it reports pending (the timer by the [`Clock`](crate::Clock)
    /// contract, `Done` by its register-then-recheck), so a cancel or the end of the time that
    /// happens after its check wakes us; neither registration is ever duplicated, so one event
    /// is one wake.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(w) = self.state.as_mut() else {
            panic!("`Sleep` polled after completion");
        };
        let out = w.poll(cx);
        if out.is_ready() {
            self.state = None;
        }
        out
    }
}

impl Waiting {
    fn poll(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        // A done context wins, also over a time that has passed: the caller is told to stop.
        if let Some(e) = self.ctx.err() {
            return Poll::Ready(Err(e));
        }
        if let Some(end) = self.end {
            // Time that has passed needs no timer (`sleep(ZERO)`, a `sleep_until` in the past).
            if self.ctx.now() >= end {
                return Poll::Ready(Ok(()));
            }
            let clock = self.ctx.node.clock();
            let timer = self
                .timer
                .get_or_insert_with(|| SyncWrapper::new(clock.get().sleep_until(end)));
            if timer.get_mut().as_mut().poll(cx).is_ready() {
                return Poll::Ready(Ok(()));
            }
        }
        match Pin::new(&mut self.done).poll(cx) {
            Poll::Ready(e) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl FusedFuture for Sleep {
    /// `true` once the sleep has answered.
    fn is_terminated(&self) -> bool {
        self.state.is_none()
    }
}

impl fmt::Debug for Sleep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Sleep");
        match &self.state {
            Some(w) => d
                .field("end", &w.end)
                .field("timer_armed", &w.timer.is_some())
                .field("ctx", &w.ctx),
            None => d.field("terminated", &true),
        };
        d.finish()
    }
}

/// `Sleep` is built from `Send + Sync` parts; pinned here so a change that breaks it fails to
/// compile.
const _: fn() = || {
    fn assert_traits<T: Send + Sync + Unpin + 'static>() {}
    assert_traits::<Sleep>();
};
