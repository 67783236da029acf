//! [`SelfWaking`]: futures and clocks that wake themselves inside their own `poll`.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use ctx_core::clock::Timer;
use ctx_core::{Clock, Done};

/// A hostile future, and a clock whose timers are such futures: each poll wakes its own waker
/// before returning `Pending` — `times` times, then it behaves like the future it wraps; or
/// forever. Tokio's `Sleep` does this when its task has spent its cooperative budget, and a
/// `yield_now` always does.
///
/// A test checks with it that ctx-core never turns such a wake into a loop on the waking
/// thread, and that the deadline or the cancel still lands.
///
/// # Examples
///
/// A clock whose timers wake themselves three times before they start waiting:
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ctx_core::{Ctx, Error};
/// use ctx_testkit::{MockClock, SelfWaking};
///
/// let mock = MockClock::new();
/// let clock = SelfWaking::clock(mock.clone(), Some(3));
/// let root = Ctx::background_with_clock(Arc::new(clock.clone()));
/// let (ctx, _cancel) = root.with_timeout(Duration::from_secs(5));
/// let stop = ctx.after_func(|| {}); // arms the timer: its first poll wakes itself
/// mock.advance(Duration::from_secs(5));
/// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
/// # let _ = stop;
/// ```
#[derive(Clone)]
pub struct SelfWaking<C> {
    inner: C,
    times: Option<usize>,
    polls: Arc<AtomicUsize>,
}

impl<C: Clock + Clone> SelfWaking<C> {
    /// A clock that reads `inner`'s time and whose timers wake themselves `times` times (or
    /// forever, with `None`) before they wait on `inner`'s timer.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Clock, clock::SystemClock};
    /// let clock = ctx_testkit::SelfWaking::clock(SystemClock::default(), None);
    /// assert!(clock.now() <= std::time::Instant::now());
    /// ```
    pub fn clock(inner: C, times: Option<usize>) -> SelfWaking<C> {
        SelfWaking {
            inner,
            times,
            polls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl<C> SelfWaking<C> {
    /// How many times the futures of this clock have been polled, all together.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::clock::SystemClock;
    /// let clock = ctx_testkit::SelfWaking::clock(SystemClock::default(), Some(1));
    /// assert_eq!(clock.polls(), 0);
    /// ```
    pub fn polls(&self) -> usize {
        self.polls.load(Ordering::SeqCst)
    }
}

impl SelfWaking<()> {
    /// A [`Done`] (for a custom [`Context`](ctx_core::Context)) that wakes itself `times` times
    /// (or forever, with `None`) and then waits for `then`. Its polls are counted in `polls`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::AtomicUsize;
    /// use ctx_core::{Ctx, Done, Error};
    /// # futures::executor::block_on(async {
    /// let polls = Arc::new(AtomicUsize::new(0));
    /// let done = ctx_testkit::SelfWaking::done(Some(2), Done::new(async { Error::Canceled }), polls);
    /// assert_eq!(done.await, Error::Canceled);
    /// # });
    /// ```
    pub fn done(times: Option<usize>, then: Done, polls: Arc<AtomicUsize>) -> Done {
        Done::new(Wakes {
            left: times,
            then,
            polls,
        })
    }
}

impl<C: fmt::Debug> fmt::Debug for SelfWaking<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SelfWaking")
            .field("inner", &self.inner)
            .field("times", &self.times)
            .finish_non_exhaustive()
    }
}

impl<C: Clock + Clone> Clock for SelfWaking<C> {
    fn now(&self) -> Instant {
        self.inner.now()
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        Box::pin(Wakes {
            left: self.times,
            then: self.inner.sleep_until(deadline),
            polls: self.polls.clone(),
        })
    }

    fn after_funcs_inline(&self) -> bool {
        self.inner.after_funcs_inline()
    }

    fn is_instant_now(&self) -> bool {
        self.inner.is_instant_now()
    }
}

/// Wakes itself `left` times (forever if `None`), then is `then`.
struct Wakes<F> {
    left: Option<usize>,
    then: F,
    polls: Arc<AtomicUsize>,
}

impl<F: Future + Unpin> Future for Wakes<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.polls.fetch_add(1, Ordering::SeqCst);
        match &mut self.left {
            Some(0) => Pin::new(&mut self.then).poll(cx),
            Some(n) => {
                *n -= 1;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            None => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }
}
