//! A node's first plain child lives in its first-child word, outside the lock (invariant 25 of
//! `tree`): it attaches and leaves without the node's lock, a second child registers under it,
//! and whoever cancels the node takes the child from the word and cancels it.

use std::sync::Arc;

use crate::clock::SystemClock;
use crate::loom::locks_taken;
use crate::tree::{child_count, has_dependents_part, has_first_in_word};
use crate::{Ctx, Error, HandleDropped};

fn in_word(ctx: &Ctx) -> bool {
    has_first_in_word(&ctx.node)
}

fn children(ctx: &Ctx) -> usize {
    child_count(&ctx.node)
}

#[test]
fn a_plain_child_attaches_and_leaves_without_the_lock() {
    let (parent, _cancel) = Ctx::background().with_cancel();
    for _ in 0..3 {
        let before = locks_taken();
        let (child, h) = parent.with_cancel();
        assert_eq!(locks_taken(), before, "no lock taken to attach");
        assert!(in_word(&parent), "the first child is in the word");
        assert_eq!(children(&parent), 1);
        assert!(!has_dependents_part(&parent.node));
        let before = locks_taken();
        drop((child, h)); // the last handle cancels it; it leaves the word
        assert_eq!(locks_taken(), before, "no lock taken to cancel or leave");
        assert!(!in_word(&parent));
        assert_eq!(children(&parent), 0);
    }
}

#[test]
fn a_child_of_a_value_and_a_clock_root_takes_the_word_too() {
    let root = Ctx::background_with_clock(Arc::new(SystemClock::default()));
    let (parent, _cancel) = root.with_cancel();
    let (child, h) = parent.with_value(7u32).with_cancel();
    assert!(in_word(&parent));
    drop((child, h));
    assert_eq!(children(&parent), 0, "its canceled drop left the word");
}

#[test]
fn a_second_child_registers_under_the_lock_and_both_are_canceled() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (first, _f) = parent.with_cancel();
    let (second, _s) = parent.with_cancel();
    assert!(in_word(&parent));
    assert_eq!(children(&parent), 2);
    cancel.cancel();
    assert_eq!(first.err(), Some(Error::Canceled));
    assert_eq!(second.err(), Some(Error::Canceled));
    // The word is closed: a child made now is born done and attaches nowhere.
    let (late, _l) = parent.with_cancel();
    assert_eq!(late.err(), Some(Error::Canceled));
    assert!(!in_word(&parent));
}

#[test]
fn the_child_in_the_word_inherits_the_cause() {
    // A cancel with a cause (under the lock).
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (child, _h) = parent.with_cancel();
    assert!(in_word(&parent));
    cancel.cancel(std::fmt::Error);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(child.cause().unwrap().is::<std::fmt::Error>());
    // The drop of the parent's last handle (lock-free, `HandleDropped`).
    let (parent, cancel) = Ctx::background().with_cancel();
    let (child, _h) = parent.with_cancel();
    drop(cancel);
    assert_eq!(child.err(), Some(Error::Canceled));
    assert!(child.cause().unwrap().downcast_ref::<HandleDropped>().is_some());
    // A chain: each level's child is in its parent's word; all of it is canceled.
    let (root, cancel) = Ctx::background().with_cancel();
    let mut chain = vec![root.clone()];
    for _ in 0..1000 {
        let (c, h) = chain.last().unwrap().with_cancel();
        h.disarm();
        chain.push(c);
    }
    assert!(chain[..1000].iter().all(in_word));
    cancel.cancel();
    assert!(chain.iter().all(|c| c.err() == Some(Error::Canceled)));
}

#[test]
fn a_child_made_below_a_done_parent_is_born_done() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (_first, _f) = parent.with_cancel(); // `HAS_FIRST` set
    drop((_first, _f));
    cancel.cancel();
    let (child, _h) = parent.with_cancel();
    assert_eq!(child.err(), Some(Error::Canceled));
    assert_eq!(children(&parent), 0);
}

/// Children made on one thread while another cancels their parent: every child is done once
/// both are, whichever went first, and none is left in the parent.
#[test]
fn children_racing_their_parents_cancel_all_end_done() {
    let rounds = if cfg!(miri) { 20 } else { 2_000 };
    for _ in 0..rounds {
        let (parent, cancel) = Ctx::background().with_cancel();
        let p = parent.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let made = (0..4)
                .map(|_| {
                    let (c, h) = p.with_cancel();
                    h.disarm();
                    c
                })
                .collect::<Vec<_>>();
            let _ = tx.send(made);
        });
        cancel.cancel();
        // A watchdog: a child stuck on its parent's lock fails the test instead of hanging it.
        let made = rx
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("making children never finished");
        assert!(made.iter().all(|c| c.err() == Some(Error::Canceled)));
        assert_eq!(children(&parent), 0);
    }
}
