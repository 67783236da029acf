//! Causes that are just errors: every spelling a user writes compiles, and a `Cause` comes back
//! as the same `Arc` while any other error is wrapped exactly once.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx_core::{Cause, Ctx, Error};

#[derive(Debug, PartialEq)]
struct MyErr(u32);

impl fmt::Display for MyErr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "my error {}", self.0)
    }
}

impl std::error::Error for MyErr {}

#[test]
fn cancel_with_a_plain_error_wraps_it_once() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel(MyErr(1));
    let cause = ctx.cause().unwrap();
    assert_eq!(cause.downcast_ref::<MyErr>(), Some(&MyErr(1)));
    assert_eq!(cause.to_string(), "my error 1");
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn cancel_with_an_arc_of_an_error_wraps_the_arc_once() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    let mine = Arc::new(MyErr(2));
    cancel.cancel(mine.clone());
    let cause = ctx.cause().unwrap();
    let inner = cause
        .downcast_ref::<Arc<MyErr>>()
        .expect("an Arc<MyErr> is wrapped once, as any error");
    assert!(Arc::ptr_eq(inner, &mine), "the user's Arc is kept, not copied");
    assert_eq!(cause.to_string(), "my error 2");
}

#[test]
fn cancel_with_a_cause_keeps_the_same_arc() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    let (child, _c) = ctx.with_cancel();
    let why: Cause = Arc::new(MyErr(3));
    cancel.cancel(why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
}

#[test]
fn cancel_with_an_arc_written_as_cause_keeps_the_same_arc() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    let why = Arc::new(MyErr(4)) as Cause;
    cancel.cancel(why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn cancel_with_a_ctx_error_gives_that_error_as_cause() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel(Error::DeadlineExceeded);
    // The error stays `Canceled`: the cause is only the reason.
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
}

#[test]
fn cancel_with_std_errors_compiles_and_is_kept() {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel(std::io::Error::other("gone"));
    let cause = ctx.cause().unwrap();
    assert_eq!(
        cause.downcast_ref::<std::io::Error>().unwrap().to_string(),
        "gone"
    );
}

#[test]
fn a_boxed_error_is_given_as_a_cause_through_arc_from() {
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(MyErr(5));
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    let why = Cause::from(boxed);
    cancel.cancel(why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    assert_eq!(ctx.cause().unwrap().downcast_ref::<MyErr>(), Some(&MyErr(5)));
}

#[test]
fn deadline_cause_accepts_a_plain_error_an_arc_and_a_cause() {
    let root = Ctx::background();
    let past = Instant::now();

    let (ctx, _c) = root.with_deadline_cause(past, MyErr(6));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(ctx.cause().unwrap().downcast_ref::<MyErr>(), Some(&MyErr(6)));

    let mine = Arc::new(MyErr(7));
    let (ctx, _c) = root.with_deadline_cause(past, mine.clone());
    let cause = ctx.cause().unwrap();
    assert!(Arc::ptr_eq(cause.downcast_ref::<Arc<MyErr>>().unwrap(), &mine));

    let why: Cause = Arc::new(MyErr(8));
    let (ctx, _c) = root.with_deadline_cause(past, why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn timeout_cause_accepts_a_plain_error_an_arc_and_a_cause() {
    let root = Ctx::background();

    let (ctx, _c) = root.with_timeout_cause(Duration::ZERO, MyErr(9));
    assert_eq!(ctx.cause().unwrap().downcast_ref::<MyErr>(), Some(&MyErr(9)));

    let (ctx, _c) = root.with_timeout_cause(Duration::ZERO, Arc::new(MyErr(10)));
    assert_eq!(ctx.cause().unwrap().to_string(), "my error 10");

    let why: Cause = Arc::new(MyErr(11));
    let (ctx, _c) = root.with_timeout_cause(Duration::ZERO, why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn a_timeout_cause_is_not_used_before_the_deadline() {
    let (ctx, cancel) = Ctx::background().with_timeout_cause(Duration::from_secs(3600), MyErr(12));
    cancel.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
}

// ===== with_deadline_cancel_cause: one node, a deadline and a handle with a cause =====

#[test]
fn deadline_cancel_cause_handle_records_its_cause() {
    let clock = ctx_testkit::MockClock::new();
    let root = clock.background();
    let deadline = clock.now() + Duration::from_secs(5);
    let (ctx, cancel) = root.with_deadline_cancel_cause(deadline);
    assert_eq!(ctx.deadline(), Some(deadline));
    let (child, _c) = ctx.with_cancel();
    let why: Cause = Arc::new(MyErr(13));
    cancel.cancel(why.clone());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
    // The deadline passing afterwards changes nothing.
    clock.advance(Duration::from_secs(10));
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn deadline_cancel_cause_expires_as_deadline_exceeded() {
    let clock = ctx_testkit::MockClock::new();
    let root = clock.background();
    let start = clock.now();
    let (ctx, cancel) = root.with_deadline_cancel_cause(start + Duration::from_secs(5));
    clock.advance(Duration::from_secs(4));
    assert_eq!(ctx.err(), None);
    // A waiter is woken by the deadline's timer.
    let waited = ctx.clone();
    assert_eq!(clock.block_on(waited.done()), Error::DeadlineExceeded);
    assert_eq!(clock.now(), start + Duration::from_secs(5));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::DeadlineExceeded)
    );
    // Canceling after the deadline changes nothing.
    cancel.cancel(MyErr(14));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn deadline_cancel_cause_cancel_without_cause_is_plain_canceled() {
    let clock = ctx_testkit::MockClock::new();
    let (ctx, cancel) = clock
        .background()
        .with_deadline_cancel_cause(clock.now() + Duration::from_secs(5));
    cancel.cancel_without_cause();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(
        ctx.cause().unwrap().downcast_ref::<Error>(),
        Some(&Error::Canceled)
    );
}

#[test]
fn deadline_cancel_cause_keeps_an_earlier_parent_deadline_and_parent_cancels() {
    let clock = ctx_testkit::MockClock::new();
    let start = clock.now();
    let (parent, cancel_parent) = clock
        .background()
        .with_deadline_cancel_cause(start + Duration::from_secs(1));
    let (ctx, _cancel) = parent.with_deadline_cancel_cause(start + Duration::from_secs(60));
    assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(1)));
    let why: Cause = Arc::new(MyErr(15));
    cancel_parent.cancel(why.clone());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn deadline_cancel_cause_in_the_past_is_born_done_and_drop_cancels() {
    let clock = ctx_testkit::MockClock::new();
    let (late, _c) = clock.background().with_deadline_cancel_cause(clock.now());
    assert_eq!(late.err(), Some(Error::DeadlineExceeded));

    let (ctx, cancel) = clock
        .background()
        .with_deadline_cancel_cause(clock.now() + Duration::from_secs(5));
    drop(cancel);
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

#[test]
fn timeout_cancel_cause_is_now_plus_timeout_on_the_context_clock() {
    let clock = ctx_testkit::MockClock::new();
    let start = clock.now();
    let (ctx, cancel) = clock
        .background()
        .with_timeout_cancel_cause(Duration::from_secs(5));
    assert_eq!(ctx.deadline(), Some(start + Duration::from_secs(5)));
    clock.advance(Duration::from_secs(5));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    cancel.cancel(MyErr(16));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));

    let (ctx, cancel) = clock
        .background()
        .with_timeout_cancel_cause(Duration::from_secs(5));
    let why: Cause = Arc::new(MyErr(17));
    cancel.cancel(why.clone());
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));

    // Zero is born done; too large for `Instant` never expires (and never panics).
    let (zero, _c) = clock.background().with_timeout_cancel_cause(Duration::ZERO);
    assert_eq!(zero.err(), Some(Error::DeadlineExceeded));
    let (never, _c) = clock.background().with_timeout_cancel_cause(Duration::MAX);
    clock.advance(Duration::from_secs(3600));
    assert_eq!(never.err(), None);
}
