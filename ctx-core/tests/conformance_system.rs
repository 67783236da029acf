//! The conformance suite on ctx-core's own clock (`ctx_testkit::conformance::SystemRuntime`):
//! real time, `futures-timer`'s thread, `futures::executor`.
#![cfg(not(miri))] // real time: deadlines of tens of milliseconds

use std::time::{Duration, Instant};

use ctx_core::{Ctx, Error};

ctx_testkit::conformance_suite!(ctx_testkit::conformance::SystemRuntime::new());

/// `Ctx::background()`'s clock fires deadlines by itself: a `done()` under
/// `futures::executor::block_on` completes at the deadline with nothing else driving it.
#[test]
fn done_of_a_background_deadline_completes_under_block_on_by_itself() {
    let start = Instant::now();
    let (ctx, _c) = Ctx::background().with_timeout(Duration::from_millis(20));
    let deadline = ctx.deadline().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let done = ctx.done();
    std::thread::spawn(move || {
        let _ = tx.send((futures::executor::block_on(done), Instant::now()));
    });
    let (err, at) = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("done() did not complete within 5 s of a 20 ms deadline");
    assert_eq!(err, Error::DeadlineExceeded);
    assert!(at >= deadline, "completed {:?} early", deadline - at);
    assert!(at - start < Duration::from_secs(5));
}
