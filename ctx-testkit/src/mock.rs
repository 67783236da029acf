//! [`MockClock`]: time that moves only when a test says so.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Clock, Ctx};

/// A clock for tests: deterministic, manually advanced time that works with any executor.
///
/// Contexts derived from [`background`](MockClock::background) (through every derivation,
/// `without_cancel` included) read their time from this clock and arm their deadline timers
/// on it. Time starts at the real [`Instant::now`] of [`MockClock::new`] and then **never moves
/// by itself**: only [`advance`](MockClock::advance) and [`advance_to`](MockClock::advance_to)
/// move it, and they fire every deadline that is due before they return. So a test of a 30 s
/// timeout runs in microseconds and gives the same result on every run and every executor.
/// [`block_on`](MockClock::block_on) runs a future and does the advancing for you: whenever
/// the future is idle, time jumps to the next timer.
///
/// `MockClock` is `Clone + Send + Sync`: clones share one timeline (advance any of them);
/// separate [`MockClock::new`]s are independent.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::Error;
/// use ctx_testkit::MockClock;
///
/// let clock = MockClock::new();
/// let root = clock.background();
/// let (ctx, _cancel) = root.with_timeout(Duration::from_secs(5));
/// assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(5)));
///
/// clock.advance(Duration::from_secs(4)); // nothing fires
/// assert_eq!(ctx.err(), None);
/// clock.advance(Duration::from_secs(1)); // deadline reached: done, wakers woken
/// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
/// ```
#[derive(Clone)]
pub struct MockClock {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The clock the roots share (`as_clock`); weak, as it holds this `Shared`.
    me: Mutex<std::sync::Weak<dyn Clock>>,
}

struct State {
    /// The mock's current instant. Only ever moves forward.
    now: Instant,
    /// Tie-breaker for timers with the same deadline: registration order.
    next_id: u64,
    /// Pending timers by (deadline, registration id). An entry is removed when it fires or
    /// when its sleep future is dropped.
    timers: BTreeMap<(Instant, u64), Waker>,
}

impl MockClock {
    /// A new, independent timeline whose time starts at the real [`Instant::now`] and then
    /// stands still until [`advance`](MockClock::advance)d.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ctx_testkit::MockClock::new();
    /// let t = clock.now();
    /// std::thread::yield_now();
    /// assert_eq!(clock.now(), t); // time stands still
    /// ```
    pub fn new() -> MockClock {
        MockClock {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    now: Instant::now(),
                    next_id: 0,
                    timers: BTreeMap::new(),
                }),
                me: Mutex::new(std::sync::Weak::<MockClock>::new() as std::sync::Weak<dyn Clock>),
            }),
        }
    }

    /// A background root (`context.Background`) whose time and timers are this clock's. Every
    /// context derived from it uses this clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ctx_testkit::MockClock::new();
    /// let root = clock.background();
    /// assert_eq!(root.to_string(), "context.Background");
    /// let (ctx, _c) = root.with_timeout(Duration::from_secs(1));
    /// assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(1)));
    /// ```
    #[doc(alias = "Background")]
    pub fn background(&self) -> Ctx {
        Ctx::background_with_clock(self.as_clock())
    }

    /// A TODO root (`context.TODO`) whose time and timers are this clock's.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = ctx_testkit::MockClock::new();
    /// assert_eq!(clock.todo().to_string(), "context.TODO");
    /// assert_eq!(clock.todo().now(), clock.now());
    /// ```
    #[doc(alias = "TODO")]
    pub fn todo(&self) -> Ctx {
        Ctx::todo_with_clock(self.as_clock())
    }

    /// This timeline as one `Arc<dyn Clock>`, shared by every root made while any of them lives:
    /// so ctx-core sees the roots of one mock as one clock (a merge of two of them judges both
    /// parents' deadlines on it).
    fn as_clock(&self) -> Arc<dyn Clock> {
        let mut me = self.shared.me.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(clock) = me.upgrade() {
            return clock;
        }
        let clock: Arc<dyn Clock> = Arc::new(self.clone());
        *me = Arc::downgrade(&clock);
        clock
    }

    /// The mock's current instant. It changes only in [`advance`](MockClock::advance) and
    /// [`advance_to`](MockClock::advance_to).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ctx_testkit::MockClock::new();
    /// let t = clock.now();
    /// clock.advance(Duration::from_millis(1500));
    /// assert_eq!(clock.now() - t, Duration::from_millis(1500));
    /// ```
    pub fn now(&self) -> Instant {
        self.shared.lock().now
    }

    /// Moves time forward by exactly `d`, firing every timer that falls due, before returning.
    ///
    /// What moves: this clock's [`now`](MockClock::now), for every clone of it and every
    /// context derived from [`background`](MockClock::background). Time steps through the
    /// deadlines on the way, as under tokio's paused clock: while the timers due at instant `t`
    /// are being fired, `now()` reads `t`; when `advance` returns, `now()` is the starting
    /// instant plus `d` exactly (or later, if a callback advanced the clock further itself).
    ///
    /// What fires before it returns: every timer whose deadline is at or before the new
    /// instant (a deadline equal to `now` is reached), in deadline order, ties in registration
    /// order. Timers registered while `advance` runs (by an after-func that derives a new
    /// timeout, say) fire too if they are due. Since ctx-core completes a deadline inline on
    /// the thread that wakes its timer, when `advance` returns every context whose deadline
    /// is due is done, its `done()` futures are woken, its after-funcs have run (on this
    /// thread), and threads blocked in `wait_blocking` on it are released. Tasks woken on an
    /// executor still need that executor to poll them. Nothing ever fires early.
    ///
    /// Wakers and after-funcs run with no lock of the mock held: they may read the clock,
    /// derive contexts, register timers and even call `advance` again.
    ///
    /// What does not move: real time. `std::thread::sleep`, runtime timers and other clocks
    /// are unaffected, and the mock never advances by itself, except inside
    /// [`block_on`](MockClock::block_on), which advances to the next timer whenever the future
    /// it runs is idle (as tokio's paused clock does for tokio's timers).
    ///
    /// # Panics
    ///
    /// Never. A `d` too large for [`Instant`] moves time as far as `Instant` goes. A panic in
    /// a waker propagates to the caller, but after-funcs' panics are contained by ctx-core.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    /// use ctx_testkit::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let start = clock.now();
    /// let fired_at = Arc::new(Mutex::new(None));
    /// let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(3));
    /// let (c2, slot) = (clock.clone(), fired_at.clone());
    /// let _after = ctx.after_func(move || *slot.lock().unwrap() = Some(c2.now()));
    ///
    /// clock.advance(Duration::from_secs(10));
    /// assert_eq!(*fired_at.lock().unwrap(), Some(start + Duration::from_secs(3)));
    /// assert_eq!(clock.now(), start + Duration::from_secs(10));
    /// ```
    pub fn advance(&self, d: Duration) {
        let target = saturating_add(self.now(), d);
        self.advance_to(target);
    }

    /// Moves time forward to `instant`, firing every timer that falls due, as
    /// [`advance`](MockClock::advance) does. An `instant` at or before `now()` changes nothing
    /// but fires what is due: time never moves backwards.
    ///
    /// # Panics
    ///
    /// Never.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_core::Error;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(5));
    /// clock.advance_to(ctx.deadline().unwrap());
    /// assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    /// let now = clock.now();
    /// clock.advance_to(now - Duration::from_secs(1)); // in the past: no-op
    /// assert_eq!(clock.now(), now);
    /// ```
    pub fn advance_to(&self, instant: Instant) {
        loop {
            let mut st = self.shared.lock();
            let due = match st.timers.first_key_value() {
                Some((&(deadline, id), _)) if deadline <= instant => Some((deadline, id)),
                _ => None,
            };
            let Some(key) = due else {
                if instant > st.now {
                    st.now = instant;
                }
                return;
            };
            let waker = st.timers.remove(&key);
            if key.0 > st.now {
                st.now = key.0; // step through the deadline: `now()` reads it while it fires
            }
            drop(st);
            // No lock held: the waker re-polls the sleep (which locks us), may run after-funcs
            // that register timers or advance again.
            if let Some(w) = waker {
                w.wake();
            }
        }
    }

    /// The earliest deadline of the pending timers, if any. Handy to advance "to the next
    /// thing that happens".
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::FutureExt;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(5));
    /// assert_eq!(clock.next_deadline(), None); // no timer until somebody waits
    /// let mut done = ctx.done();
    /// assert!((&mut done).now_or_never().is_none());
    /// assert_eq!(clock.next_deadline(), ctx.deadline());
    /// ```
    pub fn next_deadline(&self) -> Option<Instant> {
        self.shared.lock().timers.first_key_value().map(|(&(d, _), _)| d)
    }

    /// Runs `fut` to completion on this thread, moving this clock's time by itself: whenever
    /// `fut` is pending and nothing has woken it, the clock advances to its earliest pending
    /// timer and fires it (and every other timer due at that instant), then `fut` is polled
    /// again if that woke it. So code that sleeps, backs off or times out on a `MockClock` tree
    /// runs through hours of mock time in microseconds of real time, with no `advance` in the
    /// test. It works for any code on this clock's contexts, whatever the executor it was
    /// written for, as long as it needs no runtime of its own (no tokio timers or I/O).
    ///
    /// Time moves only as far as needed: after `root.sleep(d).await` inside it, `now()` has
    /// advanced by exactly `d`. Timers step in order, as in [`advance`](MockClock::advance).
    ///
    /// # Wakes from other threads
    ///
    /// A wake is awaited only when no timer is pending: `fut` waits for something that is not
    /// time (a channel fed by another thread, a cancel from elsewhere). Then the thread parks,
    /// and is released by a wake, or by a timer that another thread registers on this clock.
    /// After [`IDLE_LIMIT`](MockClock::IDLE_LIMIT) of real time with neither, nothing can
    /// plausibly wake `fut`: `block_on` panics instead of hanging. While timers are pending,
    /// the clock moves at once: a wake that another thread would send in real time races with
    /// that, as in tokio's paused time. Make such a test deterministic by waiting for the
    /// other thread inside `fut` before anything sleeps.
    ///
    /// # Panics
    ///
    /// When `fut` is pending, no timer is pending on this clock and nothing woke it for
    /// [`IDLE_LIMIT`](MockClock::IDLE_LIMIT): it can never complete. A panic of `fut` itself
    /// propagates.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_testkit::MockClock;
    ///
    /// let clock = MockClock::new();
    /// let root = clock.background();
    /// let start = clock.now();
    /// let out = clock.block_on(async move {
    ///     root.sleep(Duration::from_secs(3600)).await // returns at once in real time
    /// });
    /// assert_eq!(out, Ok(()));
    /// assert_eq!(clock.now(), start + Duration::from_secs(3600));
    /// ```
    #[track_caller]
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        let mut fut = std::pin::pin!(fut);
        let signal = Arc::new(Signal {
            thread: std::thread::current(),
            woken: AtomicBool::new(false),
        });
        let waker = Waker::from(signal.clone());
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
                return out;
            }
            // Pending. Polled again at once if it was woken meanwhile (by itself, by another
            // thread, by a timer fired below); else time moves to the next timer; else wait.
            let mut idle_since: Option<Instant> = None;
            let mut step = Duration::from_micros(50);
            while !signal.woken.swap(false, Ordering::AcqRel) {
                if let Some(next) = self.next_deadline() {
                    // Fires every timer due at `next`, no lock held; a fired timer that is
                    // ours sets `woken` before `advance_to` returns.
                    self.advance_to(next);
                    idle_since = None;
                    continue;
                }
                // Real time, not the sum of the steps: `park_timeout` may return early.
                let since = *idle_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= Self::IDLE_LIMIT {
                    panic!(
                        "MockClock::block_on: the future is pending, no timer is pending on this \
                         clock and nothing woke it for {:?}: it can never complete (a deadlock, \
                         or a wait on a clock or runtime other than this MockClock)",
                        Self::IDLE_LIMIT
                    );
                }
                // A wake unparks us; a timer registered by another thread is seen after the
                // step. `park_timeout` may also return spuriously: the loop re-checks.
                std::thread::park_timeout(step);
                step = (step * 2).min(Duration::from_millis(10));
            }
        }
    }

    /// How long [`block_on`](MockClock::block_on) waits, in real time, for a wake or a new timer
    /// when the future is pending and no timer is pending, before it panics: one second.
    pub const IDLE_LIMIT: Duration = Duration::from_secs(1);

    /// How many timers are registered and not yet fired or dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let clock = ctx_testkit::MockClock::new();
    /// let (ctx, cancel) = clock.background().with_timeout(Duration::from_secs(5));
    /// let _after = ctx.after_func(|| {}); // arms the deadline timer
    /// assert_eq!(clock.pending_timers(), 1);
    /// cancel.cancel(); // a canceled context drops its timer
    /// assert_eq!(clock.pending_timers(), 0);
    /// ```
    pub fn pending_timers(&self) -> usize {
        self.shared.lock().timers.len()
    }
}

impl Default for MockClock {
    /// Same as [`MockClock::new`]: a new, independent timeline.
    fn default() -> MockClock {
        MockClock::new()
    }
}

/// Shows `now` and the number of pending timers. Never blocks: prints `<locked>` while another
/// thread holds the mock's lock.
impl fmt::Debug for MockClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MockClock");
        match self.shared.state.try_lock() {
            Ok(st) => d.field("now", &st.now).field("pending_timers", &st.timers.len()),
            Err(TryLockError::Poisoned(p)) => {
                let st = p.into_inner();
                d.field("now", &st.now).field("pending_timers", &st.timers.len())
            }
            Err(TryLockError::WouldBlock) => d.field("state", &format_args!("<locked>")),
        };
        d.finish()
    }
}

impl Clock for MockClock {
    fn now(&self) -> Instant {
        MockClock::now(self)
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        Box::pin(MockSleep {
            shared: self.shared.clone(),
            deadline,
            key: None,
        })
    }

    /// `true`: [`advance`](MockClock::advance) promises that the after-funcs of every context
    /// it ends have run, on its caller's thread, when it returns.
    fn after_funcs_inline(&self) -> bool {
        true
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // No user code runs under this lock, so poisoning can only come from a bug of ours;
        // the state is still consistent (every update is a single insert/remove/store).
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `now + d`, or the latest instant `Instant` can represent past `now` when that overflows.
fn saturating_add(now: Instant, d: Duration) -> Instant {
    if let Some(t) = now.checked_add(d) {
        return t;
    }
    // Greedy: add the largest power-of-two steps that still fit.
    let mut t = now;
    let mut step = d;
    while !step.is_zero() {
        match t.checked_add(step) {
            Some(next) => t = next,
            None => step /= 2,
        }
    }
    t
}

// ===== block_on =====

/// The waker of [`MockClock::block_on`]: records the wake and unparks the blocked thread.
struct Signal {
    thread: std::thread::Thread,
    /// Set by a wake, taken by `block_on` before it decides to advance or to park.
    woken: AtomicBool,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::AcqRel) {
            self.thread.unpark();
        }
    }
}

// ===== MockSleep =====

/// The timer future of [`MockClock`]: registered in the mock's queue on its first pending poll,
/// ready once the mock's `now` reaches the deadline; dropping it removes its entry.
struct MockSleep {
    shared: Arc<Shared>,
    deadline: Instant,
    /// Our entry in `timers`, once registered.
    key: Option<(Instant, u64)>,
}

impl Future for MockSleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut st = this.shared.lock();
        if st.now >= this.deadline {
            let old = this.key.take().and_then(|k| st.timers.remove(&k));
            drop(st);
            drop(old); // a waker's drop is executor code: not under our lock
            return Poll::Ready(());
        }
        let mut old = None;
        match this.key.and_then(|k| st.timers.get_mut(&k)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => old = Some(std::mem::replace(w, cx.waker().clone())),
            None => {
                // First poll (or the entry was fired while time was then moved back to
                // before the deadline, which cannot happen: register anew to be safe).
                let key = (this.deadline, st.next_id);
                st.next_id += 1;
                st.timers.insert(key, cx.waker().clone());
                this.key = Some(key);
            }
        }
        drop(st);
        drop(old);
        Poll::Pending
    }
}

impl Drop for MockSleep {
    fn drop(&mut self) {
        if let Some(k) = self.key.take() {
            let old = self.shared.lock().timers.remove(&k);
            drop(old);
        }
    }
}
