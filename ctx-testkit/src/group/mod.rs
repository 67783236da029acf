//! The checks of an errgroup (Go's `errgroup.Group`), written once for every adapter that has
//! one (`ctx_tokio::Group`, `ctx_smol::Group`).
//!
//! Each adapter's `Group` is a type of its own, so an adapter describes its group and its
//! executor with a [`GroupRuntime`], and [`group_suite!`](crate::group_suite) expands to one
//! `#[test]` per check, named after it. Each check is a `pub fn <name><R: GroupRuntime>(rt: &R)`
//! that panics on failure, so a failing check can also be called by hand.
//!
//! The checks run in real time on the adapter's executor; every wait has a watchdog of
//! [`conformance::BOUND`](crate::conformance::BOUND) (on ctx-core's own clock, not the adapter's), so a bug
//! fails the check instead of hanging it.
//!
//! # Examples
//!
//! In an adapter crate's `tests/group.rs` (here for smol):
//!
//! ```ignore
//! use std::future::Future;
//! use ctx_smol::{Ctx, Group};
//! use ctx_testkit::group::GroupRuntime;
//!
//! struct Smol;
//!
//! impl GroupRuntime for Smol {
//!     type Group = Group;
//!     fn background(&self) -> Ctx { ctx_smol::background() }
//!     fn block_on<F: Future>(&self, fut: F) -> F::Output { smol::block_on(fut) }
//!     // `group`, `group_with_limit`, `spawn`, `spawn_with`, `wait`: Group's own methods
//!     ctx_testkit::group_forwarding!();
//! }
//!
//! ctx_testkit::group_suite!(Smol);
//! ```

use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use ctx_core::{Cause, Ctx};

use crate::conformance::BOUND;

mod errors;
mod tasks;

pub use self::errors::*;
pub use self::tasks::*;

/// What the group checks need from an adapter: its `Group` type, forwarded to its own
/// methods, and the executor its tasks run on.
///
/// Implement it on a type of the adapter's test crate (`ctx_tokio::Group` is foreign there, so
/// the methods take the group as an argument).
pub trait GroupRuntime {
    /// The adapter's group (`ctx_tokio::Group`, `ctx_smol::Group`). Its `Debug` must show
    /// `tasks: <n>`, the number of tasks it still keeps.
    type Group: fmt::Debug;

    /// A fresh background root of the adapter (called inside [`block_on`](Self::block_on)).
    fn background(&self) -> Ctx;

    /// Runs `fut` to completion on the adapter's executor, from a plain `#[test]` thread.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    /// `Group::new(parent)`.
    fn group(&self, parent: &Ctx) -> (Self::Group, Ctx);

    /// `Group::with_limit(parent, limit)`: at most `limit` tasks run at once.
    fn group_with_limit(&self, parent: &Ctx, limit: usize) -> (Self::Group, Ctx);

    /// `group.spawn(task)`.
    fn spawn<F, E>(&self, group: &Self::Group, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn StdError + Send + Sync + 'static>> + 'static;

    /// `group.spawn_with(task)`: `task` gets a clone of the group's context.
    fn spawn_with<M, F, E>(&self, group: &Self::Group, task: M)
    where
        M: FnOnce(Ctx) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn StdError + Send + Sync + 'static>> + 'static;

    /// `group.wait()`.
    fn wait(&self, group: Self::Group) -> impl Future<Output = Result<(), Cause>>;
}

/// Writes the five [`GroupRuntime`] methods that forward to the adapter's `Group` (`group`,
/// `group_with_limit`, `spawn`, `spawn_with`, `wait`), for an adapter whose `Group` has the
/// usual inherent methods (`Group::new`, `Group::with_limit`, `spawn`, `spawn_with`, `wait`).
/// Use it inside the `impl GroupRuntime`, after `type Group`, `background` and `block_on`.
///
/// # Examples
///
/// ```ignore
/// impl GroupRuntime for Smol {
///     type Group = ctx_smol::Group;
///     fn background(&self) -> Ctx { ctx_smol::background() }
///     fn block_on<F: Future>(&self, fut: F) -> F::Output { smol::block_on(fut) }
///     ctx_testkit::group_forwarding!();
/// }
/// ```
#[macro_export]
macro_rules! group_forwarding {
    () => {
        fn group(
            &self,
            parent: &$crate::__private::ctx_core::Ctx,
        ) -> (Self::Group, $crate::__private::ctx_core::Ctx) {
            <Self::Group>::new(parent)
        }
        fn group_with_limit(
            &self,
            parent: &$crate::__private::ctx_core::Ctx,
            limit: usize,
        ) -> (Self::Group, $crate::__private::ctx_core::Ctx) {
            <Self::Group>::with_limit(parent, limit)
        }
        fn spawn<F, E>(&self, group: &Self::Group, task: F)
        where
            F: ::std::future::Future<Output = ::std::result::Result<(), E>> + Send + 'static,
            E: Into<Box<dyn ::std::error::Error + Send + Sync + 'static>> + 'static,
        {
            group.spawn(task);
        }
        fn spawn_with<M, F, E>(&self, group: &Self::Group, task: M)
        where
            M: FnOnce($crate::__private::ctx_core::Ctx) -> F,
            F: ::std::future::Future<Output = ::std::result::Result<(), E>> + Send + 'static,
            E: Into<Box<dyn ::std::error::Error + Send + Sync + 'static>> + 'static,
        {
            group.spawn_with(task);
        }
        fn wait(
            &self,
            group: Self::Group,
        ) -> impl ::std::future::Future<
            Output = ::std::result::Result<(), $crate::__private::ctx_core::Cause>,
        > {
            group.wait()
        }
    };
}

// ===== the list of checks =====

/// Calls `$callback!($($args)* ; check, check, ...)` with the name of every group check. The
/// one place that lists them.
#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_group_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $crate::$callback! { $($args)* ;
            // errors and causes
            the_first_error_cancels_the_siblings_with_itself_as_cause,
            a_cause_returned_by_a_task_comes_back_as_the_same_arc,
            only_the_first_error_is_kept,
            wait_returns_the_tasks_error_even_when_the_parent_was_canceled_first,
            a_panicking_task_cancels_the_group_and_its_panic_resumes_in_wait,
            a_task_may_return_anyhow_result,
            messages_and_boxed_errors_are_causes,
            a_cause_comes_back_as_the_same_arc_also_from_a_box,
            // tasks, limits, drops
            all_tasks_ok_is_ok_and_the_ctx_is_canceled_when_wait_returns,
            wait_returns_only_after_every_task_has_ended,
            dropping_the_group_cancels_its_ctx_and_leaves_tasks_running,
            dropping_the_wait_future_cancels_the_ctx_and_leaves_tasks_running,
            the_parents_cancel_reaches_the_tasks,
            spawn_with_hands_each_task_the_groups_context,
            a_limit_caps_the_tasks_running_at_once_and_runs_them_all,
            a_limit_of_zero_panics,
            a_long_lived_group_lets_go_of_ended_tasks,
            a_task_waiting_for_a_slot_still_runs_after_the_group_failed,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_group_tests {
    ($rt:expr ; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::group::$name(&$rt);
            }
        )*
    };
}

/// Expands to one `#[test]` fn per [group check](crate::group), each calling
/// `ctx_testkit::group::<check>(&$rt)` with a fresh `$rt` (a [`GroupRuntime`]). Put it in a
/// file of its own (or a `mod`): the tests are named after the checks.
///
/// # Examples
///
/// In `tests/group.rs` of an adapter crate, after the adapter's `GroupRuntime`:
///
/// ```ignore
/// ctx_testkit::group_suite!(Tokio::new());
/// ```
#[macro_export]
macro_rules! group_suite {
    ($rt:expr $(,)?) => {
        $crate::__ctx_testkit_group_checks!(__ctx_testkit_group_tests!($rt));
    };
}

// ===== shared helpers =====

/// The error the checks' tasks fail with.
#[derive(Debug)]
pub(crate) struct Failed(pub(crate) &'static str);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl StdError for Failed {}

/// `fut`'s output; panics naming `what` if it takes longer than [`BOUND`]. The watchdog runs
/// on ctx-core's own clock, whatever the adapter's timers do.
pub(crate) async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match Ctx::background().run_timeout(BOUND, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not happen within {BOUND:?}"),
    }
}

/// Waits until `ctx` is done and returns `Ok`: a sibling that stops when told to.
pub(crate) async fn until_done(ctx: Ctx) -> Result<(), Failed> {
    ctx.done().await;
    Ok(())
}

/// Lets the executor run something else once, on any executor.
pub(crate) fn yield_now() -> YieldNow {
    YieldNow(false)
}

pub(crate) struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
