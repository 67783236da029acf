//! `ctx_smol::signal::shutdown` with real signals: ctx-testkit's signal checks (each runs this
//! test binary again as a child process, the `child` test, under `smol::block_on`), and the
//! checks of the listener task. Every wait has a watchdog.
#![cfg(unix)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx_smol::signal::{Signal, shutdown};
use ctx_smol::{CancelHandle, Ctx, Error};
use ctx_testkit::signal::SignalRuntime;

const BOUND: Duration = Duration::from_secs(30);

/// `smol::block_on` on the test's thread: a drain that blocks it shows that the second signal
/// does not need it.
struct Smol;

impl SignalRuntime for Smol {
    type Signal = Signal;

    fn background(&self) -> Ctx {
        ctx_smol::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        smol::block_on(fut)
    }
    fn shutdown(&self, parent: &Ctx) -> (Ctx, CancelHandle) {
        shutdown(parent)
    }
    fn number(signal: &Signal) -> i32 {
        signal.number()
    }
}

ctx_testkit::signal_suite!(Smol);

// ===== the listener task =====

#[test]
fn a_done_parent_gives_a_done_context() {
    let (parent, cancel) = ctx_smol::background().with_cancel();
    cancel.cancel();
    let (ctx, _stop) = shutdown(&parent);
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

/// The listener task holds the parent (through the context it cancels): once the context is
/// done, the task ends and lets go of it.
#[test]
fn the_listener_ends_and_lets_go_when_the_context_is_done() {
    let value = Arc::new(());
    let parent = ctx_smol::background().with_value(value.clone());
    let (ctx, stop) = shutdown(&parent);
    assert!(Arc::strong_count(&value) > 1);
    drop((parent, ctx, stop));
    let until = Instant::now() + BOUND;
    while Arc::strong_count(&value) > 1 {
        assert!(Instant::now() < until, "the listener task still holds the parent");
        std::thread::sleep(Duration::from_millis(1));
    }
}

// ===== the Signal type =====

/// `Signal` is a cause (checked at compile time).
const _: () = {
    const fn is_cause<E: std::error::Error + Send + Sync + 'static>() {}
    is_cause::<Signal>()
};

#[test]
fn signal_is_an_error_that_names_the_signal() {
    assert_eq!(Signal::Interrupt.to_string(), "received SIGINT");
    assert_eq!(Signal::Terminate.to_string(), "received SIGTERM");
    assert_eq!(
        (Signal::Terminate.name(), Signal::Terminate.number()),
        ("SIGTERM", 15)
    );
    assert_eq!(format!("{:?}", Signal::Terminate), "Terminate");
}
