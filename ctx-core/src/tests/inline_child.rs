//! A node's first child under its lock is kept inline until anything else depends on the node
//! (invariant 22 of `tree`); the child keeps key 0 when it moves into the dependents part, so
//! its detach and the cancel walk find it wherever it lives. (A first plain child goes to the
//! node's first-child word instead, invariant 25: these tests fill that word first, with
//! `occupy`, so that the children they make register under the lock.)

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::tree::{child_count, has_dependents_part, has_first_in_word};
use crate::{CancelHandle, Ctx, Error};

/// The children of `ctx` under its lock (not the one in its first-child word).
fn children(ctx: &Ctx) -> usize {
    child_count(&ctx.node) - usize::from(has_first_in_word(&ctx.node))
}

fn inline(ctx: &Ctx) -> bool {
    children(ctx) == 1 && !has_dependents_part(&ctx.node)
}

/// A child of `parent` in its first-child word (invariant 25), to keep there.
fn occupy(parent: &Ctx) -> (Ctx, CancelHandle) {
    let occupier = parent.with_cancel();
    assert!(has_first_in_word(&parent.node));
    occupier
}

#[test]
fn inline_first_child_needs_no_dependents_part_and_leaves_none_behind() {
    let (parent, _cancel) = Ctx::background().with_cancel();
    let _occupier = occupy(&parent);
    for _ in 0..3 {
        let (child, h) = parent.with_cancel();
        assert!(inline(&parent), "one child, kept inline");
        drop((child, h));
        assert_eq!(children(&parent), 0);
        assert!(!has_dependents_part(&parent.node), "nothing was allocated");
    }
}

#[test]
fn inline_first_child_moves_to_key_0_when_a_second_comes_and_detaches_from_there() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let _occupier = occupy(&parent);
    let (first, first_cancel) = parent.with_cancel();
    let (second, second_cancel) = parent.with_cancel();
    assert!(has_dependents_part(&parent.node));
    assert_eq!(children(&parent), 2);
    // The first child's detach finds it in the slab, at the key it recorded inline.
    drop((first, first_cancel));
    assert_eq!(children(&parent), 1);
    let (third, _third_cancel) = parent.with_cancel(); // takes key 0 again
    assert_eq!(children(&parent), 2);
    cancel.cancel();
    assert_eq!(second.err(), Some(Error::Canceled));
    assert_eq!(third.err(), Some(Error::Canceled));
    drop((second, second_cancel));
}

#[test]
fn inline_first_child_moves_when_a_waiter_or_an_after_func_comes() {
    for with_after in [false, true] {
        let (parent, cancel) = Ctx::background().with_cancel();
        let _occupier = occupy(&parent);
        let (child, _child_cancel) = parent.with_cancel();
        let mut done = pin!(parent.done());
        let stop = if with_after {
            Some(parent.after_func(|| {}))
        } else {
            assert!(
                done.as_mut()
                    .poll(&mut Context::from_waker(Waker::noop()))
                    .is_pending(),
                "a waiter registered"
            );
            None
        };
        assert!(
            has_dependents_part(&parent.node),
            "the waiter or after-func needs the part"
        );
        assert_eq!(children(&parent), 1, "the child moved along");
        cancel.cancel();
        assert_eq!(
            child.err(),
            Some(Error::Canceled),
            "the walk found the moved child"
        );
        assert_eq!(
            done.as_mut().poll(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Error::Canceled)
        );
        drop(stop);
    }
}

#[test]
fn inline_first_child_is_canceled_by_its_parents_cancel_with_its_cause() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (child, _h) = parent.with_cancel();
    let (grandchild, _g) = child.with_timeout(std::time::Duration::from_secs(3600));
    // The child in its parent's word; the grandchild (a deadline: the general path) inline.
    assert!(has_first_in_word(&parent.node) && inline(&child));
    cancel.cancel(std::io::Error::other("stop"));
    for ctx in [&parent, &child, &grandchild] {
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert_eq!(ctx.cause().expect("a cause").to_string(), "stop");
    }
    assert_eq!(child_count(&parent.node), 0, "a done node holds no children");
}

#[test]
fn a_million_deep_chain_of_inline_children_cancels_and_drops() {
    let (root, cancel) = Ctx::background().with_cancel();
    let mut leaf = root.clone();
    let mut handles = Vec::with_capacity(1_000_000);
    let depth = if cfg!(miri) { 100 } else { 1_000_000 };
    for _ in 0..depth {
        let (next, h) = leaf.with_cancel();
        handles.push(h);
        leaf = next;
    }
    cancel.cancel();
    assert_eq!(leaf.err(), Some(Error::Canceled));
    drop(handles);
    drop(leaf); // the chain's drop does not recurse either
}

/// A cancel child of a value (or of values) below a plain open parent registers with that
/// parent directly (`derive.rs`, `plain_canceler`): counted among its children, canceled with
/// its cause, and gone from them when dropped; below a done parent it is born done.
#[test]
fn a_child_of_a_value_of_a_plain_parent_registers_with_the_parent() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let request = parent.with_value(7u64).with_value("id");
    let (kept, _kept_cancel) = request.with_cancel();
    let (dropped, dropped_cancel) = request.with_cancel();
    assert_eq!(child_count(&parent.node), 2);
    assert_eq!(kept.value::<u64>(), Some(&7));
    assert_eq!(kept.value::<&str>(), Some(&"id"));
    drop((dropped, dropped_cancel));
    assert_eq!(
        child_count(&parent.node),
        1,
        "a dropped child leaves its canceler"
    );

    cancel.cancel(std::io::Error::other("why"));
    assert_eq!(kept.err(), Some(Error::Canceled));
    assert!(kept.cause().unwrap().downcast_ref::<std::io::Error>().is_some());
    let (late, _late_cancel) = request.with_cancel();
    assert_eq!(late.err(), Some(Error::Canceled), "born done below a done parent");
    assert!(late.cause().unwrap().downcast_ref::<std::io::Error>().is_some());
    assert_eq!(child_count(&parent.node), 0);
}
