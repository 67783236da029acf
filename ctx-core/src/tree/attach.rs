//! Attaching a cancel node to its parent's canceler (`attach`, `attach_to`), leaving it
//! (`leave_canceler`), and the entry helpers both use.

use std::sync::Arc;

use super::cancel::propagate;
use super::deadline::check_deadline;
use super::entries::Entries;
use super::foreign::{bridge_outcome, poll_bridge};
use super::moving;
use super::node::{CancelNode, Entry, Locked, Node, NodeRef};
use super::state::{Outcome, Slot};
use crate::loom::lock;

// ===== attaching =====

/// Links a new cancel node under its parent's canceler, or makes it born done. Then checks its
/// deadline, if `check_deadline` (the caller may know that it lies ahead). Called once, right
/// after `Node::new`, before the node is shared.
pub(crate) fn attach(node: &Arc<Node>, check_deadline: bool) {
    if let Some(p) = node.parent().get().and_then(NodeRef::source) {
        // A custom parent is done for its children when its `done()` fires (Go's rule), which
        // its bridge (the canceler here) follows; one whose `done()` never fires has no
        // canceler. It is not asked otherwise: in a chain of wraps that would go through every
        // custom in it. (A child of the process-wide root has nothing to attach to.)
        let slot = &node.cancel_node().slot;
        // invariant 4: set under the parent's lock, which a cancel reaching the child needs
        let attached = attach_to(node, p, |s| {
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

/// Registers `node` as a child of the canceler `p` (`attach`, and the second parent of a
/// merged node), or, if `p` is done, cancels `node` with `p`'s answers. `set_slot` records the
/// slot under `p`'s lock; if it returns `false` the node does not want it any more (invariant
/// 9) and the entry is removed again, still under the lock. Returns `false` if `p` was done.
pub(super) fn attach_to(node: &Arc<Node>, p: &Arc<Node>, set_slot: impl FnOnce(Slot) -> bool) -> bool {
    // A bridge is checked lazily (it may lag behind the custom context it answers for): if
    // the custom says it is done, the bridge is canceled now and the child born done.
    let pc = p.cancel_node();
    if let Some(b) = pc.bridge()
        && pc.is_open()
    {
        poll_bridge(p, b);
    }
    let mut pg = lock(&pc.inner);
    // invariants 3 and 10: claimed under the lock, so a done canceler never gains this child
    if pc.claim() {
        let entries = &mut pg.busy().entries;
        let key = entries.insert(Entry::Child(Arc::downgrade(node)));
        if !set_slot(Slot::new(key)) {
            entries.try_remove(key);
        }
        drop(pg);
        true
    } else {
        drop(pg);
        // invariant 2: state is final, cause published with it
        let outcome = pc
            .outcome()
            .expect("ctx-core: internal error: done without error");
        // A relay born under a done parent takes its custom context's answers instead.
        let Outcome { err, cause } = bridge_outcome(node).unwrap_or(outcome);
        if moving::is_grace(node.cancel_node()) {
            // Invariant 19: a grace node born under a done parent starts its period now.
            if let Some(Outcome { err, cause }) = moving::start_grace(node, err, cause, true) {
                propagate(node, err, cause);
            }
        } else {
            propagate(node, err, cause);
        }
        false
    }
}

/// Removes `slot` (taken from a child by whoever marked it done, or by its drop: invariant 4)
/// from the children of `parent`'s canceler. A slab left empty gives its memory back, so a
/// parent that once had a million children returns to its original footprint.
#[inline]
pub(super) fn leave_canceler(parent: Option<&NodeRef>, slot: Option<Slot>) {
    if let Some(slot) = slot {
        remove_from_canceler(parent, slot);
    }
}

/// `leave_canceler` with a slot to remove, kept out of line.
fn remove_from_canceler(parent: Option<&NodeRef>, slot: Slot) {
    let Some(p) = parent.and_then(NodeRef::source) else {
        return;
    };
    remove_entry(p.cancel_node(), slot);
}

/// Removes the entry at `slot` from an open cancel node (a done one has given its entries away
/// and never reuses their slots: invariant 3), and returns it to be dropped with no lock held.
pub(super) fn remove_entry(c: &CancelNode, slot: Slot) -> Option<Entry> {
    let mut g = lock(&c.inner);
    if !c.is_open() {
        return None;
    }
    let busy = g.busy.as_mut()?;
    let entry = busy.entries.try_remove(slot.key());
    if busy.entries.is_empty() && busy.entries.capacity() > 64 {
        busy.entries = Entries::default();
    }
    entry
}

/// Inserts `entry` in a node that `claim` said is open; its slot.
#[inline]
pub(super) fn insert_entry(g: &mut Locked, entry: Entry) -> Slot {
    Slot::new(g.busy().entries.insert(entry))
}

/// The entry at `slot`, if it is still there.
#[inline]
pub(super) fn entry_mut(g: &mut Locked, slot: Slot) -> Option<&mut Entry> {
    g.busy.as_mut()?.entries.get_mut(slot.key())
}
