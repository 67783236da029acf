//! Where after-funcs fired by a timer or by the watcher thread run: threads of their own.
//!
//! A deadline fires on a shared thread (futures-timer's, a runtime's driver, the watcher thread
//! of foreign contexts). An after-func that blocks there (say on another context's
//! `wait_blocking()`) would stop every other deadline of the process. Go runs each `AfterFunc`
//! in a goroutine of its own; here the thread that fires a timer hands its after-funcs to this
//! pool instead, and returns.
//!
//! The pool grows on demand and shrinks when idle: a job goes to an idle worker if there is one,
//! else a new worker is started for it, so a blocked after-func never delays another. A worker
//! that finds nothing to do for [`IDLE`] exits. There is no upper bound (as there is none on
//! goroutines): every blocked after-func holds one thread.
//!
//! Which after-funcs come here is decided by [`OffThread`], a scope that `Watcher` opens around a
//! poll made from a wake (see watcher.rs); `tree::run_after` asks [`off_thread`]. A cancel made by
//! the user's own call (`cancel()`, a lazy deadline check in `err()`, the first poll of a timer
//! on the thread that waits) still runs its after-funcs inline, on the user's thread.
//!
//! # Invariants
//!
//! 1. `tokens <= waiting`: a token is a wake-up promised to one waiting worker, who spends it
//!    to leave the wait. `submit` hands out a token only while `waiting > tokens`.
//! 2. `queue.len() <= tokens + starting`, where `starting` counts workers spawned but not yet
//!    at their first look at the queue: every `submit` either gives a token or spawns a worker,
//!    and whoever takes a job takes it out of the queue. So a queued job always has a worker
//!    on its way that is not running another job: no job waits behind a blocked one.
//! 3. Jobs run with no lock of the pool held.

use std::cell::Cell;

use crate::clock::SharedClock;

/// An after-func, as the tree keeps it (`Ctx::after_func`) and this pool runs it.
pub(crate) type AfterFn = Box<dyn FnOnce() + Send + 'static>;

/// How long an idle worker waits for a job before it exits. Measured on a loaded 2-core
/// Linux VM: starting a thread and running a job on it took ~265 µs, handing a job to an idle
/// worker ~5 µs (and a timer-fired after-func started ~15 µs later than when it ran inline on
/// the timer thread, out of ~90 µs of timer latency). A deadline's after-funcs come in bursts
/// (a whole subtree expires at once) or as a steady trickle: a few seconds keep a warm worker
/// for both, and free the threads of a burst soon after it.
#[cfg(not(loom))]
const IDLE: std::time::Duration = std::time::Duration::from_secs(5);

thread_local! {
    static DEFERRING: Cell<bool> = const { Cell::new(false) };
}

/// While alive, after-funcs that this thread would run go to the pool instead.
pub(crate) struct OffThread {
    prev: bool,
}

impl OffThread {
    pub(crate) fn enter() -> OffThread {
        OffThread {
            prev: DEFERRING.with(|d| d.replace(true)),
        }
    }
}

impl Drop for OffThread {
    fn drop(&mut self) {
        DEFERRING.with(|d| d.set(self.prev));
    }
}

thread_local! {
    static VIA: std::cell::RefCell<Option<SharedClock>> = const { std::cell::RefCell::new(None) };
}

/// While alive, after-funcs that this thread defers are offered to `clock` first
/// ([`Clock::spawn_after_func`](crate::Clock::spawn_after_func)): set by a timer of that clock
/// around the cancel it fires.
pub(crate) struct ViaClock {
    prev: Option<SharedClock>,
}

impl ViaClock {
    pub(crate) fn enter(clock: SharedClock) -> ViaClock {
        ViaClock {
            prev: VIA.with(|v| v.replace(Some(clock))),
        }
    }
}

impl Drop for ViaClock {
    fn drop(&mut self) {
        let prev = self.prev.take();
        let _ = VIA.try_with(|v| v.replace(prev));
    }
}

/// An after-func handed to a clock: runs at most once, and if the clock drops it unrun, goes to
/// the pool then (so it runs exactly once whatever the clock does).
struct Once {
    f: Option<AfterFn>,
    run: fn(AfterFn),
}

impl Once {
    fn run(mut self) {
        if let Some(f) = self.f.take() {
            (self.run)(f);
        }
    }
}

impl Drop for Once {
    fn drop(&mut self) {
        if let Some(f) = self.f.take() {
            submit(f, self.run);
        }
    }
}

/// Runs a deferred after-func (through `run`, which contains its panic): on the threads of the
/// clock whose timer fired it, if that clock has some ([`ViaClock`]), else on this pool.
pub(crate) fn hand_off(f: AfterFn, run: fn(AfterFn)) {
    let clock = VIA.try_with(|v| v.borrow().clone()).ok().flatten();
    let Some(clock) = clock else {
        submit(f, run);
        return;
    };
    let once = Once { f: Some(f), run };
    if let Err(job) = clock.get().spawn_after_func(Box::new(move || once.run())) {
        submit(job, run);
    }
}

/// Whether this thread is inside a [`OffThread`] scope. A thread whose thread-locals are gone
/// (a destructor at thread exit) answers no: the after-func runs where it is.
pub(crate) fn off_thread() -> bool {
    DEFERRING.try_with(Cell::get).unwrap_or(false)
}

#[cfg(not(loom))]
pub(crate) use imp::submit;

/// After-func threads alive (running an after-func, or idle until they exit).
#[cfg(all(feature = "test-util", not(loom)))]
pub(crate) fn threads() -> usize {
    imp::LIVE.load(std::sync::atomic::Ordering::Relaxed)
}

/// Under loom, jobs run inline: the models check the tree's protocol, not this pool.
#[cfg(loom)]
pub(crate) fn submit(f: AfterFn, run: fn(AfterFn)) {
    run(f);
}

#[cfg(not(loom))]
mod imp {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicUsize;
    use std::sync::atomic::Ordering::Relaxed;
    use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
    use std::time::Instant;

    use super::{AfterFn, IDLE};

    struct Pool {
        state: Mutex<State>,
        wake: Condvar,
    }

    struct State {
        queue: VecDeque<AfterFn>,
        /// Workers waiting for a job (including those holding a token).
        waiting: usize,
        /// Wake-ups handed to waiting workers and not yet taken (invariant 1).
        tokens: usize,
    }

    /// Worker threads alive (running a job or idle), for `test_util::after_func_threads`.
    pub(crate) static LIVE: AtomicUsize = AtomicUsize::new(0);

    static POOL: Pool = Pool {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waiting: 0,
            tokens: 0,
        }),
        wake: Condvar::new(),
    };

    fn lock() -> MutexGuard<'static, State> {
        // Jobs run unlocked (invariant 3) and nothing in here panics: never poisoned in
        // practice, and a poisoned state is still consistent.
        POOL.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` (through `run`, which contains its panic) on a pool thread: an idle one, or a
    /// new one. If no thread can be started, runs a queued job here instead.
    pub(crate) fn submit(f: AfterFn, run: fn(AfterFn)) {
        let mut st = lock();
        st.queue.push_back(f);
        if st.waiting > st.tokens {
            st.tokens += 1; // invariant 2, by a token
            drop(st);
            POOL.wake.notify_one();
            return;
        }
        drop(st);
        // Invariant 2, by a starting worker.
        LIVE.fetch_add(1, Relaxed);
        let spawned = std::thread::Builder::new()
            .name("ctx-core-after".into())
            .spawn(move || {
                worker(run);
                LIVE.fetch_sub(1, Relaxed);
            });
        if spawned.is_err() {
            LIVE.fetch_sub(1, Relaxed);
            // No worker is coming for one job: run one here (maybe not `f`, which another
            // worker may have taken meanwhile).
            let job = lock().queue.pop_front();
            if let Some(job) = job {
                run(job);
            }
        }
    }

    fn worker(run: fn(AfterFn)) {
        let mut st = lock();
        loop {
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                run(job); // unlocked (invariant 3)
                st = lock();
                continue;
            }
            st.waiting += 1;
            let until = Instant::now() + IDLE;
            loop {
                if st.tokens > 0 {
                    // Somebody queued a job for a waiting worker: this one goes.
                    st.tokens -= 1;
                    st.waiting -= 1;
                    break;
                }
                let now = Instant::now();
                if now >= until {
                    st.waiting -= 1; // no token is ours to spend (invariant 1 still holds)
                    return;
                }
                st = POOL
                    .wake
                    .wait_timeout(st, until - now)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
        }
    }
}
