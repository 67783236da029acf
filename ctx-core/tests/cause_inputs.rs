//! Everything that takes a cause (`CancelCauseHandle::cancel`, `with_deadline_cause`,
//! `with_timeout_cause`) accepts any `Into<Box<dyn Error + Send + Sync>>`: an error type, a
//! `Cause`, `anyhow::Error`, a boxed error, `&str`, `String`. This file compiles only if they
//! all do; the tests check what comes back: a `Cause` is the same `Arc` (also inside a box),
//! anything else is wrapped once.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctx_core::{Cause, Ctx, Error};

type BoxError = Box<dyn StdError + Send + Sync + 'static>;

#[derive(Debug, PartialEq)]
struct Overloaded(u32);

impl std::fmt::Display for Overloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "overloaded ({})", self.0)
    }
}

impl StdError for Overloaded {}

/// Cancels a fresh context with `why` and returns its cause.
fn cause_of(why: impl Into<BoxError>) -> Cause {
    let (ctx, cancel) = Ctx::background().with_cancel_cause();
    cancel.cancel(why);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    ctx.cause().unwrap()
}

#[test]
fn every_kind_of_cause_compiles_for_every_taker() {
    let root = Ctx::background();
    let later = Instant::now() + Duration::from_secs(3600);
    let hour = Duration::from_secs(3600);
    let cause: Cause = Arc::new(Overloaded(1));
    let boxed: BoxError = Box::new(Overloaded(2));

    let (_c, h) = root.with_cancel_cause();
    h.cancel(Overloaded(0));
    let (_c, h) = root.with_cancel_cause();
    h.cancel(std::io::Error::other("io"));
    let (_c, h) = root.with_cancel_cause();
    h.cancel(cause.clone());
    let (_c, h) = root.with_cancel_cause();
    h.cancel(anyhow::anyhow!("deploy"));
    let (_c, h) = root.with_cancel_cause();
    h.cancel(boxed);
    let (_c, h) = root.with_cancel_cause();
    h.cancel("a &str");
    let (_c, h) = root.with_cancel_cause();
    h.cancel(String::from("a String"));

    let _ = root.with_deadline_cause(later, Overloaded(0));
    let _ = root.with_deadline_cause(later, cause.clone());
    let _ = root.with_deadline_cause(later, anyhow::anyhow!("deploy"));
    let _ = root.with_deadline_cause(later, Box::new(Overloaded(3)) as BoxError);
    let _ = root.with_deadline_cause(later, "a &str");
    let _ = root.with_deadline_cause(later, format!("a {}", "String"));

    let _ = root.with_timeout_cause(hour, Overloaded(0));
    let _ = root.with_timeout_cause(hour, cause);
    let _ = root.with_timeout_cause(hour, anyhow::anyhow!("deploy"));
    let _ = root.with_timeout_cause(hour, Box::new(Overloaded(4)) as BoxError);
    let _ = root.with_timeout_cause(hour, "a &str");
    let _ = root.with_timeout_cause(hour, String::from("a String"));
}

#[test]
fn a_cause_comes_back_as_the_same_arc() {
    let why: Cause = Arc::new(Overloaded(1));
    assert!(Arc::ptr_eq(&cause_of(why.clone()), &why));
}

#[test]
fn a_cause_inside_a_box_comes_back_as_the_same_arc() {
    let why: Cause = Arc::new(Overloaded(1));
    let boxed: BoxError = Box::new(why.clone());
    assert!(Arc::ptr_eq(&cause_of(boxed), &why));
}

#[test]
fn a_cause_is_the_same_arc_through_with_deadline_cause_and_with_timeout_cause() {
    let why: Cause = Arc::new(Overloaded(1));
    let (ctx, _c) = Ctx::background().with_deadline_cause(Instant::now(), why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    let (ctx, _c) = Ctx::background().with_timeout_cause(Duration::ZERO, why.clone());
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    let boxed: BoxError = Box::new(why.clone());
    let (ctx, _c) = Ctx::background().with_timeout_cause(Duration::ZERO, boxed);
    assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
}

#[test]
fn an_error_is_wrapped_once_and_downcasts_to_itself() {
    assert_eq!(
        cause_of(Overloaded(7)).downcast_ref::<Overloaded>(),
        Some(&Overloaded(7))
    );
    let boxed: BoxError = Box::new(Overloaded(8));
    assert_eq!(
        cause_of(boxed).downcast_ref::<Overloaded>(),
        Some(&Overloaded(8)),
        "a boxed error is not wrapped again"
    );
    // An `Arc` of an error that is not a `Cause` is an error of its own.
    let arc = Arc::new(Overloaded(9));
    let cause = cause_of(arc.clone());
    assert!(Arc::ptr_eq(
        cause.downcast_ref::<Arc<Overloaded>>().unwrap(),
        &arc
    ));
}

#[test]
fn messages_become_causes_that_display_them() {
    assert_eq!(cause_of("draining").to_string(), "draining");
    assert_eq!(cause_of(format!("shard {}", 3)).to_string(), "shard 3");
}

#[test]
fn an_anyhow_error_keeps_its_message_and_its_source_chain() {
    let err = anyhow::Error::new(Overloaded(5)).context("deploy");
    let cause = cause_of(err);
    assert_eq!(cause.to_string(), "deploy");
    let source = cause.source().expect("the context's source");
    assert_eq!(source.downcast_ref::<Overloaded>(), Some(&Overloaded(5)));
    assert_eq!(cause_of(anyhow::anyhow!("deploy")).to_string(), "deploy");
}

#[test]
fn children_get_the_same_arc_whatever_the_input() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (child, _c) = parent.with_cancel();
    cancel.cancel("stop");
    assert!(Arc::ptr_eq(&child.cause().unwrap(), &parent.cause().unwrap()));
}
