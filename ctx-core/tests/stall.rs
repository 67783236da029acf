//! Issue 10, point 6: an after-func that blocks stalls nothing else. After-funcs fired by a
//! timer or by the watcher thread of foreign contexts run on threads of their own; every wait
//! here is bounded, so a stall fails the test instead of hanging.
#![cfg(not(miri))] // real timers and threads that outlive the test

use std::sync::mpsc;
use std::time::Duration;

use ctx_core::{Ctx, Done, Error};
use futures::FutureExt;
use futures::channel::oneshot;
use futures::future::Shared;

const BOUND: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(20);

/// A deadline fires an after-func that blocks until `gate` is done; a second deadline, later
/// and on the same timer thread, must still fire (and its after-func run) meanwhile.
fn a_blocked_after_func_stalls_no_other_deadline(root: &Ctx) {
    let (gate, open_gate) = Ctx::background().with_cancel();
    let (first, _c1) = root.with_timeout(SHORT);
    let (second, _c2) = root.with_timeout(SHORT * 2);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let _a = first.after_func(move || {
        tx.send("first started").unwrap();
        gate.wait_blocking(); // blocks whichever thread runs it
        tx.send("first ended").unwrap();
    });
    let _b = second.after_func(move || tx2.send("second").unwrap());
    assert_eq!(rx.recv_timeout(BOUND), Ok("first started"));
    assert_eq!(
        rx.recv_timeout(BOUND),
        Ok("second"),
        "the second deadline was stalled by the first one's blocked after-func"
    );
    assert_eq!(second.err(), Some(Error::DeadlineExceeded));
    open_gate.cancel();
    assert_eq!(rx.recv_timeout(BOUND), Ok("first ended"));
}

#[test]
fn a_blocked_after_func_stalls_no_other_deadline_on_the_system_clock() {
    a_blocked_after_func_stalls_no_other_deadline(&Ctx::background());
}

#[test]
fn a_blocked_after_func_stalls_no_other_deadline_on_a_value_tree() {
    // Several blocked after-funcs at once: each holds a thread, none waits behind another.
    let root = Ctx::background().with_value(7u8);
    // Declared before the gate, so a failure opens the gate before it cancels these.
    let mut keep = Vec::new();
    let (gate, open_gate) = Ctx::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    for i in 0..4 {
        let (ctx, c) = root.with_timeout(SHORT);
        let (gate, tx) = (gate.clone(), tx.clone());
        keep.push((
            ctx.after_func(move || {
                tx.send(i).unwrap();
                gate.wait_blocking();
            }),
            c,
        ));
    }
    let mut started: Vec<i32> = (0..4)
        .map(|_| {
            rx.recv_timeout(BOUND)
                .expect("an after-func waited behind a blocked one")
        })
        .collect();
    started.sort();
    assert_eq!(started, [0, 1, 2, 3]);
    open_gate.cancel();
}

/// A foreign context (its `done()` is watched by the one watcher thread) fires an after-func
/// that blocks; a second foreign context must still be seen done.
#[test]
fn a_blocked_after_func_stalls_no_foreign_context() {
    let (gate, open_gate) = Ctx::background().with_cancel();
    let foreign = || {
        let (tx, rx) = oneshot::channel::<()>();
        (Foreign(rx.shared()), tx)
    };
    let (f1, fire1) = foreign();
    let (f2, fire2) = foreign();
    let w1 = Ctx::wrap(f1);
    let w2 = Ctx::wrap(f2);
    let (tx, rx) = mpsc::channel();
    let tx2 = tx.clone();
    let _a = w1.after_func(move || {
        tx.send("first started").unwrap();
        gate.wait_blocking();
    });
    let _b = w2.after_func(move || tx2.send("second").unwrap());
    fire1.send(()).unwrap();
    assert_eq!(rx.recv_timeout(BOUND), Ok("first started"));
    fire2.send(()).unwrap();
    assert_eq!(
        rx.recv_timeout(BOUND),
        Ok("second"),
        "the watcher thread was stalled by a blocked after-func"
    );
    open_gate.cancel();
}

/// A custom context that is done when its channel fires, and knows nothing else.
struct Foreign(Shared<oneshot::Receiver<()>>);

impl ctx_core::Context for Foreign {
    fn deadline(&self) -> Option<std::time::Instant> {
        None
    }
    fn done(&self) -> Done {
        let fired = self.0.clone();
        Done::new(async move {
            let _ = fired.await;
            Error::Canceled
        })
    }
    fn err(&self) -> Option<Error> {
        None
    }
    fn cause(&self) -> Option<ctx_core::Cause> {
        None
    }
    fn value_any(&self, _: std::any::TypeId) -> Option<&(dyn std::any::Any + Send + Sync)> {
        None
    }
}
