//! Dropping a node: what a dying node gives back (its slots in its cancelers, its timer, its
//! feed, a wrap's foreign context) and releasing its parents without recursion (`unlink`,
//! invariant 6). A standalone node (invariant 11) returns at once.

use std::mem;

use super::arc::Arc;
use super::foreign_calls::{drop_foreign, placeholder};
use super::node::{Dependents, Kind, Node, NodeRef, Taken, ValueNode, count_node};
use super::slots::{leave_canceler, release_merge};
use crate::loom::with_mut;

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
    release(node);
    let second = release_merge(node);
    let first = node.take_parent();
    if first.is_some() || second.is_some() {
        unlink(first, second);
    }
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
    unlink_chain(first, second);
}

/// `unlink` of a parent that this may be the last reference to, or of two parents. Kept out
/// of line: its loop's frame is large, and the usual case above needs none of it.
#[inline(never)]
fn unlink_chain(first: Option<NodeRef>, second: Option<NodeRef>) {
    let mut next = first;
    let mut more: Vec<NodeRef> = Vec::new();
    more.extend(second);
    while let Some(node) = next.take().or_else(|| more.pop()) {
        match node {
            NodeRef::Node(arc) => {
                // A shared parent (the usual case) is only released: skip the unwrap attempt.
                if Arc::strong_count(&arc) > 1 {
                    continue;
                }
                if let Ok(mut parent) = Arc::try_unwrap(arc) {
                    release(&mut parent);
                    more.extend(release_merge(&mut parent));
                    next = parent.take_parent();
                    // `parent` drops here with nothing left to give back: its `Drop` returns at
                    // once.
                    if let Kind::Cancel(c) = &parent.kind {
                        c.mark_released();
                    }
                }
            }
            NodeRef::Value(mut arc) => {
                // The only handle: take the parent, and free the node (its `Drop` finds no
                // parent left) as `arc` goes.
                if let Some(parent) = arc.get_mut() {
                    next = parent.take_parent();
                }
            }
        }
    }
}

/// Everything a dying node gives back: its slot in the canceler, its timer, its watcher.
/// Idempotent: the loop in `drop` calls it before the node's own `Drop` runs.
#[inline]
fn release(node: &mut Node) {
    if let Kind::Cancel(c) = &mut node.kind {
        // The usual cancel node: nothing attached, no dependents.
        let busy = with_mut(&mut c.inner, |inner| inner.has_dependents());
        if !busy && c.slot.is_none() {
            return;
        }
        // `&mut self`: nobody else can reach this node (invariant 4: its drop owns the
        // slot outright).
        let slot = c.slot.take();
        if let Taken::Busy(busy) = with_mut(&mut c.inner, |inner| inner.take(None)) {
            let Dependents {
                children,
                timer,
                feed,
                ..
            } = *busy;
            children.release();
            if let Some(watch) = timer {
                watch.cancel();
            }
            if let Some(feed) = feed {
                feed.cancel();
            }
        }
        leave_canceler(node.parent().get(), slot);
    }
    if let Kind::Wrap(w) = &mut node.kind {
        // The foreign context may hold the next wrap down: drop it on the trampoline, not
        // from inside this drop (invariant 6).
        drop_foreign(mem::replace(&mut w.foreign, placeholder()));
    }
}
