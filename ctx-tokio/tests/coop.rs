//! Issue 10, point 1: a deadline first waited on by a task that has spent tokio's cooperative
//! budget must fire, not spin. Each case runs on a thread of its own under a watchdog, so a
//! spin fails the test instead of hanging CI.

use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use ctx_testkit::conformance::{
    BOUND, self_waking_foreign_done_does_not_spin, self_waking_timer_fires,
    self_waking_timer_forever_does_not_spin,
};
use ctx_tokio::{Error, TokioClock};
use tokio::runtime::{Builder, Runtime};

fn multi_thread() -> Runtime {
    Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn current_thread() -> Runtime {
    Builder::new_current_thread().enable_all().build().unwrap()
}

/// The program, with a short timeout: spend the budget on 128 `recv`s, then wait.
fn budget_spent_then_done(rt: fn() -> Runtime) {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let err = rt().block_on(async {
            let (ctx, _c) = ctx_tokio::background().with_timeout(Duration::from_millis(20));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            for i in 0..128 {
                tx.send(i).unwrap();
            }
            for _ in 0..128 {
                rx.recv().await.unwrap();
            }
            ctx.done().await
        });
        let _ = tx.send(err);
    });
    let err = rx
        .recv_timeout(BOUND)
        .expect("done() never completed: the watch spins on tokio's out-of-budget Sleep");
    assert_eq!(err, Error::DeadlineExceeded);
}

#[test]
fn a_deadline_waited_on_out_of_budget_fires_on_a_multi_thread_runtime() {
    budget_spent_then_done(multi_thread);
}

#[test]
fn a_deadline_waited_on_out_of_budget_fires_on_a_current_thread_runtime() {
    budget_spent_then_done(current_thread);
}

#[test]
fn a_self_waking_timer_fires_on_tokio() {
    let rt = multi_thread();
    self_waking_timer_fires(TokioClock::new(rt.handle().clone()), thread::sleep);
}

#[test]
fn a_timer_waking_itself_forever_spins_nobody_on_tokio() {
    let rt = multi_thread();
    self_waking_timer_forever_does_not_spin(TokioClock::new(rt.handle().clone()), thread::sleep);
}

#[test]
fn a_self_waking_foreign_done_spins_nobody_on_tokio() {
    let rt = multi_thread();
    let _enter = rt.enter();
    self_waking_foreign_done_does_not_spin(ctx_tokio::background());
}
