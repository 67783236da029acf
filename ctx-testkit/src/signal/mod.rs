//! The checks of an adapter's `signal::shutdown` (Go's `signal.NotifyContext`) with real
//! SIGINT and SIGTERM, written once for `ctx_tokio` and `ctx_smol`. Unix only.
//!
//! Each process check runs the test binary again as a child process, running the test named
//! `child` (which [`signal_suite!`](crate::signal_suite) defines), told by an environment
//! variable which scenario to play. It waits for the child to print `ready`, sends SIGINT or
//! SIGTERM, and reads what the child prints and how it ends. Every wait has a watchdog (30 s,
//! far above what a child needs): a child that never answers fails the check and is killed.
//!
//! An adapter describes its `shutdown`, its `Signal` type and its executor with a
//! [`SignalRuntime`]; [`signal_suite!`](crate::signal_suite) expands to the child's entry point
//! and one `#[test]` per check, named after it.
//!
//! # Examples
//!
//! At the root of an adapter crate's `tests/signal.rs` (here for smol):
//!
//! ```ignore
//! #![cfg(unix)]
//! use std::future::Future;
//! use ctx_smol::signal::{Signal, shutdown};
//! use ctx_smol::{CancelHandle, Ctx};
//! use ctx_testkit::signal::SignalRuntime;
//!
//! struct Smol;
//!
//! impl SignalRuntime for Smol {
//!     type Signal = Signal;
//!     fn background(&self) -> Ctx { ctx_smol::background() }
//!     fn block_on<F: Future>(&self, fut: F) -> F::Output { smol::block_on(fut) }
//!     fn shutdown(&self, parent: &Ctx) -> (Ctx, CancelHandle) { shutdown(parent) }
//!     fn number(signal: &Signal) -> i32 { signal.number() }
//! }
//!
//! ctx_testkit::signal_suite!(Smol);
//! ```

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ctx_core::{CancelHandle, Ctx, Error};

mod process;

use self::process::{Running, Sig};

/// What the signal checks need from an adapter.
pub trait SignalRuntime {
    /// The adapter's signal type, the cause of a context ended by a signal.
    type Signal: std::error::Error + fmt::Debug + 'static;

    /// A fresh background root of the adapter (called inside [`block_on`](Self::block_on)).
    fn background(&self) -> Ctx;

    /// Runs `fut` to completion on the adapter's executor, from a plain `#[test]` thread. The
    /// child's scenarios block this thread on purpose (a drain that hangs): a single-threaded
    /// executor shows that the second signal does not need it.
    fn block_on<F: Future>(&self, fut: F) -> F::Output;

    /// The adapter's `signal::shutdown(parent)`.
    fn shutdown(&self, parent: &Ctx) -> (Ctx, CancelHandle);

    /// The signal's number (`Signal::number`): 2 for SIGINT, 15 for SIGTERM.
    fn number(signal: &Self::Signal) -> i32;
}

// ===== the list of checks =====

/// Calls `$callback!($($args)* ; check, check, ...)` with the name of every signal check.
#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_signal_checks {
    ($callback:ident ! ( $($args:tt)* )) => {
        $crate::$callback! { $($args)* ;
            // in a child process, with real signals
            sigint_cancels_the_context_with_signal_as_its_cause,
            sigterm_cancels_the_context_with_signal_as_its_cause,
            a_second_sigint_ends_a_stuck_drain_with_status_130,
            a_second_sigterm_ends_a_stuck_drain_with_status_143,
            a_signal_after_stop_ends_the_process_instead_of_vanishing,
            a_signal_goes_to_a_listening_context_even_after_an_earlier_one_is_done,
            // in this process: no signal is sent
            the_parent_ends_it_with_its_own_error_and_cause,
            the_handle_cancels_it_without_a_signal,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ctx_testkit_signal_tests {
    ($rt:expr ; $($name:ident),* $(,)?) => {
        /// The child process of the signal checks: does nothing in a normal test run.
        #[test]
        fn child() {
            $crate::signal::child(&$rt);
        }
        $(
            #[test]
            fn $name() {
                $crate::signal::$name(&$rt);
            }
        )*
    };
}

/// Expands to the `child` test (the child process's entry point: it does nothing in a normal
/// test run) and one `#[test]` fn per [signal check](crate::signal), each calling
/// `ctx_testkit::signal::<check>(&$rt)` with a fresh `$rt` (a [`SignalRuntime`]). Use it at the
/// root of a test file of its own: the child is started as `<test binary> --exact child`.
///
/// # Examples
///
/// At the root of `tests/signal.rs` of an adapter crate, after the adapter's `SignalRuntime`:
///
/// ```ignore
/// ctx_testkit::signal_suite!(Smol);
/// ```
#[macro_export]
macro_rules! signal_suite {
    ($rt:expr $(,)?) => {
        $crate::__ctx_testkit_signal_checks!(__ctx_testkit_signal_tests!($rt));
    };
}

// ===== the child's side =====

/// The environment variable that tells the child which scenario to play.
const SCENARIO: &str = "CTX_SIGNAL_CHILD";
/// What the child prints before each of its lines (libtest prints its own lines too).
const PREFIX: &str = "child: ";
/// How long a child may take to answer: far above what it needs, so a slow machine passes.
const BOUND: Duration = Duration::from_secs(30);
/// How long a child's own waits last before it gives up: longer than `BOUND`, so a child that
/// hangs is still running when the parent's watchdog fires.
const CHILD_LIMIT: Duration = Duration::from_secs(60);

/// Prints a line the parent reads.
fn say(line: impl fmt::Display) {
    println!("{PREFIX}{line}");
}

/// Waits for `ctx` and prints how it ended.
async fn report<R: SignalRuntime>(ctx: &Ctx) {
    match Ctx::background().run_timeout(CHILD_LIMIT, ctx.done()).await {
        Ok(err) => say(format_args!("err: {err}")),
        Err(_) => say("no signal came"),
    }
    let cause = ctx.cause().unwrap();
    say(format_args!("cause: {cause}"));
    if let Some(signal) = cause.downcast_ref::<R::Signal>() {
        say(format_args!("signal: {signal:?} {}", R::number(signal)));
    }
}

/// A drain that never ends, and blocks the executor's thread while it hangs: only the second
/// signal can end the process.
fn stuck_drain() {
    say("draining");
    std::thread::sleep(CHILD_LIMIT);
    say("drain ended");
}

/// The child process's side of the checks: plays the scenario the parent asked for, or returns
/// at once in a normal test run. [`signal_suite!`](crate::signal_suite) calls it from the
/// `child` test.
pub fn child<R: SignalRuntime>(rt: &R) {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    rt.block_on(async {
        let root = rt.background();
        match scenario.as_str() {
            // Waits for the signal, then ends by itself.
            "wait" => {
                let (ctx, _stop) = rt.shutdown(&root);
                say("ready");
                report::<R>(&ctx).await;
            }
            // Waits for the signal, then hangs in its drain.
            "stuck" => {
                let (ctx, _stop) = rt.shutdown(&root);
                say("ready");
                report::<R>(&ctx).await;
                stuck_drain();
            }
            // Stops listening (Go's `stop()`) and hangs: a signal must still end it.
            "stopped" => {
                let (_ctx, stop) = rt.shutdown(&root);
                stop.cancel();
                say("ready");
                stuck_drain();
            }
            // A first shutdown context is stopped, a second one listens: the signal goes to
            // the second, and the process goes on.
            "again" => {
                let (first, stop) = rt.shutdown(&root);
                drop(stop);
                assert!(first.is_done());
                let (second, _stop) = rt.shutdown(&root);
                say("ready");
                report::<R>(&second).await;
            }
            other => panic!("unknown scenario {other:?}"),
        }
    });
    say("exit");
}

// ===== the checks: in a child process =====

/// SIGINT cancels the context with the adapter's `Signal` as its cause; the child goes on and
/// exits normally.
pub fn sigint_cancels_the_context_with_signal_as_its_cause<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("wait");
    child.send(Sig::INT);
    child.expect("err: context canceled");
    child.expect("cause: received SIGINT");
    child.expect("signal: Interrupt 2");
    child.expect("exit");
    assert_eq!(child.status().code(), Some(0));
}

/// SIGTERM does the same, with its own name and number.
pub fn sigterm_cancels_the_context_with_signal_as_its_cause<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("wait");
    child.send(Sig::TERM);
    child.expect("cause: received SIGTERM");
    child.expect("signal: Terminate 15");
    assert_eq!(child.status().code(), Some(0));
}

/// A second SIGINT while the drain hangs ends the process with status 130 (128 + 2).
pub fn a_second_sigint_ends_a_stuck_drain_with_status_130<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("stuck");
    child.send(Sig::INT);
    child.expect("cause: received SIGINT");
    child.expect("draining");
    child.send(Sig::INT);
    assert_eq!(child.status().code(), Some(130));
}

/// A second SIGTERM while the drain hangs ends the process with status 143 (128 + 15).
pub fn a_second_sigterm_ends_a_stuck_drain_with_status_143<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("stuck");
    child.send(Sig::TERM);
    child.expect("cause: received SIGTERM");
    child.expect("draining");
    child.send(Sig::TERM);
    assert_eq!(child.status().code(), Some(143));
}

/// After `stop`, a signal is not swallowed: it ends the process as it would without a handler.
pub fn a_signal_after_stop_ends_the_process_instead_of_vanishing<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("stopped");
    child.expect("draining");
    child.send(Sig::INT);
    assert_eq!(child.status().code(), Some(130));
}

/// A signal reaches a context that listens, even after an earlier shutdown context was stopped.
pub fn a_signal_goes_to_a_listening_context_even_after_an_earlier_one_is_done<R: SignalRuntime>(_rt: &R) {
    let mut child = Running::start("again");
    child.send(Sig::INT);
    child.expect("cause: received SIGINT");
    child.expect("exit");
    assert_eq!(child.status().code(), Some(0));
}

// ===== the checks: in this process, no signal is sent =====

/// When the parent ends first, the shutdown context has the parent's error and cause.
pub fn the_parent_ends_it_with_its_own_error_and_cause<R: SignalRuntime>(rt: &R) {
    rt.block_on(async {
        let (parent, cancel) = rt.background().with_cancel_cause();
        let (ctx, _stop) = rt.shutdown(&parent);
        assert_eq!(ctx.err(), None);
        cancel.cancel(std::fmt::Error);
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(ctx.cause().unwrap().is::<std::fmt::Error>());
    })
}

/// The handle cancels the shutdown context, with a cause that is not a signal.
pub fn the_handle_cancels_it_without_a_signal<R: SignalRuntime>(rt: &R) {
    rt.block_on(async {
        let (ctx, stop) = rt.shutdown(&rt.background());
        stop.cancel();
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(!ctx.cause().unwrap().is::<R::Signal>());
    })
}
