//! The conformance suite: every behaviour of ctx-core's API, written once, run on every
//! runtime.
//!
//! Go writes its context tests once (`XTest*`) and runs them against each implementation; this
//! module does the same. A runtime is described by a [`Runtime`]: how to make a root, run a
//! future, spawn a task and let time pass. Each check is a `pub fn <name><R: Runtime>(rt: &R)`
//! that panics on failure, so a failing check can also be called by hand; the
//! [`conformance_suite!`](crate::conformance_suite) macro expands to one `#[test]` per check.
//!
//! On a mocked clock ([`Runtime::is_mock`]) deadline checks use long deadlines (5 s) and
//! [`Runtime::advance`] moves time at once, so nothing sleeps. On a real clock they use
//! deadlines of at most 50 ms and wait at most [`BOUND`] (5 s) for anything to happen.
//!
//! # Examples
//!
//! In an adapter crate's `tests/conformance.rs`, one line runs the whole suite:
//!
//! ```ignore
//! ctx_testkit::conformance_suite!(ctx_testkit::conformance::MockRuntime::new());
//! ```
//!
//! A single check, by hand (this one runs; the example of each check only compiles: the whole
//! suite runs once on `MockRuntime`, in ctx-core's `tests/conformance_mock.rs`, and on every
//! other runtime in its adapter's tests):
//!
//! ```
//! use ctx_testkit::conformance::{self, MockRuntime};
//! conformance::cancel_propagates_to_all_descendants(&MockRuntime::new());
//! ```

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::Duration;

use ctx_core::{Ctx, Error};

use crate::MockClock;

mod after;
mod api;
mod cancel;
mod clock;
mod deadline;
mod futures;
mod merge;
mod self_waking;
mod sleep;
mod values;
mod wrap;

pub use self::after::*;
pub use self::api::*;
pub use self::cancel::*;
pub use self::clock::*;
pub use self::deadline::*;
pub use self::futures::*;
pub use self::merge::*;
pub use self::self_waking::*;
pub use self::sleep::*;
pub use self::values::*;
pub use self::wrap::*;

/// What a conformance run needs from a runtime.
///
/// The checks call [`background`](Runtime::background), [`advance`](Runtime::advance) and
/// context methods from the plain `#[test]` thread, outside [`block_on`](Runtime::block_on):
/// the runtime's timers must keep firing then (a multi-threaded runtime, or a driver thread).
///
/// # Examples
///
/// ```
/// use std::future::Future;
/// use std::time::Duration;
/// use ctx_core::Ctx;
/// use ctx_testkit::conformance::{self, Runtime};
///
/// /// ctx-core's own clock, futures' executor, a thread per task.
/// struct Plain;
///
/// impl Runtime for Plain {
///     fn background(&self) -> Ctx { Ctx::background() }
///     fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
///     where
///         F::Output: Send + 'static,
///     {
///         futures::executor::block_on(fut)
///     }
///     fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
///         std::thread::spawn(move || futures::executor::block_on(fut));
///     }
///     fn advance(&self, d: Duration) { std::thread::sleep(d) }
///     fn is_mock(&self) -> bool { false }
/// }
///
/// conformance::child_of_done_parent_is_born_done(&Plain);
/// ```
pub trait Runtime: Send + Sync + 'static {
    /// A fresh background root on this runtime's clock (e.g. `MockClock::background()`,
    /// `ctx_tokio::background()` inside the runtime).
    fn background(&self) -> Ctx;

    /// Runs `fut` to completion on this runtime's executor, from a plain `#[test]` thread.
    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static;

    /// Spawns a task on this runtime (detached). Used for "N waiters woken" cases.
    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F);

    /// Lets `d` of this clock's time pass: a mocked clock advances (at once); real clocks
    /// sleep.
    fn advance(&self, d: Duration);

    /// `true` when time is mocked: then deadline checks use long deadlines and no real
    /// sleeping. Real clocks: deadlines of at most 50 ms, bounds of at least 2 s.
    fn is_mock(&self) -> bool;
}

// ===== MockRuntime =====

/// A [`Runtime`] on a [`MockClock`]: roots from [`MockClock::background`], `block_on` from
/// `futures::executor`, one thread per spawned task, [`advance`](Runtime::advance) moves the
/// mock's time.
///
/// When the last clone of a `MockRuntime` is dropped, it joins the threads of its spawned
/// tasks that finish within [`BOUND`] (so that a passing test leaves no thread behind, which
/// Miri requires) and leaves the others running.
///
/// # Examples
///
/// ```
/// use ctx_testkit::conformance::{self, MockRuntime};
/// conformance::deadline_fires_with_nobody_polling(&MockRuntime::new());
/// ```
#[derive(Debug, Clone, Default)]
pub struct MockRuntime {
    clock: MockClock,
    tasks: Arc<Tasks>,
}

/// The threads of a `MockRuntime`'s spawned tasks.
#[derive(Debug, Default)]
struct Tasks(Mutex<Vec<std::thread::JoinHandle<()>>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        let handles = std::mem::take(self.0.get_mut().unwrap_or_else(PoisonError::into_inner));
        let limit = std::time::Instant::now() + BOUND;
        for h in handles {
            while !h.is_finished() && std::time::Instant::now() < limit {
                std::thread::yield_now();
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl MockRuntime {
    /// A runtime on a fresh [`MockClock`].
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_testkit::conformance::{MockRuntime, Runtime};
    /// let rt = MockRuntime::new();
    /// assert!(rt.is_mock());
    /// ```
    pub fn new() -> MockRuntime {
        MockRuntime::default()
    }

    /// The mock clock behind this runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_testkit::conformance::{MockRuntime, Runtime};
    /// let rt = MockRuntime::new();
    /// let t = rt.clock().now();
    /// rt.advance(Duration::from_secs(1));
    /// assert_eq!(rt.clock().now(), t + Duration::from_secs(1));
    /// ```
    pub fn clock(&self) -> &MockClock {
        &self.clock
    }
}

impl Runtime for MockRuntime {
    fn background(&self) -> Ctx {
        self.clock.background()
    }

    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        ::futures::executor::block_on(fut)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        let handle = std::thread::spawn(move || ::futures::executor::block_on(fut));
        self.tasks
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    fn is_mock(&self) -> bool {
        true
    }
}

// ===== SystemRuntime =====

/// A [`Runtime`] on ctx-core's own clock: roots from [`Ctx::background`], `block_on` from
/// `futures::executor`, one thread per spawned task, [`advance`](Runtime::advance) sleeps.
///
/// # Examples
///
/// ```
/// use ctx_testkit::conformance::{self, SystemRuntime};
/// conformance::cancel_is_idempotent(&SystemRuntime::new());
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SystemRuntime;

impl SystemRuntime {
    /// The system runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_testkit::conformance::{Runtime, SystemRuntime};
    /// assert!(!SystemRuntime::new().is_mock());
    /// ```
    pub fn new() -> SystemRuntime {
        SystemRuntime
    }
}

impl Runtime for SystemRuntime {
    fn background(&self) -> Ctx {
        Ctx::background()
    }

    fn block_on<F: Future + Send + 'static>(&self, fut: F) -> F::Output
    where
        F::Output: Send + 'static,
    {
        ::futures::executor::block_on(fut)
    }

    fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        std::thread::spawn(move || ::futures::executor::block_on(fut));
    }

    fn advance(&self, d: Duration) {
        std::thread::sleep(d);
    }

    fn is_mock(&self) -> bool {
        false
    }
}

// ===== the list of checks =====

/// Calls `$callback!($($args)* ; check, check, ...)` with the name of every check. The one
/// place that lists them.
#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $crate::$callback! { $($args)* ;
            // cancel
            cancel_propagates_to_all_descendants,
            cancel_of_child_leaves_parent_and_siblings_alone,
            cancel_is_idempotent,
            dropping_last_handle_clone_cancels,
            disarm_does_not_cancel,
            dropping_last_cancel_cause_handle_cancels_with_cause_handle_dropped,
            first_cancel_wins_for_err_and_cause,
            child_of_done_parent_is_born_done,
            cause_is_the_same_arc_on_ctx_and_descendants,
            cause_without_cause_downcasts_to_error,
            err_and_cause_are_none_until_done,
            cancel_from_another_thread_is_seen,
            concurrent_derive_and_cancel_leave_every_child_done,
            dropped_children_release_everything,
            // deadlines
            deadline_is_the_earliest_of_ctx_and_ancestors,
            timeout_deadline_is_now_plus_duration_on_the_roots_clock,
            with_deadline_under_earlier_parent_deadline_is_a_cancel_child,
            deadline_in_the_past_is_born_done,
            huge_timeout_never_expires,
            deadline_child_of_canceled_parent_is_canceled,
            deadline_passed_unobserved_then_cancel_is_deadline_exceeded,
            deadline_passed_unobserved_then_parent_cancel_is_deadline_exceeded,
            deadline_cause_is_given_cause_or_deadline_exceeded,
            cancel_handle_of_deadline_ctx_cancels_with_canceled,
            deadline_fires_with_nobody_polling,
            nothing_fires_before_the_deadline,
            after_func_on_deadline_ctx_fires_at_the_deadline,
            done_resolves_at_the_deadline,
            wait_blocking_returns_at_the_deadline,
            without_cancel_drops_the_deadline,
            // values
            value_nearest_wins_and_is_keyed_by_type,
            values_pass_through_every_kind_of_node,
            without_cancel_keeps_values_and_drops_cancellation,
            // after-funcs
            after_func_runs_once_after_done,
            after_func_stop_is_true_exactly_when_it_kept_f_from_running,
            after_func_on_done_ctx_runs_at_once,
            after_func_never_runs_on_contexts_that_cannot_be_done,
            after_func_survives_dropping_every_ctx_clone,
            after_func_survives_dropping_every_ctx_clone_until_the_deadline,
            after_func_may_use_the_tree_without_deadlock,
            dropping_after_func_handle_does_not_stop_it,
            // merged contexts
            merged_is_done_when_either_parent_is,
            merged_is_born_done_from_either_parent,
            merged_cancel_touches_neither_parent,
            merged_deadline_is_the_earlier_and_fires_with_its_owners_cause,
            merged_diamond_runs_its_after_func_once,
            merged_values_display_and_never_done_parents,
            // wrap
            wrap_of_a_ctx_is_the_same_ctx,
            wrap_of_ctx_wrapper_cancels_children_at_once,
            wrap_answers_err_cause_deadline_and_values_as_custom,
            wrap_of_foreign_done_cancels_children,
            child_of_done_custom_is_born_done,
            child_takes_the_customs_own_err_and_cause,
            wrap_of_a_value_hiding_wrapper_keeps_the_roots_clock,
            // futures and waiting
            done_resolves_when_canceled,
            many_done_futures_all_resolve,
            many_spawned_waiters_are_all_woken,
            done_is_static_and_send,
            dropped_done_releases_its_waker,
            done_is_woken_exactly_once,
            done_of_background_never_resolves,
            run_is_err_on_first_poll_if_done,
            run_is_ok_on_first_poll_if_ready,
            run_drops_the_future_when_the_ctx_wins,
            dropped_run_releases_its_waker,
            run_stream_yields_items_then_one_err_then_ends,
            wait_blocking_returns_on_cancel_from_another_thread,
            // sleeping on the context's clock
            sleep_is_ok_once_the_duration_has_passed,
            sleep_until_is_ok_at_the_instant,
            sleep_is_err_as_soon_as_the_context_is_canceled,
            sleep_answers_on_the_first_poll_when_it_can,
            sleep_ends_at_an_earlier_deadline,
            huge_sleep_never_panics,
            dropped_sleep_releases_its_waker,
            sleep_blocking_ends_by_time_or_by_cancel,
            // names, equality, errors
            display_names_the_chain,
            partial_eq_means_same_context,
            error_display_and_is_timeout,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_tests {
    ($rt:expr ; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::$name(&$rt);
            }
        )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_run_all {
    ($rt:expr ; $($name:ident),* $(,)?) => {
        $( $crate::conformance::$name($rt); )*
    };
}

/// Expands to one `#[test]` fn per check of the [conformance suite](crate::conformance), each
/// calling `ctx_testkit::conformance::<check>(&$rt)` with a fresh `$rt`. Put it in a file of
/// its own (or a `mod`): the tests are named after the checks.
///
/// # Examples
///
/// In `tests/conformance.rs` of an adapter crate:
///
/// ```ignore
/// ctx_testkit::conformance_suite!(ctx_testkit::conformance::MockRuntime::new());
/// ```
///
/// ```
/// mod suite {
///     ctx_testkit::conformance_suite!(ctx_testkit::conformance::MockRuntime::new());
/// }
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($rt:expr $(,)?) => {
        $crate::__ctx_testkit_checks!(__ctx_testkit_tests!($rt));
    };
}

/// Runs every check of the suite on `rt`, one after another; panics at the first failure.
/// [`conformance_suite!`](crate::conformance_suite) is usually better: one test per check.
///
/// # Examples
///
/// (Compiled, not run: ctx-core's own tests run the whole suite on `MockRuntime`, one test per
/// check.)
///
/// ```no_run
/// use ctx_testkit::conformance::{self, MockRuntime};
/// conformance::run_all(&MockRuntime::new());
/// ```
pub fn run_all<R: Runtime>(rt: &R) {
    crate::__ctx_testkit_checks!(__ctx_testkit_run_all!(rt));
}

// ===== shared helpers =====

/// The longest a check waits for something that should happen (real clocks only; on a mock
/// clock everything due has happened when `advance` returns).
pub const BOUND: Duration = Duration::from_secs(5);

/// The deadline the real-time cases use: short enough for a quick suite, long enough to tell
/// "fired at the deadline" from "fired at once".
pub const SHORT: Duration = Duration::from_millis(20);

/// Asserts that something started at `start` fired at its `deadline` (a duration after
/// `start`): never early, and within [`BOUND`]. For real-time tests of runtime adapters.
///
/// # Examples
///
/// ```
/// use std::time::Instant;
/// use ctx_testkit::conformance::{SHORT, assert_on_time};
///
/// let start = Instant::now();
/// let (ctx, _c) = ctx_core::Ctx::background().with_timeout(SHORT);
/// ctx.wait_blocking();
/// assert_on_time(start, SHORT);
/// ```
#[track_caller]
pub fn assert_on_time(start: std::time::Instant, deadline: Duration) {
    let took = start.elapsed();
    assert!(
        took >= deadline,
        "fired early: after {took:?}, deadline {deadline:?}"
    );
    assert!(took < BOUND, "fired far too late: after {took:?}");
}

/// The deadline the deadline checks use: long on a mock clock (no one waits for it), short on
/// a real one.
pub(crate) fn tick<R: Runtime>(rt: &R) -> Duration {
    if rt.is_mock() {
        Duration::from_secs(5)
    } else {
        Duration::from_millis(50)
    }
}

/// `true` if `ctx`'s deadline has not passed yet (always on a mock). Call it right after an
/// operation whose check assumes "before the deadline": on a real clock a stalled machine may
/// have let a short deadline pass already, and the check must then not blame the runtime.
pub(crate) fn still_before_deadline<R: Runtime>(rt: &R, ctx: &Ctx) -> bool {
    rt.is_mock() || ctx.deadline().is_none_or(|d| ctx.now() < d)
}

/// A little more than `tick`: time enough for a deadline of `tick` to pass.
pub(crate) fn past_tick<R: Runtime>(rt: &R) -> Duration {
    if rt.is_mock() {
        tick(rt)
    } else {
        tick(rt) + Duration::from_millis(20)
    }
}

/// Receives from `rx`: at once on a mock clock (when `sync` says the event must have happened
/// on this thread already), else within [`BOUND`].
#[track_caller]
pub(crate) fn expect<T, R: Runtime>(rt: &R, sync: bool, rx: &mpsc::Receiver<T>, what: &str) -> T {
    if rt.is_mock() && sync {
        match rx.try_recv() {
            Ok(v) => v,
            Err(_) => panic!("{what}: expected it to have happened when `advance` returned"),
        }
    } else {
        match rx.recv_timeout(BOUND) {
            Ok(v) => v,
            Err(_) => panic!("{what}: did not happen within {BOUND:?}"),
        }
    }
}

/// Waits (on another thread, with `wait_blocking`) until `ctx` is done; at most [`BOUND`].
#[track_caller]
pub(crate) fn wait_done(ctx: &Ctx, what: &str) -> Error {
    if let Some(e) = ctx.err() {
        return e;
    }
    let c = ctx.clone();
    bg(move || c.wait_blocking()).join(&format!("{what}: the context was done"))
}

/// A thread whose result a check waits for (at most [`BOUND`]) and which it then joins, so
/// that no thread outlives a check that passed (Miri rejects a test binary that exits with
/// threads still running).
pub(crate) struct Bg<T> {
    rx: mpsc::Receiver<T>,
    handle: std::thread::JoinHandle<()>,
}

/// Runs `f` on a new thread.
pub(crate) fn bg<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Bg<T> {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    Bg { rx, handle }
}

impl<T> Bg<T> {
    /// `f`'s result, within [`BOUND`]; panics naming `what` otherwise.
    #[track_caller]
    pub(crate) fn join(self, what: &str) -> T {
        match self.rx.recv_timeout(BOUND) {
            Ok(v) => {
                let _ = self.handle.join();
                v
            }
            Err(_) => panic!("{what}: did not happen within {BOUND:?}"),
        }
    }

    /// `f` has returned.
    pub(crate) fn finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Many (or, under Miri, few).
pub(crate) const MANY: usize = if cfg!(miri) { 3 } else { 32 };
