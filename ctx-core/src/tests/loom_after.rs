//! `stop()` ⇄ after-func firing: exactly one of them wins.

use std::sync::Arc;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::Ctx;

#[test]
fn stop_vs_cancel_exactly_one_wins() {
    loom::model(|| {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let stop = ctx.after_func(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let t = thread::spawn(move || stop.stop());
        cancel.cancel();
        let stopped = t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst) + usize::from(stopped), 1);
    });
}

/// Invariant 7: with every `Ctx` clone dropped, the registration still keeps the context
/// attached, so a racing parent cancel runs the function.
#[test]
fn registration_outlives_dropped_ctx_under_racing_cancel() {
    loom::model(|| {
        let (parent, cancel) = Ctx::background().with_cancel();
        let (child, h) = parent.with_cancel();
        h.disarm();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let _stop = child.after_func(move || {
            r.fetch_add(1, Ordering::SeqCst);
        });
        let t = thread::spawn(move || drop(child));
        cancel.cancel();
        t.join().unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}
