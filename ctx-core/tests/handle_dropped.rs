//! `HandleDropped`: a context whose last cancel handle was dropped (not disarmed) is
//! `Canceled`, and its `cause()` says why; its descendants inherit that cause. `cancel()`,
//! `cancel_without_cause()` and a deadline keep their own.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use ctx_core::{Cause, Ctx, Error, HandleDropped};
use ctx_testkit::{MockClock, Probe};

const SEC: Duration = Duration::from_secs(1);
/// The longest a test waits for another thread.
const BOUND: Duration = Duration::from_secs(5);

fn dropped(ctx: &Ctx) -> bool {
    ctx.err() == Some(Error::Canceled) && ctx.cause().is_some_and(|c| c.is::<HandleDropped>())
}

#[test]
fn handle_dropped_is_a_plain_error_type_with_its_message() {
    fn is_error<E: std::fmt::Debug + std::fmt::Display + std::error::Error + Send + Sync + 'static>() {}
    is_error::<HandleDropped>();
    assert_eq!(
        HandleDropped.to_string(),
        "context canceled: its cancel handle was dropped"
    );
    assert_eq!(format!("{HandleDropped:?}"), "HandleDropped");
}

#[test]
fn field_zero_of_with_timeout_is_canceled_by_the_dropped_handle() {
    let root = Ctx::background();
    let short = root.with_timeout(SEC).0;
    assert!(dropped(&short), "{:?} / {:?}", short.err(), short.cause());
    assert_eq!(
        short.cause().unwrap().to_string(),
        "context canceled: its cancel handle was dropped"
    );
}

#[test]
fn underscore_pattern_drops_the_handle_of_every_kind() {
    let clock = MockClock::new();
    let root = clock.background();
    let (a, _) = root.with_cancel();
    assert!(dropped(&a));
    let (b, _) = root.with_cancel_cause();
    assert!(dropped(&b));
    let (c, _) = root.with_timeout(SEC);
    assert!(dropped(&c));
    let (d, _) = root.with_deadline(clock.now() + SEC);
    assert!(dropped(&d));
    let (e, _) = root.with_timeout_cancel_cause(SEC);
    assert!(dropped(&e));
    let (other, _keep) = root.with_cancel();
    let (f, _) = root.with_merged(&other);
    assert!(dropped(&f));
    // Under a parent that is not a root (the general, attached path) and under a value.
    let (parent, _p) = root.with_cancel();
    let (g, _) = parent.with_value(7u8).with_cancel();
    assert!(dropped(&g));
    assert_eq!(parent.err(), None, "the parent is untouched");
}

#[test]
fn a_handle_moved_into_a_thread_that_ends_cancels_with_handle_dropped() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    let worker = std::thread::spawn(move || {
        let _owned = cancel; // the thread ends without canceling or disarming
    });
    worker.join().unwrap(); // the thread has ended, its locals dropped
    assert!(dropped(&ctx));
}

#[test]
fn a_handle_moved_into_a_task_that_ends_cancels_with_handle_dropped() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (tx, rx) = mpsc::channel();
    let task = async move {
        let _owned = cancel;
        tx.send(()).unwrap();
    };
    assert_eq!(ctx.err(), None, "the task has not run");
    futures::executor::block_on(task);
    rx.recv_timeout(BOUND).expect("the task ran");
    assert!(dropped(&ctx));
}

#[test]
fn children_inherit_handle_dropped_whether_made_before_or_after() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (before, _b) = parent.with_cancel();
    let (grandchild, _g) = before.with_value(1u32).with_timeout(SEC);
    drop(cancel);
    assert!(dropped(&parent));
    assert!(dropped(&before), "a child attached before the drop");
    assert!(dropped(&grandchild));
    // The same shared cause all the way down.
    assert!(Arc::ptr_eq(
        &parent.cause().unwrap(),
        &grandchild.cause().unwrap()
    ));
    let (after, _a) = parent.with_cancel();
    assert!(dropped(&after), "a child born done");
    let (merged, _m) = Ctx::background().with_merged(&parent);
    assert!(dropped(&merged), "a merged child born done");
}

#[test]
fn a_node_with_a_waiter_canceled_by_the_drop_wakes_it_with_handle_dropped() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let mut done = Probe::new(ctx.done());
    done.assert_pending();
    drop(cancel);
    done.assert_woken(1);
    assert_eq!(done.assert_ready(), Error::Canceled);
    assert!(dropped(&ctx));
}

#[test]
fn cancel_and_cancel_without_cause_keep_the_plain_canceled_cause() {
    let plain = |c: Cause| c.downcast_ref::<Error>() == Some(&Error::Canceled);
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    drop(cancel);
    assert!(plain(ctx.cause().unwrap()));

    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel_without_cause();
    drop(cancel);
    assert!(plain(ctx.cause().unwrap()));

    // A busy node (a child and a waiter) takes the locked path: the same.
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (child, _c) = ctx.with_cancel();
    cancel.cancel();
    drop(cancel);
    assert!(plain(ctx.cause().unwrap()));
    assert!(plain(child.cause().unwrap()));

    // A cause given wins over the drop that follows.
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel(std::fmt::Error);
    drop(cancel);
    assert!(ctx.cause().unwrap().is::<std::fmt::Error>());
}

#[test]
fn disarm_then_drop_is_not_a_cancel() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.disarm();
    assert_eq!(ctx.err(), None);
    assert!(ctx.cause().is_none());
}

#[test]
fn a_parent_canceled_first_keeps_its_own_cause_in_the_child() {
    let (parent, cancel_parent) = Ctx::background().with_cancel_cause();
    let (child, cancel_child) = parent.with_cancel();
    let why: Cause = Arc::new(std::fmt::Error);
    cancel_parent.cancel(why.clone());
    drop(cancel_child);
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
}

#[test]
fn a_passed_deadline_wins_over_the_dropped_handle() {
    let clock = MockClock::new();
    let (ctx, cancel) = clock.background().with_timeout(SEC);
    clock.advance(SEC);
    drop(cancel); // nobody looked before: the deadline has passed all the same
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[test]
fn a_wrap_of_a_dropped_context_answers_handle_dropped() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let wrapped = Ctx::wrap(ctx.clone());
    let (child, _c) = wrapped.with_cancel();
    drop(cancel);
    assert!(dropped(&wrapped));
    assert!(dropped(&child));
}
