//! [`TokioClock`] and the roots built on it.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Instant;

use ctx_core::clock::{Sleep, SystemClock};
use ctx_core::{Clock, Ctx};
use pin_project_lite::pin_project;
use tokio::runtime::{Handle, TryCurrentError};

/// A background root on the current tokio runtime's clock. Go: `context.Background()`.
///
/// Never canceled, no deadline, no values. Every context derived from it reads tokio's clock
/// (`with_timeout(d)` has `deadline() == tokio::time::Instant::now().into_std() + d`, paused
/// time honoured) and waits with tokio's timers.
///
/// # Panics
///
/// When called outside a tokio runtime. Use [`try_background()`] to get an error instead, or
/// build a root by hand from a [`Handle`]: `Ctx::background_with_clock(Arc::new(TokioClock::new(handle)))`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let root = ctx_tokio::background();
/// assert_eq!(root.to_string(), "context.Background");
/// let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
/// assert_eq!(ctx.done().await, ctx_tokio::Error::DeadlineExceeded);
/// # });
/// ```
#[doc(alias = "Background")]
#[track_caller]
pub fn background() -> Ctx {
    Ctx::background_with_clock(Arc::new(TokioClock::current()))
}

/// Like [`background()`], but returns an error outside a tokio runtime instead of panicking.
///
/// # Examples
///
/// ```
/// assert!(ctx_tokio::try_background().is_err()); // no runtime here
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let _guard = rt.enter();
/// assert!(ctx_tokio::try_background().is_ok());
/// ```
pub fn try_background() -> Result<Ctx, TryCurrentError> {
    Ok(Ctx::background_with_clock(Arc::new(TokioClock::try_current()?)))
}

/// Like [`background()`], but marks code that has not decided which context to use yet. Go:
/// `context.TODO()`.
///
/// # Panics
///
/// When called outside a tokio runtime.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// assert_eq!(ctx_tokio::todo().to_string(), "context.TODO");
/// # });
/// ```
#[doc(alias = "TODO")]
#[track_caller]
pub fn todo() -> Ctx {
    Ctx::todo_with_clock(Arc::new(TokioClock::current()))
}

/// Time from `tokio::time::Instant` and timers from `tokio::time::sleep_until`, on one runtime.
///
/// The clock holds the runtime's [`Handle`] and enters it whenever it reads the time or
/// creates a timer, because ctx-core may do either from any thread (a plain thread in
/// `wait_blocking`, another runtime's worker, the thread that cancels). So paused time
/// (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) is honoured everywhere, and
/// timers are driven by this runtime's driver even when nobody polls the context.
///
/// Holding a `Handle` does not keep the runtime running. After the runtime shuts down, a timer
/// that tokio refuses to poll falls back to ctx-core's system timer thread, and so does every
/// timer of a runtime built without `enable_time`.
///
/// # Precision
///
/// A timer may fire late (tokio's timer wheel ticks in milliseconds), never early: ctx-core
/// re-reads [`now`](Clock::now) before declaring a deadline exceeded.
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use ctx_tokio::{Ctx, Error, TokioClock};
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// let root = Ctx::background_with_clock(Arc::new(TokioClock::new(rt.handle().clone())));
/// let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
/// assert_eq!(ctx.wait_blocking(), Error::DeadlineExceeded); // from a thread outside the runtime
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TokioClock {
    handle: Handle,
    /// Whether the runtime has a time driver; probed once, by the first timer.
    timers: Arc<OnceLock<bool>>,
}

impl TokioClock {
    /// The clock of the runtime behind `handle`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_tokio::{Clock, TokioClock};
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let clock = TokioClock::new(rt.handle().clone());
    /// let t = clock.now();
    /// assert!(clock.now() >= t);
    /// ```
    pub fn new(handle: Handle) -> TokioClock {
        TokioClock {
            handle,
            timers: Arc::new(OnceLock::new()),
        }
    }

    /// The clock of the current runtime.
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime; [`try_current`](TokioClock::try_current) does not.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let clock = ctx_tokio::TokioClock::current();
    /// # let _ = clock;
    /// # });
    /// ```
    #[track_caller]
    pub fn current() -> TokioClock {
        match TokioClock::try_current() {
            Ok(clock) => clock,
            Err(_) => panic!(
                "ctx-tokio: no tokio runtime here: call `ctx_tokio::background()` from a tokio \
                 task or `block_on`, or inside `Runtime::enter()`; or use \
                 `ctx_tokio::try_background()`"
            ),
        }
    }

    /// The clock of the current runtime, or an error outside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ctx_tokio::TokioClock::try_current().is_err());
    /// ```
    pub fn try_current() -> Result<TokioClock, TryCurrentError> {
        Handle::try_current().map(TokioClock::new)
    }

    /// The handle of the runtime this clock reads and arms its timers on.
    ///
    /// # Examples
    ///
    /// ```
    /// let rt = tokio::runtime::Runtime::new().unwrap();
    /// let clock = ctx_tokio::TokioClock::new(rt.handle().clone());
    /// assert_eq!(clock.handle().id(), rt.handle().id());
    /// ```
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    fn tokio_sleep(&self, deadline: Instant) -> Sleep {
        let sleep = {
            let _enter = self.handle.enter();
            tokio::time::sleep_until(deadline.into())
        };
        Box::pin(TokioSleep {
            state: State::Tokio { sleep },
            deadline,
            clock: self.clone(),
        })
    }
}

// ===== TokioSleep =====

pin_project! {
    /// A tokio timer that survives its runtime: once tokio refuses to poll it (the runtime shut
    /// down), it waits on the system timer instead, so a deadline still fires.
    struct TokioSleep {
        #[pin]
        state: State,
        deadline: Instant,
        clock: TokioClock,
    }
}

pin_project! {
    #[project = StateProj]
    enum State {
        Tokio { #[pin] sleep: tokio::time::Sleep },
        System { sleep: Sleep },
        // The system timer fired but the tokio clock (frozen by `pause`) has not reached the
        // deadline, and nothing will move it now: never fire, rather than spin.
        Stalled,
    }
}

impl Future for TokioSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Tokio { sleep } => {
                    // Tokio panics when polled after its runtime shut down (the panic hook
                    // reports it once per timer).
                    match catch_unwind(AssertUnwindSafe(|| sleep.poll(cx))) {
                        Ok(poll) => return poll,
                        Err(_) => {
                            let sleep = SystemClock::default().sleep_until(*this.deadline);
                            this.state.set(State::System { sleep });
                        }
                    }
                }
                StateProj::System { sleep } => {
                    ready!(sleep.as_mut().poll(cx));
                    if this.clock.now() >= *this.deadline {
                        return Poll::Ready(());
                    }
                    this.state.set(State::Stalled);
                }
                StateProj::Stalled => return Poll::Pending,
            }
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        // Entered: outside the runtime, `tokio::time::Instant::now()` would not see paused time.
        let _enter = self.handle.enter();
        tokio::time::Instant::now().into_std()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        match self.timers.get() {
            Some(true) => self.tokio_sleep(deadline),
            Some(false) => SystemClock::default().sleep_until(deadline),
            None => {
                // Tokio panics when a runtime built without `enable_time` creates a timer. Probe
                // once (its message, naming the fix, reaches the panic hook) and fall back to the
                // system timer: such a runtime cannot pause time, so both clocks agree.
                let probe = catch_unwind(AssertUnwindSafe(|| self.tokio_sleep(deadline)));
                let _ = self.timers.set(probe.is_ok());
                probe.unwrap_or_else(|_| SystemClock::default().sleep_until(deadline))
            }
        }
    }
}
