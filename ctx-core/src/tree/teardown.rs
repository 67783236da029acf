//! Dropping a node: what a dying node gives back (its slots in its cancelers, its timer, its
//! feed, a wrap's foreign context) and releasing its parents without recursion (`unlink`,
//! invariant 6). A standalone node (invariant 11) returns at once.
//!
//! A dying child leaves its canceler after it has tried to take its parent over: a parent whose
//! last reference the child held is the child's alone, so its slab (the child's entry in it too)
//! goes with it and its lock is never taken (invariant 24). Dropping an uncanceled chain (Go's
//! `buildContextTree`) takes no lock.

use std::mem;

use super::arc::Arc;
use super::foreign_calls::{drop_foreign, placeholder};
use super::node::{Kind, Node, NodeRef, Taken, ValueNode, count_node};
use super::slots::{leave_source, release_merge, take_from_canceler};
use super::walk::stop_dependents;
use super::word::Slot;

impl Drop for Node {
    fn drop(&mut self) {
        count_node(-1);
        // The usual cancel node, a child of a root nobody waited on: no slot, no fixed part (so
        // no second parent), no dependents part, and a parent that is a root (dropped by the
        // fields' drop, which recurses once at most: a root has no parent).
        if let Kind::Cancel(c) = &self.kind
            && c.has_nothing_to_release()
        {
            return;
        }
        drop_linked(self);
    }
}

/// `Drop for Node` of any node but a standalone one: gives back what it holds, and releases its
/// parents.
#[inline(never)]
fn drop_linked(node: &mut Node) {
    if release(node) {
        return drop_with_slot(node);
    }
    let second = release_merge(node);
    let first = node.take_parent();
    if first.is_some() || second.is_some() {
        unlink(first, second);
    }
}

/// `drop_linked` of a node whose parent looked like its alone: `release` kept its slot, and the
/// parent is taken over before it is left (invariant 24).
#[inline(never)]
fn drop_with_slot(node: &mut Node) {
    let second = release_merge(node);
    let slot = kept_slot(node);
    let first = node.take_parent();
    unlink_chain(first, slot, second);
}

impl Drop for ValueNode {
    #[inline]
    fn drop(&mut self) {
        count_node(-1);
        if let Some(parent) = self.take_parent() {
            unlink(Some(parent), None);
        }
    }
}

/// Releases a dying node's parents (its parent, and the second parent of a merge), and every
/// ancestor whose last reference that was, in a loop (invariant 6): a node whose last
/// reference is the one we hold is detached and emptied here instead of by a recursive drop.
/// The second parents of merged nodes met on the way wait on a stack (on the heap only when a
/// merged node that nobody else holds is met).
#[inline]
fn unlink(first: Option<NodeRef>, second: Option<NodeRef>) {
    // The usual case: one parent, shared with others. Only released (by the return).
    if second.is_none()
        && let Some(p) = &first
        && p.is_shared()
    {
        return;
    }
    unlink_chain(first, None, second);
}

/// `unlink` of a parent that this may be the last reference to, or of two parents; `slot` is
/// the dying node's entry in the canceler of `first`, still to leave (invariant 24). Kept out
/// of line: its loop's frame is large, and the usual case above needs none of it.
#[inline(never)]
fn unlink_chain(first: Option<NodeRef>, slot: Option<Slot>, second: Option<NodeRef>) {
    // Each node to release, with the slot its child below still holds in its canceler (a
    // second parent's was left by `release_merge`).
    let mut next = first.map(|first| (first, slot));
    let mut more: Vec<NodeRef> = Vec::new();
    more.extend(second);
    while let Some((node, slot)) = next.take().or_else(|| more.pop().map(|n| (n, None))) {
        match node {
            NodeRef::Node(arc) => {
                // A shared parent (the usual case) is left and released: skip the unwrap
                // attempt.
                let owned = if Arc::strong_count(&arc) > 1 {
                    Err(arc)
                } else {
                    Arc::try_unwrap(arc)
                };
                match owned {
                    Err(arc) => leave_source(arc.source(), slot),
                    Ok(mut parent) => {
                        // Ours alone (invariant 24): a cancel parent is its own canceler, and
                        // its slab, with the child's entry, goes in `release`; a wrap's canceler
                        // is its bridge, another node, which the child leaves.
                        if let Kind::Wrap(w) = &parent.kind {
                            leave_source(w.source.as_ref(), slot);
                        }
                        let _ = release(&mut parent);
                        more.extend(release_merge(&mut parent));
                        let up = kept_slot(&parent);
                        next = parent.take_parent().map(|p| (p, up));
                        // `parent` drops here with nothing left to give back: its `Drop` returns
                        // at once.
                        if let Kind::Cancel(c) = &mut parent.kind {
                            c.mark_released();
                        }
                    }
                }
            }
            NodeRef::Value(mut arc) => {
                // A value node is not a canceler: the child leaves the one above it first.
                leave_source(arc.source.as_ref(), slot);
                // The only handle: take the parent, and free the node (its `Drop` finds no
                // parent left) as `arc` goes.
                if let Some(parent) = arc.get_mut() {
                    next = parent.take_parent().map(|p| (p, None));
                }
            }
        }
    }
}

/// Everything a dying node gives back: its dependents, its timer, its watcher, and its slot in
/// its canceler — left here when the parent is shared (the usual child of a long-lived parent),
/// else kept in the node for `unlink_chain`, which first tries to take the parent over
/// (invariant 24; `kept_slot`). Idempotent: the loop in `drop` calls it before the node's own
/// `Drop` runs. Whether it kept the slot.
#[inline]
fn release(node: &mut Node) -> bool {
    let Kind::Cancel(c) = &mut node.kind else {
        if let Kind::Wrap(w) = &mut node.kind {
            // The foreign context may hold the next wrap down: drop it on the trampoline, not
            // from inside this drop (invariant 6).
            drop_foreign(mem::replace(&mut w.foreign, placeholder()));
        }
        return false;
    };
    // The usual cancel node: nothing attached, no dependents.
    let busy = c.state.with_mut(|inner| inner.has_dependents());
    if !busy && c.slot.is_none() {
        return false;
    }
    if let Taken::Busy(busy) = c.state.with_mut(|inner| inner.take(None)) {
        drop(stop_dependents(*busy));
    }
    let parent = node.parent().get();
    let slot = &node.expect_cancel().slot;
    if parent.is_none_or(NodeRef::is_shared) {
        // `&mut self`: nobody else can reach this node (invariant 4: its drop owns the slot
        // outright). The `Weak` the canceler kept of us comes back to this drop.
        if let Some(weak) = take_from_canceler(parent, slot.take()) {
            weak.give_back_dropped(node);
        }
        return false;
    }
    !slot.is_none()
}

/// The slot that `release` kept for `unlink_chain`: the dying node's parent looked like its
/// alone (invariant 24).
#[inline]
fn kept_slot(node: &Node) -> Option<Slot> {
    match &node.kind {
        Kind::Cancel(c) => c.slot.take(),
        _ => None,
    }
}
