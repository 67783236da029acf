//! `ctx_tokio::signal::shutdown` with real signals: ctx-testkit's signal checks (each runs this
//! test binary again as a child process, the `child` test, on a current-thread runtime), and
//! the tokio-only checks of the listener task. Every wait has a watchdog.
#![cfg(unix)]

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx_testkit::signal::SignalRuntime;
use ctx_tokio::signal::{Signal, shutdown};
use ctx_tokio::{CancelHandle, Ctx, Error};

const BOUND: Duration = Duration::from_secs(30);

/// A current-thread runtime: a drain that blocks its only thread shows that the second signal
/// does not need it.
struct Tokio;

impl SignalRuntime for Tokio {
    type Signal = Signal;

    fn background(&self) -> Ctx {
        ctx_tokio::background()
    }
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(fut)
    }
    fn shutdown(&self, parent: &Ctx) -> (Ctx, CancelHandle) {
        shutdown(parent)
    }
    fn number(signal: &Signal) -> i32 {
        signal.number()
    }
}

ctx_testkit::signal_suite!(Tokio);

// ===== tokio only: the listener task =====

#[tokio::test]
async fn a_done_parent_gives_a_done_context_and_no_task() {
    let (parent, cancel) = ctx_tokio::background().with_cancel();
    cancel.cancel();
    let before = tokio::runtime::Handle::current().metrics().num_alive_tasks();
    let (ctx, _stop) = shutdown(&parent);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        tokio::runtime::Handle::current().metrics().num_alive_tasks(),
        before
    );
}

/// The listener task holds the parent (through the context it cancels): once the context is
/// done, the task ends and lets go of it.
#[tokio::test]
async fn the_listener_ends_and_lets_go_when_the_context_is_done() {
    let value = Arc::new(());
    let parent = ctx_tokio::background().with_value(value.clone());
    let (ctx, stop) = shutdown(&parent);
    assert_eq!(tokio::runtime::Handle::current().metrics().num_alive_tasks(), 1);
    drop((parent, ctx, stop));
    let until = Instant::now() + BOUND;
    while Arc::strong_count(&value) > 1 || tokio::runtime::Handle::current().metrics().num_alive_tasks() > 0 {
        assert!(Instant::now() < until, "the listener task is still alive");
        tokio::task::yield_now().await;
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
