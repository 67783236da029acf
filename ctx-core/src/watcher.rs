//! [`Watcher`]: drives one future to completion without a task.
//!
//! ctx-core needs to react when a timer fires or when a foreign `done()` future completes, with
//! no runtime to spawn on. A `Watcher` polls its future once when started, with a waker that
//! polls it again, inline on the waking thread (a timer thread, a runtime driver,
//! `MockClock::advance`). The future does its own work when it completes (it marks a context
//! done), so nothing else is needed: no thread, no task.
//!
//! Foreign `done()` futures (from `Ctx::wrap`) are the exception: their wakers are often
//! called under the future's own lock (`futures::future::Shared` does so), and polling again
//! inside such a wake would deadlock. Their re-polls run on one lazily started watcher thread
//! instead (`Watcher::start_with(Repoll::Deferred, ..)`), unless they promise otherwise
//! (`Done::new_inline`); timers keep the inline re-poll, which the `Clock` contract allows.
//! Every kind of watch hands a wake that arrives *during* its poll to the watcher thread (invariant 4).
//!
//! # Why not async-task
//!
//! async-task's `Runnable` has the signal this needs (`ScheduleInfo::woken_while_running`), so
//! a `Watcher` on it was built and measured (2026-12-04, one session, 2-CPU shared machine):
//! 157 lines instead of 276, same API, every ctx-core and ctx-testkit test passing. Kept the
//! hand-written one:
//!
//! * slower on every path that starts a watch. Callgrind, instructions per operation
//!   (`benches/examples/callgrind.rs`, hand-written → async-task): `timer-arm-nop` 2,768 →
//!   2,919 (+5.5 %), `timer-arm` 3,830 → 4,021 (+5.0 %), `wrap-foreign` 3,055 → 3,220
//!   (+5.4 %); `with-cancel` (no watch) 321 → 321. Criterion (`--bench runtimes`, medians,
//!   the control row `with_timeout+cancel` unchanged at 131–142 ns): `done-arm+cancel` tokio
//!   1.04 → 1.08 µs, async-std 537 → 762 ns, smol 562 → 742 ns, MockClock 437 → 475 ns;
//!   `done-arm+fire-1ms` MockClock 529 → 551 ns.
//! * bigger: 16 bytes more per watch (the task header, its awaiter slot, a `Mutex<Option<Task>>`
//!   to cancel through `&self`), the same number of allocations (one task and the `Arc<Watcher>`
//!   against the `Arc<Watcher>` and the boxed future).
//! * not simpler where it matters. Invariant 6 cannot be kept: async-task's waker returns at
//!   once when it finds the task running, so `MockClock::advance` cannot wait for the poll; the
//!   prototype polled once more on the poller's thread instead (a thread-local trampoline, so
//!   that `run` does not recurse from inside the schedule function), which only promises "done
//!   once both calls have returned" (enough for `ctx-testkit/tests/advance_race.rs`; without it
//!   one run in three missed 1 round in 20,000), not "done when `advance` returns". `cancel` needs a flag in the
//!   task's metadata so that the schedule made by dropping the `Task` drops the future at once
//!   rather than polling it; a watch queued on the watcher thread is freed there, later. The
//!   loom models of this file would test async-task's atomics, which loom cannot see.
//! * one more dependency for users (`cargo tree -p ctx-core -e normal`: 14 → 15 crates,
//!   ctx-core included).
//!
//! # Invariants
//!
//! 1. Only the thread that moved `state` from `IDLE` to `POLLING` touches the future
//!    (it takes it out of `slot` for the duration of the poll, so no lock is held while the
//!    future runs user code).
//! 2. A wake that finds `POLLING` sets `NOTIFIED`; the poller sees that when it tries to go back
//!    to `IDLE` and has the future polled again (invariant 4), so no wake-up is lost.
//! 3. `DONE` is final. `cancel` sets it; whoever holds the future then drops it: `cancel`
//!    itself if the future is parked in `slot`, else the poller after its poll returns.
//! 4. A thread polls the future at most once per turn and then returns: a wake that arrives
//!    during a poll (invariant 2) is never served by polling again on the same thread, but
//!    handed to the watcher thread, which serves it as one more entry at the back of its queue.
//!    A future may wake itself inside its own `poll` (tokio's `Sleep` does when its task's
//!    cooperative budget is spent, a `yield_now` always does, and the budget only refills
//!    when the outer poll returns): re-polling it inline would spin forever on the waking
//!    thread. So the thread that woke us always gets control back, and a future that wakes
//!    itself forever costs the watcher thread a poll per round of its queue, shared fairly with
//!    the other watches, until it completes or is canceled.
//! 5. Whatever the future's completion runs after a *wake* (the after-funcs of the contexts it
//!    cancels) goes to the after-func pool (after_threads.rs), unless the watch was started with
//!    `afters_off_thread == false` (a `MockClock`, whose waking thread is the test's own): a timer
//!    thread, a runtime's driver or the watcher must not run an after-func that may block.
//!    The first poll, made by the thread that started the watch, runs them inline.
//! 6. A wake of a watch that keeps its after-funcs on the waking thread (a timer of a clock whose
//!    timers are woken by its user's own call: `MockClock::advance`) that finds another thread
//!    polling it does not hand the next poll to the watcher thread: it waits for that poll to end
//!    and polls here, so that when the waking call returns, what it woke has completed (its
//!    context is done, its after-funcs have run, its waiters are woken). Such a wake can only
//!    find a poll between the timer's registration and the poll's return, where no user code
//!    runs (the timer was woken once, and taken from the clock), so the wait is short and
//!    cannot deadlock. A wake from inside the poll itself (`poller` is this thread) still takes
//!    the `NOTIFIED` path of invariant 4. Not under loom (the models do not use such clocks).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use crate::loom::{AtomicU8, AtomicUsize, Mutex, Ordering, lock};

/// How a foreign `done()` future may be re-polled when it wakes. See
/// [`Done::new_inline`](crate::Done::new_inline).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Repoll {
    /// On ctx-core's watcher thread: its waker may be called under its own lock.
    Deferred,
    /// Inline, inside the wake: its waker is never called under a lock its `poll` takes.
    Inline,
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

const IDLE: u8 = 0;
const POLLING: u8 = 1;
const NOTIFIED: u8 = 2;
const DONE: u8 = 3;

pub(crate) struct Watcher {
    state: AtomicU8,
    // guarded by `slot`'s mutex; `None` while being polled (invariant 1) and once done
    slot: Mutex<Option<BoxFuture>>,
    /// Set once at creation: re-poll on the waking thread (`Inline`) or on the watcher thread.
    repoll: Repoll,
    /// Set once at creation: after-funcs run by a poll made in a wake go to the after-func
    /// pool (invariant 5).
    afters_off_thread: bool,
    /// The thread that owns `POLLING` (an address unique to it, `0` for none): written only by
    /// that thread, so a thread that reads its own here is inside this watch's poll
    /// (invariant 6).
    poller: AtomicUsize,
}

/// An address unique to the calling thread while it lives (for `Watcher::poller`).
#[cfg(not(loom))]
fn this_thread() -> usize {
    thread_local!(static ME: u8 = const { 0 });
    ME.with(|me| me as *const u8 as usize)
}

impl Watcher {
    /// Polls `fut` once now, then again whenever it wakes, until it completes or is canceled.
    /// Re-polls run inline in the wake (save invariant 4); after-funcs run in those re-polls go
    /// to the pool when `afters_off_thread`.
    pub(crate) fn start(
        afters_off_thread: bool,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> Arc<Watcher> {
        Watcher::new(Repoll::Inline, afters_off_thread, fut)
    }

    /// Polls `fut` once now; later polls run inline in the wake (`Repoll::Inline`) or on the
    /// watcher thread, never inside the wake: for futures that may be woken under their own lock.
    pub(crate) fn start_with(repoll: Repoll, fut: impl Future<Output = ()> + Send + 'static) -> Arc<Watcher> {
        Watcher::new(repoll, true, fut)
    }

    fn new(
        repoll: Repoll,
        afters_off_thread: bool,
        fut: impl Future<Output = ()> + Send + 'static,
    ) -> Arc<Watcher> {
        let watch = Arc::new(Watcher {
            state: AtomicU8::new(POLLING),
            slot: Mutex::new(None),
            repoll,
            afters_off_thread,
            poller: AtomicUsize::new(0),
        });
        watch.run(Some(Box::pin(fut)), false);
        watch
    }

    /// Drops the future (releasing the timer it holds) without running it any further.
    pub(crate) fn cancel(&self) {
        if self.state.swap(DONE, Ordering::AcqRel) == DONE {
            return;
        }
        // If the future is parked in `slot`, drop it here (after unlocking: its destructor may
        // wake or lock other things). If a poll is under way the slot is empty and the poller
        // drops it (invariant 3).
        let fut = lock(&self.slot).take();
        drop(fut);
    }

    /// Polls the future once, then gives up `POLLING`: to `IDLE` if no wake-up came meanwhile,
    /// else to the watcher thread (invariant 4). The caller owns the `POLLING` state
    /// (invariant 1); `in_wake` says whether it got it from a wake (invariant 5).
    fn run(self: &Arc<Self>, fut: Option<BoxFuture>, in_wake: bool) {
        let Some(mut f) = fut.or_else(|| lock(&self.slot).take()) else {
            return; // canceled while idle
        };
        if self.state.load(Ordering::Acquire) == DONE {
            return; // canceled: drop `f`
        }
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        #[cfg(not(loom))]
        self.poller.store(this_thread(), Ordering::Relaxed);
        let ready = {
            let _off = (in_wake && self.afters_off_thread).then(crate::after_threads::OffThread::enter);
            // Damage control, not control flow: no future of ours panics by design, but a
            // clock's timer is foreign code, and its panic must not unwind into the thread
            // that woke us (a timer thread, a runtime's driver). The panic hook has reported
            // it; the watch ends as if the timer never fired (lazy checks still see the
            // deadline pass).
            match catch_unwind(AssertUnwindSafe(|| f.as_mut().poll(&mut cx))) {
                Ok(Poll::Ready(())) | Err(_) => true,
                Ok(Poll::Pending) => false,
            }
        };
        self.poller.store(0, Ordering::Relaxed);
        if ready {
            self.state.store(DONE, Ordering::Release);
            return;
        }
        *lock(&self.slot) = Some(f);
        match self
            .state
            .compare_exchange(POLLING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {}
            // Woken during the poll (maybe by the poll itself): take `POLLING` back, by a CAS so
            // that a racing `cancel` is not overwritten, and hand the next poll to the watcher
            // thread, never to this one (invariant 4).
            Err(NOTIFIED)
                if self
                    .state
                    .compare_exchange(NOTIFIED, POLLING, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok() =>
            {
                to_watcher_thread(self.clone());
            }
            Err(_) => {
                // DONE (`NOTIFIED` only ever turns `DONE`): `cancel` may have found the slot
                // empty; drop the future ourselves.
                let f = lock(&self.slot).take();
                drop(f);
            }
        }
    }
}

impl Wake for Watcher {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let mut cur = self.state.load(Ordering::Acquire);
        loop {
            let next = match cur {
                IDLE => POLLING,
                POLLING if self.waits_for_poller() => {
                    // Invariant 6: the poller is on its way out of a poll; poll after it, here.
                    std::thread::yield_now();
                    cur = self.state.load(Ordering::Acquire);
                    continue;
                }
                POLLING => NOTIFIED,
                _ => return, // NOTIFIED: a re-poll is already due; DONE: nothing to do
            };
            match self
                .state
                .compare_exchange(cur, next, Ordering::AcqRel, Ordering::Acquire)
            {
                // We own `POLLING` now (invariant 1); the watcher thread takes it over.
                Ok(_) if next == POLLING && self.repoll == Repoll::Inline => return self.run(None, true),
                Ok(_) if next == POLLING => return to_watcher_thread(self.clone()),
                Ok(_) => return,
                Err(actual) => cur = actual,
            }
        }
    }
}

impl Watcher {
    /// Whether a wake that finds another thread polling waits for that poll to end and then
    /// polls here, instead of handing the next poll to the watcher thread (invariant 6): for
    /// the timers of a clock whose waking thread is its user's own (`MockClock::advance`, which
    /// promises that what is due has run when it returns).
    #[inline]
    fn waits_for_poller(&self) -> bool {
        #[cfg(not(loom))]
        {
            !self.afters_off_thread
                && self.repoll == Repoll::Inline
                && self.poller.load(Ordering::Relaxed) != this_thread()
        }
        #[cfg(loom)]
        {
            false
        }
    }
}

/// Runs `watcher`'s next poll on the watcher thread (started on first use), at the back of its
/// queue. Falls back to polling inline if the thread cannot be started.
#[cfg(not(loom))]
fn to_watcher_thread(watch: Arc<Watcher>) {
    use std::sync::{OnceLock, mpsc};
    static WATCHER: OnceLock<Option<mpsc::Sender<Arc<Watcher>>>> = OnceLock::new();
    let tx = WATCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Arc<Watcher>>();
        std::thread::Builder::new()
            .name("ctx-core-watcher".into())
            .spawn(move || {
                for w in rx {
                    w.run(None, true);
                }
            })
            .ok()
            .map(|_| tx)
    });
    match tx {
        Some(tx) => {
            if let Err(mpsc::SendError(w)) = tx.send(watch) {
                w.run(None, true);
            }
        }
        None => watch.run(None, true),
    }
}

#[cfg(loom)]
fn to_watcher_thread(watch: Arc<Watcher>) {
    watch.run(None, true);
}
