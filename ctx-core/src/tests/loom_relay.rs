//! The relay behind `Ctx::wrap` of a `Ctx`-backed custom context: the cancel that reaches it
//! ⇄ a child attaching to the wrap, ⇄ a lazy check from another thread.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::time::Instant;

use loom::thread;

use crate::{Cause, Context, Ctx, Done, Error};

/// `done()` from one context, `err()`/`cause()` from another (API.md, second wave).
pub(super) struct Mixed {
    pub(super) done_of: Ctx,
    pub(super) answers_of: Ctx,
}

impl Context for Mixed {
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn done(&self) -> Done {
        self.done_of.done()
    }
    fn err(&self) -> Option<Error> {
        self.answers_of.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.answers_of.cause()
    }
    fn value_any(&self, _key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        None
    }
}

/// Invariants 3 and 8: a child attaching to the wrap while the cancel of the context behind
/// its `done()` is under way is either reached by the relay's resolution or born done — with
/// the custom's own cause either way, never the canceled context's.
#[test]
fn relay_resolution_vs_child_attach_gives_the_customs_cause() {
    loom::model(|| {
        let why: Cause = Arc::new(std::fmt::Error);
        let (answers_of, answer) = Ctx::background().with_cancel_cause();
        answer.cancel(why.clone());
        let (done_of, cancel) = Ctx::background().with_cancel();
        let wrapped = Ctx::wrap(Mixed { done_of, answers_of });
        let w = wrapped.clone();
        let t = thread::spawn(move || w.with_cancel());
        cancel.cancel();
        let (child, handle) = t.join().unwrap();
        assert_eq!(child.err(), Some(Error::Canceled));
        assert!(Arc::ptr_eq(&child.cause().unwrap(), &why));
        handle.disarm();
    });
}

/// A lazy check racing the cancel's own resolution of the relay: one of them resolves it,
/// with the custom's answers; the other finds it done.
#[test]
fn lazy_check_vs_relay_resolution_agree() {
    loom::model(|| {
        let why: Cause = Arc::new(std::fmt::Error);
        let (answers_of, answer) = Ctx::background().with_cancel_cause();
        answer.cancel(why.clone());
        let (done_of, cancel) = Ctx::background().with_cancel();
        let wrapped = Ctx::wrap(Mixed { done_of, answers_of });
        let value = wrapped.with_value(1u8);
        let v = value.clone();
        let t = thread::spawn(move || v.cause());
        cancel.cancel();
        let seen = t.join().unwrap();
        assert!(seen.is_none_or(|c| Arc::ptr_eq(&c, &why)));
        assert!(Arc::ptr_eq(&value.cause().unwrap(), &why));
    });
}
