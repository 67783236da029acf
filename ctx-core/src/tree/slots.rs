//! The slab operations on a canceler, each under its lock alone (invariant 1): inserting an
//! entry in a node that `lock_for_dependents` said is open, finding one, removing one, and a
//! child leaving its canceler (`leave_canceler`) — both cancelers of a merged node
//! (`take_slot`, `leave_other`, `take_slots`, `leave_all`: invariant 9).

use std::task::Waker;

use super::arc::{Arc, Weak};
use super::node::{CancelNode, Entry, Guarded, Kind, Merge, Node, NodeRef};
use super::word::Slot;

// ===== entries =====

/// Inserts `entry` in a node that `lock_for_dependents` said is open; its slot.
#[inline]
pub(super) fn insert_entry(g: &mut Guarded, entry: Entry) -> Slot {
    Slot::new(g.dependents().entries.insert(entry))
}

/// Inserts a waiter in a node that `lock_for_dependents` said is open; its slot. The first
/// waiter of a node with nothing else stays inline (invariant 23).
#[inline]
pub(super) fn insert_waiter(g: &mut Guarded, waker: Waker) -> Slot {
    Slot::new(g.add_waiter(waker))
}

/// Puts `new` in place of the waiter at `slot`, if it is still there and would not wake the
/// same task; the waker left over (the one replaced, or `new`), to be dropped with no lock held
/// (invariant 5).
#[inline]
pub(super) fn refresh_waiter(g: &mut Guarded, slot: Slot, new: Waker) -> Waker {
    g.refresh_waiter(slot.key(), new)
}

/// Removes the entry at `slot` from an open cancel node (a done one has given its entries away
/// and never reuses their slots: invariant 3), and returns it to be dropped with no lock held.
pub(super) fn remove_entry(c: &CancelNode, slot: Slot) -> Option<Entry> {
    // A done node gave its entries away when it was marked, and gains none (invariant 3): no
    // lock to take (the usual `Done` dropped after its context was canceled).
    if !c.is_open() {
        return None;
    }
    let mut g = c.lock();
    if !c.is_open() {
        return None;
    }
    g.remove_entry(slot.key())
}

/// Removes the waiter at `slot`: from an open node, under its lock; from a done one, from the
/// wakers its cancel woke by reference and left in the node for their `Done`s (invariant 26),
/// with no lock. The waker, to be dropped with no lock held (invariant 5).
#[inline]
pub(super) fn remove_waiter(c: &CancelNode, slot: Slot) -> Option<Entry> {
    if !c.is_open() {
        return c.first.spent()?.take(slot.key()).map(Entry::Waiter);
    }
    remove_entry(c, slot)
}

// ===== leaving =====

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
    if let Some(p) = parent.and_then(NodeRef::source) {
        drop(take_from_source(p, slot)); // a `Weak`, let go of with the lock released (invariant 5)
    }
}

/// `leave_canceler` that gives the `Weak` the canceler kept back, for the caller to let go of
/// with the lock released (invariant 5): a dying node's, to its own drop
/// (`Weak::give_back_dropped`).
#[inline]
pub(super) fn take_from_canceler(parent: Option<&NodeRef>, slot: Option<Slot>) -> Option<Weak<Node>> {
    take_from_source(parent?.source()?, slot?)
}

/// `leave_canceler` of a node that the caller holds (`node`, marked done by it): the `Weak` the
/// canceler kept goes back to `node`, which takes its count over without a write when it is
/// the one `node` was born with (`Weak::give_back`).
#[inline]
pub(super) fn leave_held(node: &Arc<Node>, slot: Option<Slot>) {
    if let Some(slot) = slot {
        give_back_to(node, slot);
    }
}

/// `leave_held` with a slot to remove, kept out of line.
fn give_back_to(node: &Arc<Node>, slot: Slot) {
    if let Some(p) = node.parent().get().and_then(NodeRef::source)
        && let Some(weak) = take_from_source(p, slot)
    {
        weak.give_back(node); // with the lock released (invariant 5)
    }
}

/// `leave_canceler`, given the canceler itself (the parent's source): for a dying node whose
/// parent `teardown.rs` tried to take over (invariant 24) and found shared, a value node or a
/// wrap.
pub(super) fn leave_source(canceler: Option<&Arc<Node>>, slot: Option<Slot>) {
    if let Some(slot) = slot
        && let Some(p) = canceler
    {
        drop(take_from_source(p, slot)); // a `Weak`, let go of with the lock released (invariant 5)
    }
}

/// Removes `slot` from the children of the canceler `p`; the `Weak` it held, for the caller to
/// let go of with the lock released (invariant 5).
#[inline(always)]
fn take_from_source(p: &Arc<Node>, slot: Slot) -> Option<Weak<Node>> {
    let c = p.expect_cancel();
    if slot.first_addr().is_some() {
        // Invariant 25: one compare-exchange, no lock; none if the canceler's cancel closed the
        // word first (it took the `Weak`).
        return c.first.retract(slot);
    }
    // A done canceler has given its children away and never reuses their slots (invariant 3):
    // nothing to remove, no lock to take.
    if !c.is_open() {
        return None;
    }
    let mut g = c.lock();
    if c.is_open() {
        g.remove_child(slot.key())
    } else {
        None
    }
}

/// Takes the second slot of a node being marked done (invariant 9); none for a node that is
/// not merged, or not registered with its second canceler.
#[inline]
pub(super) fn take_slot(c: &CancelNode) -> Option<Slot> {
    c.merge()?.slot.take()
}

/// Removes `slot` (taken by [`take_slot`]) from the children of the second parent's canceler.
/// Call only with every lock released.
#[inline]
pub(super) fn leave_other(c: &CancelNode, slot: Option<Slot>) {
    if slot.is_some()
        && let Some(m) = c.merge()
    {
        leave_canceler(Some(&m.other), slot);
    }
}

/// A merged node met by a cancel walk, and both slots it gave up.
pub(super) struct MergedSlots {
    node: Arc<Node>,
    first: Option<Slot>,
    second: Option<Slot>,
}

/// Both slots of a merged node reached by a cancel walk from one of its cancelers. Called by
/// the walk that has just marked it done (invariants 4 and 9); the walk's own canceler is done
/// already, so leaving it later changes nothing there.
pub(super) fn take_slots(node: &Arc<Node>) -> MergedSlots {
    let c = node.expect_cancel();
    MergedSlots {
        node: node.clone(),
        first: c.slot.take(),
        second: take_slot(c),
    }
}

/// Removes the slots that [`take_slots`] took. Call only with every lock released.
pub(super) fn leave_all(merged: Vec<MergedSlots>) {
    for MergedSlots { node, first, second } in merged {
        leave_held(&node, first);
        leave_other(node.expect_cancel(), second);
    }
}

/// What a dying merged node gives back to its second parent: its slot (removed here), and
/// the parent itself, for the caller to release without recursing. `None` for any other
/// node.
pub(super) fn release_merge(node: &mut Node) -> Option<NodeRef> {
    let Kind::Cancel(c) = &mut node.kind else {
        return None;
    };
    let m = c.timing.boxed_mut()?.merge.take()?;
    // `&mut Node`: nobody else can reach this node; a cancel that took the slot first left
    // `GONE` (invariant 9).
    let slot = m.slot.take();
    let Merge { other, .. } = *m;
    leave_canceler(Some(&other), slot);
    Some(other)
}
