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
//! * A clock whose `now()` is [`Instant::now()`] itself, always (nothing pauses or moves it),
//!   says so with [`is_instant_now`](Clock::is_instant_now): deadline checks on its tree then
//!   cost what they cost on the system clock (a coarse reading proves a far deadline ahead).
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
//!     fn is_instant_now(&self) -> bool {
//!         true // `now()` is `Instant::now()`: deadline checks as cheap as `background()`'s
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

    /// Whether [`now`](Clock::now) is [`Instant::now()`] itself, on every call and from any
    /// thread: time that cannot be paused, offset or moved by hand. `false`, the default,
    /// unless the clock says so.
    ///
    /// A clock that says `true` lets ctx-core read the time its own way, with the answers
    /// `now()` would give: a reading of the kernel's coarse clock that proves a far deadline
    /// still ahead (a few nanoseconds, where a full reading costs twenty or more), so that
    /// `err()` and `is_done()` of a context with a deadline, and the cancel of a
    /// `with_timeout` context, make no full reading; and a reading that calls no code of the
    /// clock's, so that a cancel walk reads the time only if it meets a deadline. ctx-core
    /// asks once, when a root is made with the clock
    /// ([`Ctx::background_with_clock`](crate::Ctx::background_with_clock)), and keeps the
    /// answer for the root's whole tree. A clock that says `true` but whose `now()` reads other
    /// times gets its deadlines judged on `Instant::now()`: wrong times, never unsound.
    ///
    /// The runtimes' clocks say `true` where their time cannot be paused: async-io's
    /// (ctx-smol, ctx-async-std), and tokio's on a multi-thread runtime or without tokio's
    /// `test-util` feature. `MockClock` says `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Instant;
    /// use ctx_core::{Clock, clock::SystemClock};
    /// let clock = SystemClock::default();
    /// assert!(clock.is_instant_now());
    /// let before = Instant::now();
    /// let t = clock.now();
    /// assert!(before <= t && t <= Instant::now());
    /// ```
    fn is_instant_now(&self) -> bool {
        false
    }

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

    fn is_instant_now(&self) -> bool {
        true
    }

    fn sleep_until(&self, deadline: Instant) -> Timer {
        let delay = deadline.saturating_duration_since(Instant::now());
        Box::pin(futures_timer::Delay::new(delay))
    }
}

pub(crate) use self::shared::{NodeClock, SharedClock};

/// A cheap proof that a deadline on the system clock is still ahead, for the checks that ask
/// "has it passed?" (`err()` of a context with a deadline, a cancel, a new context's deadline):
/// [`ahead`](coarse::ahead) reads the kernel's coarse monotonic clock (one load of a page the
/// kernel keeps, no hardware counter: a few ns where `Instant::now()` costs 20–25 here), and
/// says yes only if even the latest time that reading allows is before the deadline. Otherwise
/// the caller reads `Instant::now()` as before, so every answer is the one a full read gives.
///
/// Why it is sound: `Instant` is `CLOCK_MONOTONIC` on Linux (std's documented choice), and
/// `CLOCK_MONOTONIC_COARSE` is the same clock as of the kernel's last tick: never ahead of it,
/// behind by less than its resolution (`clock_getres`). Once per process we read the coarse
/// clock (`c0`), then `Instant::now()` (`base`, which is at or after `c0`); later, with a
/// coarse reading `c`, the time is at most `base + (c + resolution - c0)`, kept as one
/// `Instant`, `origin = base - c0 + slack`, so that a check is one read, one addition and one
/// comparison. The slack is twice the resolution plus a millisecond, against a late tick. Where
/// there is no coarse clock (not Linux) nothing is proven and every check reads
/// `Instant::now()`.
///
/// What the slack does not cover: a coarse clock that lags by more (the tick of the CPU that
/// keeps time held up longer, as when a virtual machine's CPU is descheduled). Then a deadline
/// that has just passed may still be shown ahead until the next tick: `err()` says `None` that
/// much late, as it would if a timer fired late (Go's `Err()` changes only when its timer's
/// goroutine runs). Never early: "passed" is only ever said from a full `Instant::now()`.
///
/// The read is `libc`'s `clock_gettime` (the vDSO's, no system call), one `unsafe` call whose
/// argument is below. Not `rustix`'s safe wrapper: its own vDSO parser faults under valgrind,
/// which would take that tool away from every program that uses contexts.
pub(crate) mod coarse {
    use std::time::Instant;

    /// Whether `deadline` is certainly still ahead of `Instant::now()` (`false`: maybe not).
    #[inline]
    pub(crate) fn ahead(deadline: Instant) -> bool {
        imp::ahead(deadline)
    }

    #[cfg(target_os = "linux")]
    mod imp {
        use std::sync::OnceLock;
        use std::time::{Duration, Instant};

        /// The `Instant` a coarse reading of zero stands for, at the latest: `base - c0 +
        /// slack`, from one calibration (`Instant::now()`, `base`, read just after the coarse
        /// clock, `c0`; `slack`: how far a coarse reading may lag). So a coarse reading `c`
        /// allows no time after `origin + c`. `None`: the coarse clock cannot be trusted here,
        /// prove nothing.
        static ORIGIN: OnceLock<Option<Instant>> = OnceLock::new();

        /// Reads `CLOCK_MONOTONIC_COARSE`, or its resolution (`None`: it failed).
        #[allow(unsafe_code)]
        #[inline]
        fn read(resolution: bool) -> Option<Duration> {
            // Miri has no `clock_getres`: the coarsest tick Linux allows (`HZ` = 100).
            if cfg!(miri) && resolution {
                return Some(Duration::from_millis(10));
            }
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: both calls write one `timespec` through the pointer they are given, which
            // points at `ts`, a live local of that type; they keep no pointer.
            let rc = unsafe {
                if resolution {
                    libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut ts)
                } else {
                    libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts)
                }
            };
            let secs = u64::try_from(ts.tv_sec).ok()?;
            let nanos = u32::try_from(ts.tv_nsec).ok().filter(|&n| n < 1_000_000_000)?;
            (rc == 0).then(|| Duration::new(secs, nanos))
        }

        #[cold]
        fn calibrate() -> Option<Instant> {
            let c0 = read(false)?;
            let base = Instant::now();
            // A resolution above 100 ms is no coarse clock worth the name: prove nothing.
            let resolution = read(true).filter(|r| *r <= Duration::from_millis(100))?;
            let slack = 2 * resolution + Duration::from_millis(1);
            base.checked_sub(c0)?.checked_add(slack)
        }

        #[inline]
        pub(super) fn ahead(deadline: Instant) -> bool {
            let Some(origin) = *ORIGIN.get_or_init(calibrate) else {
                return false;
            };
            // The latest the time can be.
            read(false)
                .and_then(|c| origin.checked_add(c))
                .is_some_and(|latest| latest < deadline)
        }
    }

    #[cfg(not(target_os = "linux"))]
    mod imp {
        use std::time::Instant;

        #[inline]
        pub(super) fn ahead(_: Instant) -> bool {
            false
        }
    }

    #[cfg(test)]
    mod tests {
        use std::time::{Duration, Instant};

        use super::ahead;

        /// Never "ahead" for a time already read: whatever it proves holds.
        #[test]
        fn a_time_already_read_is_never_ahead() {
            for _ in 0..if cfg!(miri) { 100 } else { 100_000 } {
                let now = Instant::now();
                assert!(!ahead(now));
                assert!(!ahead(now - Duration::from_millis(1)));
            }
        }

        /// On Linux, a deadline an hour away is proven ahead without a full read.
        #[test]
        #[cfg_attr(not(target_os = "linux"), ignore = "no coarse clock here")]
        fn a_far_deadline_is_proven_ahead() {
            let far = Instant::now() + Duration::from_secs(3600);
            assert!(ahead(far));
            assert!(!ahead(Instant::now() + Duration::from_micros(10)));
        }
    }
}

/// How contexts hold their clock: the whole safety argument of this `unsafe` code (the crate's
/// others are `tree/thin.rs` and `coarse`'s one `libc` call above).
///
/// A node keeps its clock in a [`NodeClock`]: one word. The few nodes that *own* the clock (a
/// root made by `background_with_clock` or `todo_with_clock`, a wrap, a bridge) hold a counted
/// reference, as an `Arc` would; every other node holds an uncounted copy of its parent's
/// pointer, so that deriving and dropping a context under a root with a clock of its own writes
/// no reference count: a count shared by every context of a tree would be one cache line
/// written by every thread that derives from it.
///
/// # Safety argument (all of it is in this module)
///
/// * The pointer is made once, by [`SharedClock::new`], with `Arc::into_raw`; it never changes
///   and is only ever turned back into an `Arc` (or counted) through `Arc::from_raw` /
///   `Arc::increment_strong_count` / `Arc::decrement_strong_count`, as std requires.
/// * A [`SharedClock`] owns one strong count (`Clone` adds one, `Drop` gives it back), so while
///   one exists the clock is alive. An owning [`NodeClock`] (`OWNS` tag set) is a `SharedClock`
///   in another form (made only by [`NodeClock::own`], given back by [`NodeClock::release`],
///   which makes it the system clock: no pointer is left behind).
/// * A *borrowed* [`NodeClock`] (`OWNS` tag clear) counts nothing. It is made only by
///   [`NodeClock::below`], which is `unsafe`: its caller promises that the `NodeClock` it
///   copies from stays where it is, alive, for as long as the copy can be read. Nothing else makes
///   one: `NodeClock` is neither `Clone` nor `Copy` (a test asserts it at compile time), so
///   safe code outside this module can only *borrow* a `NodeClock` (`&NodeClock`), never
///   duplicate it. By induction over the chain of copies, every borrowed `NodeClock` that can
///   be reached points into a clock whose owner is alive: every read (`get`, `now`, `same`) and
///   every new count (`to_shared`) is sound.
/// * The other tag, `INSTANT` (the clock reads `Instant::now()`, asked once in
///   [`SharedClock::new`] and kept in the block), is copied with the pointer and only ever
///   read; the system clock's `NodeClock` has it and no pointer (its address is the tag alone,
///   with no provenance: nothing is ever read through it). Every pointer is read with both
///   tags masked off (`block`).
/// * The one caller of `below` is the node module (`tree/node.rs`), for a child whose `parent`
///   field holds the node it copies from; that module keeps the parent for as long as the
///   child's `NodeClock` can be read (both fields are private to it; it lets go of the parent
///   only while dropping the child).
#[allow(unsafe_code)]
mod shared {
    use std::fmt;
    use std::ptr::NonNull;
    use std::sync::Arc;
    use std::time::Instant;

    use super::{Clock, SystemClock};

    /// The heap block of an owned clock, behind `Arc::into_raw` of an `Arc<Block>` (boxed once
    /// more than the `Arc<dyn Clock>` so that a pointer to it is one thin word).
    struct Block {
        clock: Arc<dyn Clock>,
        /// `clock.is_instant_now()`, asked once.
        instant: bool,
    }

    impl Block {
        #[inline]
        fn now(&self) -> Instant {
            if self.instant {
                Instant::now()
            } else {
                self.clock.now()
            }
        }
    }

    /// An owner of a clock (`None`: the system clock, which needs none): one strong count of the
    /// clock's `Arc`, held as the raw pointer `Arc::into_raw` gave.
    pub(crate) struct SharedClock(Option<NonNull<Block>>);

    // SAFETY: a `SharedClock` is an `Arc<Arc<dyn Clock>>` in raw form: it gives only `&` access
    // to an `Arc<dyn Clock>`, which is `Send + Sync` (`Clock: Send + Sync`).
    unsafe impl Send for SharedClock {}
    // SAFETY: as for `Send`.
    unsafe impl Sync for SharedClock {}

    impl SharedClock {
        /// An owner of `clock`, counted. Asks the clock whether it reads `Instant::now()`
        /// ([`Clock::is_instant_now`]), once: its readings through this owner and every
        /// `NodeClock` made from it are then `Instant::now()`'s.
        pub(crate) fn new(clock: Arc<dyn Clock>) -> SharedClock {
            let instant = clock.is_instant_now();
            let raw = Arc::into_raw(Arc::new(Block { clock, instant })).cast_mut();
            SharedClock(NonNull::new(raw))
        }

        /// The system clock.
        pub(crate) const SYSTEM: SharedClock = SharedClock(None);

        #[inline]
        fn block(&self) -> Option<&Block> {
            // SAFETY: `self` owns a strong count of the block (this module's argument), so it
            // is alive for as long as `&self` is borrowed.
            self.0.map(|p| unsafe { &*p.as_ptr() })
        }

        pub(crate) fn get(&self) -> &dyn Clock {
            match self.block() {
                None => &SystemClock,
                Some(b) => &*b.clock,
            }
        }

        #[inline]
        pub(crate) fn now(&self) -> Instant {
            match self.block() {
                None => Instant::now(),
                Some(b) => b.now(),
            }
        }
    }

    impl Default for SharedClock {
        fn default() -> SharedClock {
            SharedClock::SYSTEM
        }
    }

    impl Clone for SharedClock {
        fn clone(&self) -> SharedClock {
            if let Some(p) = self.0 {
                // SAFETY: `p` came from `Arc::into_raw`, and `self` holds a count of it: the
                // block is alive. Adding a count is `Arc::clone`.
                unsafe { Arc::increment_strong_count(p.as_ptr().cast_const()) };
            }
            SharedClock(self.0)
        }
    }

    impl Drop for SharedClock {
        fn drop(&mut self) {
            if let Some(p) = self.0 {
                // SAFETY: `p` came from `Arc::into_raw`, and `self` holds one count of it, which
                // it gives back here, once.
                unsafe { Arc::decrement_strong_count(p.as_ptr().cast_const()) };
            }
        }
    }

    /// How a node holds its clock: one word, the tag [`INSTANT`] alone for the system clock,
    /// else the pointer of a [`SharedClock`] with its low bit ([`OWNS`]) set when this
    /// `NodeClock` owns a count of it, and [`INSTANT`] when the clock reads `Instant::now()`.
    /// Neither `Clone` nor `Copy`: see the module's safety argument.
    pub(crate) struct NodeClock {
        /// A `Block` pointer from `Arc::into_raw` (8-aligned: the low bits are free), or none,
        /// tagged.
        ptr: *const Block,
    }

    /// The tag of an owning `NodeClock`.
    const OWNS: usize = 1;
    /// The tag of a clock that reads `Instant::now()`: the system clock, or one that says so
    /// ([`Clock::is_instant_now`]). Its readings call no code of the clock's.
    const INSTANT: usize = 2;
    /// Both tags.
    const TAGS: usize = OWNS | INSTANT;

    // SAFETY: a `NodeClock` gives only `&` access to an `Arc<dyn Clock>`, which is `Send +
    // Sync`; an owning one moves or shares a strong count, as an `Arc` does.
    unsafe impl Send for NodeClock {}
    // SAFETY: as for `Send`.
    unsafe impl Sync for NodeClock {}

    impl NodeClock {
        /// The system clock: no pointer, `INSTANT`.
        pub(crate) const SYSTEM: NodeClock = NodeClock {
            ptr: std::ptr::without_provenance(INSTANT),
        };

        /// A node's clock that owns `clock`'s count (a root, a wrap, a bridge).
        pub(crate) fn own(clock: SharedClock) -> NodeClock {
            let instant = clock.block().is_some_and(|b| b.instant);
            let clock = std::mem::ManuallyDrop::new(clock); // its count moves into the node
            match clock.0 {
                None => NodeClock::SYSTEM,
                Some(p) => NodeClock {
                    ptr: p
                        .as_ptr()
                        .cast_const()
                        .map_addr(|a| a | OWNS | if instant { INSTANT } else { 0 }),
                },
            }
        }

        /// A child's clock: `parent`'s, not counted.
        ///
        /// # Safety
        ///
        /// The caller keeps `parent` alive and in place (not dropped, not overwritten, not
        /// released) for as long as the returned `NodeClock` can be read: the node that holds
        /// the result holds the node that holds `parent`, and reads its clock no more once it
        /// lets go of it (while it is being dropped).
        #[inline]
        pub(crate) unsafe fn below(parent: &NodeClock) -> NodeClock {
            NodeClock {
                ptr: parent.ptr.map_addr(|a| a & !OWNS),
            }
        }

        /// Gives back the count an owning `NodeClock` holds, and leaves the system clock in its
        /// place (so nothing can read the clock through it afterwards). The owner of a
        /// `NodeClock` calls it when it is done with it: a `NodeClock` has no `Drop` (so that
        /// the many that own nothing cost nothing to drop), and one that owns a count and is
        /// never released keeps its clock alive forever (a leak, never a dangling pointer).
        #[inline]
        pub(crate) fn release(&mut self) {
            let owned = self.ptr.addr() & OWNS != 0;
            let p = self.block();
            *self = NodeClock::SYSTEM;
            if owned {
                // SAFETY: an owning `NodeClock` holds one count of a block from `Arc::into_raw`
                // (`own`); it gives it back here, once: `self` is the system clock from now on.
                unsafe { Arc::decrement_strong_count(p) };
            }
        }

        /// The block's pointer, untagged (null for the system clock).
        #[inline]
        fn block(&self) -> *const Block {
            self.ptr.map_addr(|a| a & !TAGS)
        }

        #[inline]
        fn clock(&self) -> Option<&Block> {
            let p = self.block();
            // SAFETY: a non-null pointer came from `Arc::into_raw` and its block is alive while
            // `self` is (an owning `NodeClock` holds a count; a borrowed one is alive only while
            // the one it copies from is: `below`'s contract). The borrow is tied to `&self`, and
            // nothing is ever written through the pointer.
            (!p.is_null()).then(|| unsafe { &*p })
        }

        pub(crate) fn get(&self) -> &dyn Clock {
            match self.clock() {
                None => &SystemClock,
                Some(b) => &*b.clock,
            }
        }

        /// Whether this clock reads `Instant::now()` (the system clock, or one that says so:
        /// [`Clock::is_instant_now`]): its readings call no code of the clock's, and a coarse
        /// reading of the same clock may prove a deadline ahead. One test of the word.
        #[inline]
        pub(crate) fn reads_instant(&self) -> bool {
            self.ptr.addr() & INSTANT != 0
        }

        #[inline]
        pub(crate) fn now(&self) -> Instant {
            if self.reads_instant() {
                return Instant::now();
            }
            match self.clock() {
                Some(b) => b.clock.now(),
                None => Instant::now(), // never: the system clock reads `Instant::now()`
            }
        }

        /// Whether `deadline` has passed on this clock (`now() >= deadline`). On a clock that
        /// reads `Instant::now()` a deadline that a coarse reading proves far away is answered
        /// without a full read (`super::coarse`); any other clock is asked its `now()`.
        #[inline]
        pub(crate) fn passed(&self, deadline: Instant) -> bool {
            if self.reads_instant() {
                return !super::coarse::ahead(deadline) && Instant::now() >= deadline;
            }
            self.now() >= deadline
        }

        /// Whether `deadline` is proven still ahead without a full read: on a clock that reads
        /// `Instant::now()`, by a coarse reading (`super::coarse`); any other clock proves
        /// nothing (`false`: ask `now()`).
        #[inline]
        pub(crate) fn proves_ahead(&self, deadline: Instant) -> bool {
            self.reads_instant() && super::coarse::ahead(deadline)
        }

        /// Whether `self` and `other` are one clock: the same `Arc<dyn Clock>` (roots made from
        /// one `Arc`, as a `MockClock`'s are), or both the system clock. Nodes of one tree always
        /// are; a merge of two trees may not be.
        #[inline]
        pub(crate) fn same(&self, other: &NodeClock) -> bool {
            let id = |r: &NodeClock| r.clock().map(|b| Arc::as_ptr(&b.clock).cast::<()>());
            self.block() == other.block() || id(self) == id(other)
        }

        /// An owner of the same clock, for what keeps it beyond the node this came from (a
        /// timer future holds its node only weakly; a wrap holds nothing of the wrapped tree).
        pub(crate) fn to_shared(&self) -> SharedClock {
            let p = self.block();
            if !p.is_null() {
                // SAFETY: `p` came from `Arc::into_raw` and its block is alive while `self` is
                // (see `clock`): its strong count is at least one, and adding one is
                // `Arc::clone`. The new count is the `SharedClock`'s.
                unsafe { Arc::increment_strong_count(p) };
            }
            SharedClock(NonNull::new(p.cast_mut()))
        }
    }

    impl fmt::Debug for NodeClock {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.get(), f)
        }
    }

    impl fmt::Debug for SharedClock {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            fmt::Debug::fmt(self.get(), f)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::clock::Timer;
        use std::time::Duration;

        #[derive(Debug)]
        struct Fixed(Instant);
        impl Clock for Fixed {
            fn now(&self) -> Instant {
                self.0
            }
            fn sleep_until(&self, _: Instant) -> Timer {
                Box::pin(std::future::pending())
            }
        }

        /// `NodeClock` is not `Clone`: the hole of a safe copy that outlives its owner cannot
        /// be written. (Ambiguous, and so a compile error, if `NodeClock: Clone`.)
        const _: fn() = || {
            trait AmbiguousIfClone<A> {
                fn check() {}
            }
            impl<T: ?Sized> AmbiguousIfClone<()> for T {}
            struct IsClone;
            impl<T: Clone> AmbiguousIfClone<IsClone> for T {}
            <NodeClock as AmbiguousIfClone<_>>::check();
        };

        /// What keeps a clock beyond its node is counted: under Miri, a read after the owner
        /// and the borrowed copy are gone is sound.
        #[test]
        fn a_counted_clock_outlives_its_node_and_its_root() {
            let t = Instant::now() + Duration::from_secs(7);
            let mut root = NodeClock::own(SharedClock::new(Arc::new(Fixed(t))));
            let kept = {
                // SAFETY: `child` is read only in this block, before `root` is released.
                let child = unsafe { NodeClock::below(&root) };
                assert!(child.same(&root));
                child.to_shared()
            };
            root.release();
            assert!(root.same(&NodeClock::SYSTEM));
            assert_eq!(kept.now(), t);
            let again = kept.clone();
            drop(kept);
            assert_eq!(again.now(), t);
            let mut last = NodeClock::own(again);
            assert_eq!(last.now(), t);
            last.release(); // the last count: Miri reports a leak if it is not given back
        }

        #[derive(Debug)]
        struct Instantly;
        impl Clock for Instantly {
            fn now(&self) -> Instant {
                unreachable!("a clock that reads Instant::now() is not asked")
            }
            fn sleep_until(&self, _: Instant) -> Timer {
                Box::pin(std::future::pending())
            }
            fn is_instant_now(&self) -> bool {
                true
            }
        }

        /// The `INSTANT` tag goes with the pointer: to a borrowed copy, to a counted owner and
        /// back, and is the system clock's; the `OWNS` tag is the owner's alone.
        #[test]
        fn the_instant_tag_goes_with_every_copy() {
            let mut root = NodeClock::own(SharedClock::new(Arc::new(Instantly)));
            let mut user = NodeClock::own(SharedClock::new(Arc::new(Fixed(Instant::now()))));
            assert!(root.reads_instant() && !user.reads_instant());
            assert!(NodeClock::SYSTEM.reads_instant());
            {
                // SAFETY: the copies are read only in this block, before the owners are released.
                let (a, b) = unsafe { (NodeClock::below(&root), NodeClock::below(&user)) };
                assert!(a.reads_instant() && !b.reads_instant());
                assert!(a.same(&root) && !a.same(&b) && !a.same(&NodeClock::SYSTEM));
                let now = Instant::now();
                assert!(a.now() >= now, "read through the clock's now()");
                assert!(!a.passed(now + Duration::from_secs(3600)) && a.passed(now));
                let mut again = NodeClock::own(a.to_shared());
                assert!(again.reads_instant());
                again.release();
                assert!(again.same(&NodeClock::SYSTEM));
            }
            root.release();
            user.release();
            assert!(root.same(&NodeClock::SYSTEM) && root.reads_instant());
        }

        #[test]
        fn the_system_clock_needs_no_owner() {
            let c = NodeClock::own(SharedClock::SYSTEM);
            // SAFETY: `c` outlives the copy.
            let below = unsafe { NodeClock::below(&c) };
            assert!(below.same(&NodeClock::SYSTEM));
            assert!(below.to_shared().0.is_none());
        }
    }
}
