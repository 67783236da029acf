//! A cancel nobody can observe (tree/mod.rs, invariant 21): when the handle holds the only
//! reference to its node, canceling it changes nothing anyone can see, so it reads no clock
//! and takes no lock. Whenever anything else can still see the node — a `Ctx` clone, a child,
//! a pending `done()`, an after-func — the cancel is a full one.

use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::time::{Duration, Instant};

use ctx_core::clock::Timer;
use ctx_core::{Clock, Ctx, Error};

/// The system's time, counting how often it is read.
#[derive(Debug, Default)]
struct CountingClock {
    reads: AtomicUsize,
}

impl CountingClock {
    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

impl Clock for CountingClock {
    fn now(&self) -> Instant {
        self.reads.fetch_add(1, Ordering::SeqCst);
        Instant::now()
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
#[cfg_attr(
    feature = "tracing",
    ignore = "with `tracing`, every cancel is seen: its event"
)]
fn a_cancel_nobody_can_see_reads_no_clock() {
    let clock = Arc::new(CountingClock::default());
    let root = Ctx::background_with_clock(clock.clone());

    // A request's ctx (ctx-tower's `ServerLayer`): the handler has dropped it when the body
    // ends and the handle cancels.
    let (ctx, cancel) = root.with_timeout_cancel_cause(HOUR);
    drop(ctx);
    let before = clock.reads();
    cancel.cancel_without_cause();
    drop(cancel);
    assert_eq!(clock.reads(), before, "cancel_without_cause");

    let (ctx, cancel) = root.with_timeout_cancel_cause(HOUR);
    drop(ctx);
    let before = clock.reads();
    cancel.cancel(std::io::Error::other("client went away"));
    drop(cancel);
    assert_eq!(clock.reads(), before, "cancel with a cause");

    // The drop of the last handle cancels (`HandleDropped`): unseen too.
    let (ctx, cancel) = root.with_timeout(HOUR);
    drop(ctx);
    let before = clock.reads();
    drop(cancel);
    assert_eq!(clock.reads(), before, "the last handle's drop");

    // Two handles hold two references: the shortcut does not tell them apart from a `Ctx`,
    // so the first cancel is a full one (the deadline checked), the second finds it done.
    let (ctx, cancel) = root.with_timeout(HOUR);
    let other = cancel.clone();
    drop(ctx);
    let before = clock.reads();
    cancel.cancel();
    other.cancel();
    drop((cancel, other));
    assert_eq!(clock.reads(), before + 1, "two handles: one full cancel");
}

#[test]
fn a_cancel_anyone_can_see_is_a_full_one() {
    let clock = Arc::new(CountingClock::default());
    let root = Ctx::background_with_clock(clock.clone());

    // A `Ctx` clone: it reads `Canceled`, and the cancel looked at the deadline first.
    let (ctx, cancel) = root.with_timeout(HOUR);
    let before = clock.reads();
    cancel.cancel();
    assert_eq!(
        clock.reads(),
        before + 1,
        "the deadline is checked before a cancel"
    );
    assert_eq!(ctx.err(), Some(Error::Canceled));

    // A child, its parent's `Ctx` gone: the child holds it and is canceled with it.
    let (ctx, cancel) = root.with_timeout(HOUR);
    let (child, _child_cancel) = ctx.with_cancel();
    drop(ctx);
    cancel.cancel();
    assert_eq!(child.err(), Some(Error::Canceled));

    // A pending `done()`, its `Ctx` gone: it completes.
    let (ctx, cancel) = root.with_timeout(HOUR);
    let mut done = pin!(ctx.done());
    let mut cx = TaskContext::from_waker(Waker::noop());
    assert!(done.as_mut().poll(&mut cx).is_pending());
    drop(ctx);
    cancel.cancel();
    assert_eq!(done.as_mut().poll(&mut cx), Poll::Ready(Error::Canceled));

    // An after-func, its `Ctx` gone: it runs.
    let (ctx, cancel) = root.with_timeout(HOUR);
    let ran = Arc::new(AtomicBool::new(false));
    let flag = ran.clone();
    let after = ctx.after_func(move || flag.store(true, Ordering::SeqCst));
    drop(ctx);
    cancel.cancel();
    assert!(ran.load(Ordering::SeqCst), "the after-func ran");
    drop(after);

    // A child of an open parent is in its parent's children (a weak reference): its cancel
    // leaves them, whoever else holds it.
    let (parent, _parent_cancel) = root.with_cancel();
    let (child, cancel) = parent.with_timeout(HOUR);
    drop(child);
    cancel.cancel();
    let (second, _second_cancel) = parent.with_cancel();
    assert_eq!(second.err(), None);
}
