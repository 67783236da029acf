//! [`Clock`]: the seam through which a root context gets its time and its timers.
//!
//! Every root carries a clock and every context derived from it uses the same one. ctx-core
//! ships [`SystemClock`] (real time, a process-wide timer thread, no runtime needed); the
//! adapter crates supply their runtime's clock (`ctx-tokio` honours `tokio::time::pause`), and
//! `ctx-testkit`'s `MockClock` is a clock whose time moves only when a test says so.
//!
//! # What a clock must do
//!
//! * [`now`](Clock::now) returns the clock's current [`Instant`]; it never goes backwards.
//! * [`sleep_until`](Clock::sleep_until) returns a future that completes at or after
//!   `deadline` on this clock, never before. Once polled, it must wake the waker it was last
//!   polled with when the deadline is reached *without being polled again* — as every timer
//!   future does: a reactor, a timer thread or a runtime driver does the waking.
//! * That wake happens outside any lock the sleep's own `poll` takes: ctx-core polls the sleep
//!   again inside the wake. (tokio, async-io, futures-timer and `MockClock` all wake after
//!   releasing their locks.) A sleep that wakes itself inside its own `poll` (tokio's, when
//!   its task is out of cooperative budget) is not polled again on that thread: that poll is
//!   handed to ctx-core's watcher thread, so the waking thread always gets control back.
//!
//! ctx-core polls that future itself, with a waker of its own, only when something waits on a
//! deadline context (a `done()` poll, [`wait_blocking`](crate::Ctx::wait_blocking), an
//! [`after_func`](crate::Ctx::after_func)); when the waker fires, ctx-core polls the future
//! again inline, on the waking thread, and marks the context done. So a timer is armed only for
//! deadlines somebody waits for, and no task is spawned to watch it. A timer is dropped as
//! soon as its context is canceled or dropped. The after-funcs of the contexts a timer ends do
//! not run on the waking thread but on threads of their own, unless the clock says otherwise
//! ([`Clock::after_funcs_inline`]).
//!
//! # Examples
//!
//! A complete adapter for a runtime whose timer is `futures-timer`'s `Delay` (this is, in
//! essence, how [`SystemClock`] is built):
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use ctx_core::{Clock, Ctx, clock::Timer};
//!
//! #[derive(Debug, Default)]
//! struct DelayClock;
//!
//! impl Clock for DelayClock {
//!     fn now(&self) -> Instant {
//!         Instant::now()
//!     }
//!     fn sleep_until(&self, deadline: Instant) -> Timer {
//!         let delay = deadline.saturating_duration_since(Instant::now());
//!         Box::pin(futures_timer::Delay::new(delay))
//!     }
//! }
//!
//! let root = Ctx::background_with_clock(Arc::new(DelayClock));
//! let (ctx, _cancel) = root.with_timeout(Duration::from_millis(5));
//! assert_eq!(ctx.wait_blocking(), ctx_core::Error::DeadlineExceeded);
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

/// The timer future returned by [`Clock::sleep_until`]: boxed, `Send`, ready at the deadline.
///
/// Not to be confused with [`Sleep`](crate::Sleep), the future of
/// [`Ctx::sleep`](crate::Ctx::sleep), which waits on such a timer and ends early when its
/// context is done.
///
/// # Examples
///
/// ```
/// use ctx_core::clock::Timer;
/// # ctx_testkit::MockClock::new().block_on(async {
/// // A clock whose deadline has already passed may hand out a timer that is ready at once.
/// let timer: Timer = Box::pin(std::future::ready(()));
/// timer.await;
/// # });
/// ```
pub type Timer = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A source of time and timers for a tree of contexts. See the [module docs](self).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current instant on this clock. Monotonic.
    fn now(&self) -> Instant;

    /// A future that completes at or after `deadline` on this clock, never before, and that
    /// wakes its last waker by itself when it does. A `deadline` that has already passed gives
    /// a future that is ready at once.
    fn sleep_until(&self, deadline: Instant) -> Timer;

    /// Whether after-funcs that this clock's timers fire run on the thread that wakes the
    /// timer (`true`), or on ctx-core's after-func threads (`false`, the default).
    ///
    /// A timer is usually woken on a shared thread (a timer thread, a runtime's driver): an
    /// after-func that blocked there would keep every other deadline of the process from
    /// firing, so by default ctx-core hands them to threads of their own (see
    /// [`Ctx::after_func`](crate::Ctx::after_func)). A clock whose timers are woken by its
    /// user's own call — a test clock's `advance`, which promises that everything due has run
    /// when it returns — answers `true`, and the after-funcs run on that caller's thread.
    /// Such a clock wakes each timer once, from that call: a wake that finds the timer still in
    /// its first poll on another thread (it was armed while the clock moved) waits for that poll
    /// to end and completes the timer itself, so the waking call never returns before it has.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Clock, clock::SystemClock};
    /// assert!(!SystemClock::default().after_funcs_inline());
    /// ```
    fn after_funcs_inline(&self) -> bool {
        false
    }

    /// Runs `f` — an after-func of a context that one of this clock's timers has just ended —
    /// away from the thread that woke the timer (when
    /// [`after_funcs_inline`](Clock::after_funcs_inline) is `false`). `Err(f)`, the default,
    /// leaves it to ctx-core's after-func threads.
    ///
    /// A runtime whose tests pause time overrides this so that the runtime sees the work:
    /// ctx-tokio's clock (on a runtime whose time can be paused) runs `f` on tokio's blocking
    /// pool, which holds back the auto-advance of paused time until `f` returns, so a
    /// paused-time test of an after-func is deterministic.
    ///
    /// `f` contains its own panic, and runs at most once. If the clock drops it without running
    /// it (a runtime shutting down), it runs on ctx-core's after-func threads then: an
    /// after-func runs exactly once whatever the clock does.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_core::{Clock, clock::SystemClock};
    /// let job: Box<dyn FnOnce() + Send> = Box::new(|| {});
    /// assert!(SystemClock::default().spawn_after_func(job).is_err()); // ctx-core's threads
    /// ```
    #[allow(clippy::type_complexity)]
    fn spawn_after_func(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), Box<dyn FnOnce() + Send + 'static>> {
        Err(f)
    }
}

/// Real time from [`Instant::now`]; timers from `futures-timer`.
///
/// The clock of [`Ctx::background`](crate::Ctx::background). It needs no runtime: the timer
/// thread of `futures-timer` (one per process, started the first time a deadline is waited
/// for) fires deadlines, so `wait_blocking`, after-funcs and `done()` under
/// `futures::executor::block_on` all see deadlines pass.
///
/// Why `futures-timer` and not a thread of our own: it is small (no dependencies), executor
/// agnostic, keeps all timers of the process on one thread with a heap, and is what the
/// `futures` ecosystem already uses.
///
/// # Precision
///
/// A deadline may fire late (by the timer thread's scheduling latency), never early: ctx-core
/// re-checks [`now`](Clock::now) before it declares a deadline exceeded.
///
/// # Examples
///
/// ```
/// use ctx_core::{Clock, clock::SystemClock};
/// let clock = SystemClock::default();
/// let t = clock.now();
/// assert!(clock.now() >= t);
/// ```
#[derive(Debug, Default, Clone, Copy)]
#[non_exhaustive]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        let delay = deadline.saturating_duration_since(Instant::now());
        Box::pin(futures_timer::Delay::new(delay))
    }
}

pub(crate) use self::shared::{ClockRef, SharedClock};

/// How nodes hold their clock: the few that *own* it (a root made by `background_with_clock` or
/// `todo_with_clock`, a wrap, a bridge: see invariant 12 in `tree/mod.rs`) keep a
/// [`SharedClock`], which counts; every other node keeps a [`ClockRef`], a one-word pointer into
/// an owner above it, whose clone is a copy. So deriving and dropping a context under a root
/// with a clock of its own touches no reference count of the clock: a count shared by every
/// context of a tree would be one cache line written by every thread that derives from it.
///
/// The crate's only `unsafe` code is here: dereferencing that pointer, and taking a count from
/// it (`ClockRef::to_shared`), for what must keep the clock beyond the node it was read from (a
/// timer future, a wrap). Both are sound only by invariant 12, which the engine keeps.
#[allow(unsafe_code)]
mod shared {
    use std::fmt;
    use std::ptr::NonNull;
    use std::sync::Arc;
    use std::time::Instant;

    use super::{Clock, SystemClock};

    /// An owner of a clock (`None`: the system clock, which needs none). Boxed once per root so
    /// that a [`ClockRef`] into it is one thin pointer.
    #[derive(Clone, Default)]
    pub(crate) struct SharedClock(Option<Arc<Arc<dyn Clock>>>);

    impl SharedClock {
        /// A root's clock.
        pub(crate) fn new(clock: Arc<dyn Clock>) -> SharedClock {
            SharedClock(Some(Arc::new(clock)))
        }

        /// A pointer into this owner, for the node that holds it (and, copied, for every node
        /// below that node: invariant 12 of `tree/mod.rs`).
        pub(crate) fn borrow(&self) -> ClockRef {
            // `Arc::as_ptr`, not a reference: the pointer keeps the provenance of the `Arc`'s
            // whole block, which `ClockRef::to_shared` needs to reach the counts. Never null.
            ClockRef(
                self.0
                    .as_ref()
                    .and_then(|c| NonNull::new(Arc::as_ptr(c).cast_mut())),
            )
        }

        pub(crate) fn get(&self) -> &dyn Clock {
            match &self.0 {
                None => &SystemClock,
                Some(c) => &***c,
            }
        }

        #[inline]
        pub(crate) fn now(&self) -> Instant {
            match &self.0 {
                None => Instant::now(),
                Some(c) => c.now(),
            }
        }
    }

    /// How a node holds its clock: one word, `None` for the system clock, else a pointer to the
    /// clock inside a [`SharedClock`] that the node itself or one of its ancestors owns. Its
    /// clone is a copy: no reference count.
    ///
    /// Invariant (12 in `tree/mod.rs`): a `ClockRef` is made only by [`SharedClock::borrow`],
    /// for the node that holds that owner, and copied only into that node's descendants, each
    /// of which holds its parent(s) strongly until its own `Drop`; or read for as long as a
    /// node it came from is borrowed (`Ctx::value_any`, the `Done` of a node). So while a
    /// `ClockRef` can be reached, its owner is alive.
    #[derive(Clone)]
    pub(crate) struct ClockRef(Option<NonNull<Arc<dyn Clock>>>);

    // SAFETY: a `ClockRef` gives only `&` access to an `Arc<dyn Clock>`, which is `Send` and
    // `Sync` (`Clock: Send + Sync`): sharing or sending the pointer is sharing `&Arc<dyn Clock>`,
    // as the `Arc<Arc<dyn Clock>>` it borrows from could be. Its lifetime is invariant 12's.
    unsafe impl Send for ClockRef {}
    // SAFETY: as for `Send`.
    unsafe impl Sync for ClockRef {}

    impl ClockRef {
        /// The system clock.
        pub(crate) const SYSTEM: ClockRef = ClockRef(None);

        #[inline]
        fn clock(&self) -> Option<&Arc<dyn Clock>> {
            // SAFETY: the pointer was made by `SharedClock::borrow` from a live
            // `Arc<Arc<dyn Clock>>` (it points at the inner `Arc`, in that `Arc`'s heap block,
            // which does not move), and that owner is alive while this `ClockRef` can be
            // reached (invariant 12 of `tree/mod.rs`); the borrow returned is tied to `&self`.
            // Nothing is ever written through it.
            self.0.map(|p| unsafe { p.as_ref() })
        }

        pub(crate) fn get(&self) -> &dyn Clock {
            match self.clock() {
                None => &SystemClock,
                Some(c) => &**c,
            }
        }

        #[inline]
        pub(crate) fn now(&self) -> Instant {
            match self.clock() {
                None => Instant::now(),
                Some(c) => c.now(),
            }
        }

        /// Whether `self` and `other` are one clock: the same `Arc<dyn Clock>` (roots made from
        /// one `Arc`, as a `MockClock`'s are), or both the system clock. Nodes of one tree always
        /// are; a merge of two trees may not be.
        #[inline]
        pub(crate) fn same(&self, other: &ClockRef) -> bool {
            let id = |r: &ClockRef| r.clock().map(|c| Arc::as_ptr(c).cast::<()>());
            self.0 == other.0 || id(self) == id(other)
        }

        /// An owner of the same clock, for what keeps it beyond the node this came from (a
        /// timer future holds its node only weakly; a wrap holds nothing of the wrapped tree).
        pub(crate) fn to_shared(&self) -> SharedClock {
            SharedClock(self.0.map(|p| {
                let p = p.as_ptr().cast_const();
                // SAFETY: `p` is `Arc::as_ptr` of an `Arc<Arc<dyn Clock>>` (made by
                // `SharedClock::borrow`, with the provenance of the `Arc`'s block), alive while
                // this `ClockRef` can be reached (invariant 12). So its strong count is at least
                // one: adding one and taking that count as an `Arc` of our own is what
                // `Arc::clone` does.
                unsafe {
                    Arc::increment_strong_count(p);
                    Arc::from_raw(p)
                }
            }))
        }
    }

    impl fmt::Debug for ClockRef {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.get(), f)
        }
    }

    impl fmt::Debug for SharedClock {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.get(), f)
        }
    }
}
