//! Attaching a new cancel node to its parent's canceler (`attach`, `attach_to`): registered as
//! a child under the canceler's lock, or, if the canceler is done, born done with its outcome
//! (a grace node starting its period instead, invariant 19).

use super::arc::{Arc, Weak};
use super::end::{check_deadline, poll_bridge, propagate, start_grace};
use super::foreign_calls::bridge_outcome;
use super::node::{Node, NodeRef};
use super::state::Outcome;
use super::word::Slot;

/// Links a new cancel node under its parent's canceler, or makes it born done. Then checks its
/// deadline, if `check_deadline` (the caller may know that it lies ahead). Called once, right
/// after `Node::new`, before the node is shared. `weak`, if given, is the node's `Weak` for
/// the canceler's children, counted at birth (`Node::new_cancel`); else one is made here.
pub(crate) fn attach(node: &Arc<Node>, weak: Option<Weak<Node>>, check_deadline: bool) {
    if let Some(p) = node.parent().get().and_then(NodeRef::source) {
        // A foreign parent is done for its children when its `done()` fires (Go's rule), which
        // its bridge (the canceler here) follows; one whose `done()` never fires has no
        // canceler. It is not asked otherwise: in a chain of wraps that would go through every
        // foreign in it. (A child of the process-wide root has nothing to attach to.)
        let slot = &node.expect_cancel().slot;
        // invariant 4: set under the parent's lock, which a cancel reaching the child needs
        let weak = weak.unwrap_or_else(|| Arc::downgrade(node));
        let attached = attach_to(node, p, weak, |s| {
            slot.set(s);
            true
        });
        if !attached {
            return;
        }
    }
    if check_deadline {
        self::check_deadline(node);
    }
}

/// Registers `node` (by `weak`, a `Weak` of it) as a child of the canceler `p` (`attach`, and
/// the second parent of a merged node), or, if `p` is done, cancels `node` with `p`'s answers.
/// `set_slot` records the slot under `p`'s lock; if it returns `false` the node does not want it
/// any more (invariant 9) and the entry is removed again, still under the lock. Returns `false`
/// if `p` was done.
pub(super) fn attach_to(
    node: &Arc<Node>,
    p: &Arc<Node>,
    weak: Weak<Node>,
    set_slot: impl FnOnce(Slot) -> bool,
) -> bool {
    // A bridge is checked lazily (it may lag behind the foreign context it answers for): if
    // the foreign context says it is done, the bridge is canceled now and the child born done.
    let pc = p.expect_cancel();
    if let Some(b) = pc.bridge()
        && pc.is_open()
    {
        poll_bridge(p, b);
    }
    register(node, p, weak, set_slot)
}

/// `attach_to` of a child of an open plain parent (`derive.rs`, `derive_plain`): `p` is the
/// parent itself, with no bridge to poll first; the slot is the child's own (invariant 4).
#[inline]
pub(super) fn attach_plain(node: &Arc<Node>, p: &Arc<Node>, weak: Weak<Node>) {
    let slot = &node.expect_cancel().slot;
    let pc = p.expect_cancel();
    // Invariant 25: the first plain child goes into its canceler's first-child word, with one
    // compare-exchange and no lock (two the first time, which sets `HAS_FIRST`). If the canceler
    // is done meanwhile, whoever marked it takes the child from the word and cancels it; once
    // it has, the word is closed and the child registers below, which finds it done.
    let weak = if pc.open_for_first() {
        match pc.first.publish(weak, |s| slot.set(s)) {
            Ok(()) => return,
            Err(weak) => weak, // another child is there, or the word is closed
        }
    } else {
        weak
    };
    register(node, p, weak, |s| {
        slot.set(s);
        true
    });
}

/// `attach_to` once the bridge, if any, was polled: registers `node` under `p`'s lock, or makes
/// it born done. Inlined in both callers, so that `attach_plain`'s `set_slot`, which always
/// keeps the slot, leaves no code for an unwanted entry.
#[inline(always)]
fn register(node: &Arc<Node>, p: &Arc<Node>, weak: Weak<Node>, set_slot: impl FnOnce(Slot) -> bool) -> bool {
    let pc = p.expect_cancel();
    // invariants 3 and 10: the lock taken with `HAS_DEPENDENTS` set if the canceler is open (in
    // one change of its word), so a done canceler never gains this child
    let (mut pg, open) = pc.lock_for_dependents();
    if open {
        let key = pg.add_child(weak);
        let unwanted = if set_slot(Slot::new(key)) {
            None
        } else {
            pg.remove_child(key)
        };
        drop(pg);
        drop(unwanted); // a `Weak`, let go of with the lock released (invariant 5)
        true
    } else {
        drop(pg);
        drop(weak);
        born_done(node, p);
        false
    }
}

/// A new node whose canceler `p` was found done under its lock: canceled with `p`'s answers
/// (a relay's foreign context's, a grace node's period started instead).
#[cold]
fn born_done(node: &Arc<Node>, p: &Arc<Node>) {
    // invariant 2: state is final, cause published with it
    let outcome = p
        .expect_cancel()
        .outcome()
        .expect("ctx-core: internal error: done without error");
    // A relay born under a done parent takes its foreign context's answers instead.
    let Outcome { err, cause } = bridge_outcome(node).unwrap_or(outcome);
    if node.expect_cancel().is_grace() {
        // Invariant 19: a grace node born under a done parent starts its period now.
        if let Some(Outcome { err, cause }) = start_grace(node, err, cause, true) {
            propagate(node, err, cause);
        }
    } else {
        propagate(node, err, cause);
    }
}
