//! Merged contexts (invariant 9): both parents cancel while the merge is dropped; a merge
//! attaches while either parent cancels. Nothing is left in either parent's slab.

use std::sync::Arc;

use loom::thread;

use super::loom_relay::Mixed;
use crate::{Cause, Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    crate::tree::child_count(&ctx.node)
}

/// Both parents cancel on two threads while the merged context is dropped on a third: its
/// slots are removed exactly once (or found gone with a done canceler), and a child of the
/// merge that stays is canceled exactly once, with one of the two causes.
#[test]
fn both_parents_cancel_while_the_merge_is_dropped() {
    loom::model(|| {
        let (a, cancel_a) = Ctx::background().with_cancel();
        let (b, cancel_b) = Ctx::background().with_cancel();
        let (m, h) = a.with_merged(&b);
        h.disarm();
        let ta = thread::spawn(move || cancel_a.cancel());
        let tb = thread::spawn(move || cancel_b.cancel());
        drop(m);
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!((a.err(), b.err()), (Some(Error::Canceled), Some(Error::Canceled)));
        assert_eq!((children(&a), children(&b)), (0, 0));
    });
}

/// One parent cancels while the merge is dropped; the other parent stays open and must get
/// its slot back whichever comes first.
#[test]
fn one_parent_cancels_while_the_merge_is_dropped() {
    loom::model(|| {
        let (a, cancel_a) = Ctx::background().with_cancel();
        let (b, _cancel_b) = Ctx::background().with_cancel();
        let (m, h) = a.with_merged(&b);
        h.disarm();
        let t = thread::spawn(move || cancel_a.cancel());
        drop(m);
        t.join().unwrap();
        assert_eq!(b.err(), None);
        assert_eq!(children(&b), 0, "the open parent kept the merge's slot");
    });
}

/// The first parent cancels while the merge attaches to the second: the cancel may reach the
/// merge before its second slot is set (then the attach removes its own entry) or after (then
/// the cancel removes it). Either way the open second parent ends up empty.
#[test]
fn first_parent_cancels_while_the_merge_attaches_to_the_second() {
    loom::model(|| {
        let (a, cancel_a) = Ctx::background().with_cancel();
        let (b, _cancel_b) = Ctx::background().with_cancel();
        let t = thread::spawn(move || cancel_a.cancel());
        let (m, h) = a.with_merged(&b);
        t.join().unwrap();
        assert_eq!(m.err(), Some(Error::Canceled));
        assert_eq!(
            children(&b),
            0,
            "a merge canceled during its attach stayed in its second parent"
        );
        h.disarm();
        drop(m);
        assert_eq!((children(&a), children(&b)), (0, 0));
    });
}

/// The second parent cancels while the merge attaches: it is found (and canceled) or it finds
/// the parent done (and is canceled), and the open first parent ends up empty.
#[test]
fn second_parent_cancels_while_the_merge_attaches() {
    loom::model(|| {
        let (a, _cancel_a) = Ctx::background().with_cancel();
        let (b, cancel_b) = Ctx::background().with_cancel();
        let t = thread::spawn(move || cancel_b.cancel());
        let (m, h) = a.with_merged(&b);
        t.join().unwrap();
        assert_eq!(m.err(), Some(Error::Canceled));
        assert_eq!(
            children(&a),
            0,
            "a merge canceled by its second parent stayed in its first"
        );
        assert_eq!(a.err(), None);
        h.disarm();
    });
}

/// The second parent is a wrap whose `done()` is a `Ctx`'s (a relay), resolved while the merge
/// attaches to it: the merge is reached by the relay's resolution or finds the relay done (or
/// resolves it itself, lazily, as `attach` does) — with the custom's own cause either way —
/// and the open first parent ends up empty.
#[test]
fn a_relay_resolved_while_a_merge_attaches_to_it_gives_the_customs_cause() {
    loom::model(|| {
        let why: Cause = Arc::new(std::fmt::Error);
        let (answers_of, answer) = Ctx::background().with_cancel_cause();
        answer.cancel(why.clone());
        let (done_of, cancel) = Ctx::background().with_cancel();
        let wrapped = Ctx::wrap(Mixed { done_of, answers_of });
        let (a, _cancel_a) = Ctx::background().with_cancel();
        let t = thread::spawn(move || cancel.cancel());
        let (m, h) = a.with_merged(&wrapped);
        t.join().unwrap();
        assert_eq!(m.err(), Some(Error::Canceled));
        assert!(Arc::ptr_eq(&m.cause().unwrap(), &why), "not the custom's cause");
        assert_eq!(a.err(), None);
        assert_eq!(
            children(&a),
            0,
            "a merge canceled through a relay stayed in its first parent"
        );
        h.disarm();
    });
}
