//! [`TokioClock`] and the roots built on it.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock, Weak};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use ctx_core::clock::{SystemClock, Timer};
use ctx_core::{Clock, Ctx};
use pin_project_lite::pin_project;
use tokio::runtime::{Handle, RuntimeFlavor, TryCurrentError};
use tokio::task::Unconstrained;

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
/// The clock holds the runtime's [`Handle`] and enters it when it creates a timer, because
/// ctx-core may do so from any thread (a plain thread in `wait_blocking`, another runtime's
/// worker, the thread that cancels): timers are driven by this runtime's driver even when
/// nobody polls the context.
///
/// Reading the time enters nothing unless it has to. Tokio's time can be paused
/// (`tokio::time::pause`, `#[tokio::test(start_paused = true)]`) only on a current-thread
/// runtime, only when tokio is built with its `test-util` feature, and paused time is visible
/// only from inside the runtime. So [`now`](Clock::now) is:
///
/// * [`Instant::now`] on a multi-thread runtime, or on any runtime when tokio lacks
///   `test-util` (found out at compile time): tokio's clock is then the system's, to the
///   nanosecond;
/// * otherwise (a current-thread runtime, tokio with `test-util`: typically tests)
///   `tokio::time::Instant::now()`: read as is on a thread inside this runtime (a task,
///   `block_on`, `Runtime::enter`), once a check of the thread's current runtime says so; on
///   any other thread (a plain one, another runtime's) with the handle entered for the read,
///   as tokio offers no other way to reach a runtime's paused clock. Entering costs about as
///   much as the read itself.
///
/// So paused time is honoured on every thread, and a thread inside another runtime never
/// reads that runtime's clock for this one. Where the time cannot be paused the clock says so
/// ([`is_instant_now`](Clock::is_instant_now)), and ctx-core reads `Instant::now()` (and, for a
/// deadline far ahead, the kernel's coarse clock) itself: `err()` of a context with a deadline
/// and the cancel of a `with_timeout` context cost what they cost under `Ctx::background()`.
///
/// Timers are ctx-core's work, not the task's: they are polled outside tokio's cooperative
/// budget, so a task that has spent its budget still sees its deadline fire.
///
/// Holding a `Handle` does not keep the runtime running. The first timer of a runtime spawns
/// one idle task on it (counted in `num_alive_tasks`) whose drop, when the runtime shuts
/// down, moves the runtime's pending timers to ctx-core's system timer thread; so a deadline
/// still fires after its runtime is gone, and no timer is ever polled on a runtime that shut
/// down. A deadline more than 30 years away never arms a timer (as tokio's own far future).
///
/// # Requirements
///
/// The runtime must have its time driver (`enable_time()` or `enable_all()` on its builder), as
/// for every tokio timer: tokio gives no way to ask a [`Handle`] whether it has one. Without
/// it, tokio panics when the first timer is made; in a build with `panic = "unwind"`, that
/// first panic is caught and the clock falls back to the system timer thread (the panic hook
/// still reports it), but with `panic = "abort"` the process aborts.
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
    /// A current-thread runtime and a tokio with `test-util`: its time may be paused, so `now()`
    /// reads it from inside the runtime. Otherwise tokio's time is `Instant::now()`.
    pausable: bool,
    /// The runtime's liveness, shared by every clock of the runtime; found by the first timer.
    runtime: Arc<OnceLock<Arc<Runtime>>>,
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
            pausable: TOKIO_CAN_PAUSE && handle.runtime_flavor() == RuntimeFlavor::CurrentThread,
            handle,
            runtime: Arc::new(OnceLock::new()),
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

    fn runtime(&self) -> &Runtime {
        self.runtime.get_or_init(|| Runtime::of(&self.handle))
    }

    fn tokio_sleep(&self, deadline: Instant) -> Timer {
        let sleep = {
            let _enter = self.handle.enter();
            tokio::task::unconstrained(tokio::time::sleep_until(deadline.into()))
        };
        Box::pin(TokioSleep {
            state: State::Tokio { sleep },
            deadline,
            clock: self.clone(),
        })
    }
}

// ===== Runtime: knowing, without a panic, that a runtime shut down =====

/// Whether one runtime still runs. Tokio panics when a timer of a runtime that shut down is
/// polled; this is how a timer knows not to poll it.
///
/// `running` turns `false` once, in the drop of a task spawned on the runtime for this purpose
/// (`Sentinel`). Tokio drops every task of a runtime that shuts down before it shuts down its
/// drivers (`close_and_shutdown_all`, then the time driver, in both schedulers). A timer polls
/// its tokio `Sleep` only while holding the read lock and seeing `true`; the sentinel's drop
/// takes the write lock. So every poll of a tokio timer happens before the time driver shuts
/// down, and every later poll sees `false` and uses the system timer instead.
#[derive(Debug)]
struct Runtime {
    running: RwLock<bool>,
    /// Whether the runtime has a time driver; probed by its first timer (see `timer_probed`).
    #[cfg(panic = "unwind")]
    timers: OnceLock<bool>,
}

/// Dropped with the runtime's tasks when the runtime shuts down (or at once, if spawned on a
/// runtime that already has).
struct Sentinel(Arc<Runtime>);

impl Drop for Sentinel {
    fn drop(&mut self) {
        *self.0.running.write().unwrap_or_else(PoisonError::into_inner) = false;
    }
}

impl Runtime {
    /// The one `Runtime` of the runtime behind `handle`, made (and its sentinel spawned) on
    /// first use.
    fn of(handle: &Handle) -> Arc<Runtime> {
        static RUNTIMES: Mutex<Vec<(tokio::runtime::Id, Weak<Runtime>)>> = Mutex::new(Vec::new());
        let id = handle.id();
        let mut all = RUNTIMES.lock().unwrap_or_else(PoisonError::into_inner);
        // An entry lives as long as its sentinel or a clock holds it: prune the others.
        all.retain(|(_, w)| w.strong_count() > 0);
        if let Some(rt) = all.iter().find(|(i, _)| *i == id).and_then(|(_, w)| w.upgrade()) {
            return rt;
        }
        let rt = Arc::new(Runtime {
            running: RwLock::new(true),
            #[cfg(panic = "unwind")]
            timers: OnceLock::new(),
        });
        all.push((id, Arc::downgrade(&rt)));
        drop(all);
        let sentinel = Sentinel(rt.clone());
        // Never completes; only its drop matters. On a runtime that shut down, tokio drops it
        // at once.
        drop(handle.spawn(async move {
            let _sentinel = sentinel;
            std::future::pending::<()>().await;
        }));
        rt
    }
}

/// How far ahead a timer may be armed: further deadlines never fire (tokio's own far future
/// is 30 years; tokio panics on a deadline near `Instant::MAX`).
const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);

impl TokioClock {
    /// A timer on tokio, or on the system timer if the runtime shut down or has no time driver.
    fn timer(&self, deadline: Instant) -> Timer {
        if !*self
            .runtime()
            .running
            .read()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return SystemClock::default().sleep_until(deadline);
        }
        self.timer_probed(deadline)
    }

    #[cfg(panic = "unwind")]
    fn timer_probed(&self, deadline: Instant) -> Timer {
        use std::panic::{AssertUnwindSafe, catch_unwind};
        // Damage control for a runtime built without `enable_time` (see `# Requirements`), not
        // a path any correct program takes: tokio has no way to ask a handle whether it has a
        // time driver, and panics on the first timer. Catch that once per runtime and use the
        // system timer from then on (such a runtime cannot pause time, so both agree). With
        // `panic = "abort"` there is no such fallback.
        let timers = &self.runtime().timers;
        match timers.get() {
            Some(true) => self.tokio_sleep(deadline),
            Some(false) => SystemClock::default().sleep_until(deadline),
            None => {
                let probe = catch_unwind(AssertUnwindSafe(|| self.tokio_sleep(deadline)));
                let _ = timers.set(probe.is_ok());
                probe.unwrap_or_else(|_| SystemClock::default().sleep_until(deadline))
            }
        }
    }

    #[cfg(not(panic = "unwind"))]
    fn timer_probed(&self, deadline: Instant) -> Timer {
        self.tokio_sleep(deadline)
    }
}

// ===== TokioSleep =====

pin_project! {
    /// A tokio timer that survives its runtime: once the runtime has shut down (see
    /// [`Runtime`]), it waits on the system timer instead, so a deadline still fires.
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
        // Unconstrained: out of the polling task's cooperative budget, tokio's `Sleep` would
        // return `Pending` and wake itself at once, however often it is polled in that poll.
        Tokio { #[pin] sleep: Unconstrained<tokio::time::Sleep> },
        System { sleep: Timer },
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
                    // Polled only under the read lock, while the runtime runs (see `Runtime`).
                    let running = this.clock.runtime().running.read();
                    let running = running.unwrap_or_else(PoisonError::into_inner);
                    if *running {
                        return sleep.poll(cx); // `running` is released after the poll
                    }
                    drop(running);
                    let sleep = SystemClock::default().sleep_until(*this.deadline);
                    this.state.set(State::System { sleep });
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

// ===== Whether tokio can pause time at all =====

/// Whether the tokio in this build can pause time: only with its `test-util` feature. Cargo
/// unifies tokio's features over the whole build, so a `cfg` of ctx-tokio cannot tell; tokio's
/// API can: `Builder::start_paused` exists only with `test-util`. Method lookup prefers an
/// inherent method to a trait's, so `builder.start_paused(false)` below calls tokio's method
/// where it exists (returning `&mut Builder`), and `NoStartPaused`'s where it does not
/// (returning `Missing`); the return type gives the answer, at compile time. Should a later
/// tokio have `start_paused` without `test-util`, the answer would be a safe `true`.
const TOKIO_CAN_PAUSE: bool = inherent(|builder| builder.start_paused(false));

#[allow(
    dead_code,
    reason = "unused when tokio has `test-util`: its own method is found"
)]
trait NoStartPaused {
    fn start_paused(&mut self, _: bool) -> Missing {
        Missing
    }
}

impl NoStartPaused for tokio::runtime::Builder {}

#[allow(
    dead_code,
    reason = "unused when tokio has `test-util`: its own method is found"
)]
struct Missing;

/// Which `start_paused` the lookup found, by the type it returns.
trait Found {
    const INHERENT: bool;
}

impl Found for &mut tokio::runtime::Builder {
    const INHERENT: bool = true;
}

impl Found for Missing {
    const INHERENT: bool = false;
}

/// Never calls `probe`: only its return type matters.
const fn inherent<T: Found>(_probe: fn(&'static mut tokio::runtime::Builder) -> T) -> bool {
    T::INHERENT
}

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        if !self.pausable {
            // A multi-thread runtime's time, or any runtime's when tokio lacks `test-util`,
            // cannot be paused: its `tokio::time::Instant::now()` is `Instant::now()`, to the
            // nanosecond.
            return Instant::now();
        }
        // `tokio::time::Instant::now()` reads the clock of the runtime the thread is inside
        // (the system's outside any): as is when that is this one, entered otherwise.
        // `try_current` clones an `Arc` where `enter` also swaps the thread's handle twice.
        // Equal ids are the same runtime: tokio draws them from a process-wide counter.
        if let Ok(current) = Handle::try_current()
            && current.id() == self.handle.id()
        {
            return tokio::time::Instant::now().into_std();
        }
        let _enter = self.handle.enter();
        tokio::time::Instant::now().into_std()
    }

    /// `true` where tokio's time cannot be paused (a multi-thread runtime, or a tokio without
    /// `test-util`): `now()` is then `Instant::now()`, and ctx-core reads it more cheaply
    /// (a coarse reading proves a far deadline ahead). `false` where it may be paused.
    fn is_instant_now(&self) -> bool {
        !self.pausable
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        match self.now().checked_add(FAR) {
            Some(far) if deadline <= far => self.timer(deadline),
            _ => Box::pin(std::future::pending()),
        }
    }

    /// On a runtime whose time can be paused, an after-func fired by one of its timers runs on
    /// its blocking pool, which holds paused time's auto-advance back until the after-func
    /// returns: tokio sees the work, and a paused-time test of an after-func does not race the
    /// clock's jump to the next timer. Elsewhere, ctx-core's after-func threads run it (tokio's
    /// blocking pool is bounded; an after-func may block for as long as it likes).
    #[allow(clippy::type_complexity)]
    fn spawn_after_func(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), Box<dyn FnOnce() + Send + 'static>> {
        if !self.pausable {
            return Err(f);
        }
        // A runtime that is shutting down drops `f` unrun; ctx-core then runs it itself.
        drop(self.handle.spawn_blocking(f));
        Ok(())
    }
}
