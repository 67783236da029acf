//! Merged contexts (`Ctx::with_merged`): one cancel node registered under two cancelers.
//!
//! A merged node is an ordinary cancel node whose `parent` is the first parent (`self` of
//! `with_merged`: values, clock and the `Display` chain come from there), plus a [`Merge`]:
//! the second parent and a second slot. It is a `Child` entry in both parents' cancelers, so
//! the first of them to cancel reaches it through the ordinary walk; no task, no thread.
//!
//! # The second slot (invariant 9)
//!
//! The first slot follows invariant 4: it is set under the first canceler's lock before the
//! node can be reached. The second one cannot be set that way: by the time the node attaches
//! to its second canceler it is already reachable from the first, whose cancel may mark it
//! done at that very moment, and taking the node's own lock there would nest two locks
//! (invariant 1). So the second slot is an atomic with three states:
//!
//! * none: not registered with the second canceler (yet, or ever);
//! * a key: registered, under that key;
//! * `GONE`: taken, by the cancel that marked the node done or by its drop; never set again.
//!
//! The attach sets it with a compare-exchange from none, under the second canceler's lock;
//! if it finds `GONE`, the node was done meanwhile and the attach removes the entry it has just
//! inserted, still under that lock. Every taker swaps in `GONE` and removes the key it got
//! after every lock is released (a canceler that is done has given its slab away, and its slot
//! numbers are never reused: invariant 3). A slot is thus removed exactly once, by the one who
//! took it, and nothing is left in either parent.

use std::sync::Arc;
use std::time::Instant;

use super::attach::{attach, attach_to, leave_canceler};
use super::deadline::{deadline_owner, err};
use super::node::{CancelNode, Cold, Kind, Node, NodeRef, ThinCause};
use super::state::{Outcome, Slot};
use crate::Error;
use crate::loom::{AtomicUsize, Ordering};

/// The second slot's states (see the module doc) as raw words of an `Option<Slot>`: none is
/// `0`, and "taken" is a word no slot comes near.
const NONE: usize = 0;
const GONE: usize = usize::MAX;

/// A raw second slot that is a slot (neither none nor `GONE`).
#[inline]
fn real(raw: usize) -> Option<Slot> {
    if raw == GONE { None } else { Slot::from_raw(raw) }
}

/// What a merged node keeps of its second parent.
pub(super) struct Merge {
    /// The second parent. It is held strongly (as `parent` is) so that its canceler outlives
    /// our entry in it; values are never looked up through it.
    other: NodeRef,
    /// Our slot in the children of `other`'s canceler, raw: none, a slot, or `GONE`.
    slot: AtomicUsize,
}

/// Builds `a.with_merged(b)` (without its handle): born done if either parent is done, else
/// attached under both cancelers.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
pub(crate) fn derive_merged(a: &NodeRef, b: &NodeRef) -> Arc<Node> {
    let deadline = match (a.deadline(), b.deadline()) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    };
    // Born done from a parent that is already done, `a`'s answers first, with no attaching.
    // Both parents are asked before anything is attached: a parent's answers win over a
    // deadline (as for any child), and the deadline may come from either side. `err` is what
    // any observer calls: it expires a deadline that has passed unobserved, and checks a
    // wrap's bridge lazily, as `attach` does (user code: no lock is held).
    let outcome = |p: &NodeRef| {
        let c = p.source()?;
        err(c)?;
        c.cancel_node().outcome()
    };
    let born_done = outcome(a).or_else(|| outcome(b));
    let is_born_done = born_done.is_some();
    let cold = Cold {
        deadline,
        merge: Some(Box::new(Merge {
            other: b.clone(),
            slot: AtomicUsize::new(NONE),
        })),
        ..Cold::default()
    };
    let leads = |p: &NodeRef| p.source().is_some_and(|s| s.cancel_node().leads_to_foreign());
    let under_foreign = !is_born_done && (leads(a) || leads(b)); // invariant 16
    let cancel = CancelNode::new(born_done, false, under_foreign, Some(Box::new(cold)));
    // invariant 12: `a`'s clock, held through `a` (the node's parent)
    let node = Node::new(Some(a), Kind::Cancel(cancel));
    if !is_born_done {
        // The first parent as for any child (it also expires a deadline that has passed),
        // then the second.
        attach(&node, true);
        attach_other(&node, b);
    }
    node
}

/// Registers the merged `node` under the canceler of its second parent `other`, or cancels it
/// with `other`'s answers if `other` is done: `attach` for the second slot.
fn attach_other(node: &Arc<Node>, other: &NodeRef) {
    let c = node.cancel_node();
    if !c.is_open() {
        return;
    }
    let Some(p) = other.source() else {
        return; // never done: nothing to register with (behaves like `with_cancel`)
    };
    // Both parents under one canceler (`a.with_merged(&a)`, `a.with_merged(&a.with_value(..))`):
    // the first registration is enough.
    let first = node.parent().get().and_then(NodeRef::source);
    if first.is_some_and(|f| Arc::ptr_eq(f, p)) {
        return;
    }
    let m = c
        .merge()
        .expect("ctx-core: internal error: merged node without its second parent");
    // invariant 9: set only from none; `GONE` means the node was done (or is being
    // dropped) meanwhile, and nobody will remove this entry but us (`attach_to` does, still
    // under the canceler's lock).
    attach_to(node, p, |slot| {
        m.slot
            .compare_exchange(
                NONE,
                Slot::into_raw(Some(slot)),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    });
}

/// Takes the second slot of a node being marked done (invariant 9); none for a node that is
/// not merged, or not registered with its second canceler.
#[inline]
pub(super) fn take_slot(c: &CancelNode) -> Option<Slot> {
    real(c.merge()?.slot.swap(GONE, Ordering::AcqRel))
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
pub(super) struct Left(Arc<Node>, Option<Slot>, Option<Slot>);

/// Both slots of a merged node reached by a cancel walk from one of its cancelers. Called by
/// the walk that has just marked it done (invariants 4 and 9); the walk's own canceler is done
/// already, so leaving it later changes nothing there.
pub(super) fn take_slots(node: &Arc<Node>) -> Left {
    let c = node.cancel_node();
    Left(node.clone(), c.slot.take(), take_slot(c))
}

/// Removes the slots that [`take_slots`] took. Call only with every lock released.
pub(super) fn leave_all(merged: Vec<Left>) {
    for Left(node, first, second) in merged {
        leave_canceler(node.parent().get(), first);
        leave_other(node.cancel_node(), second);
    }
}

/// What a cancel walk gives a merged node it reaches: `err` and `cause` from the canceler it came
/// through — unless the node's deadline, which may come from its *other* parent, has passed
/// already. Then the owner of that deadline would have been first (its timer would have
/// fired), so the node is `DeadlineExceeded` with the owner's cause, as a node whose own
/// deadline has passed is in the walk. Other nodes: unchanged.
///
/// `now` is the walk's one reading of the clock, taken before it changed anything (invariant 8
/// of `tree/mod.rs`): no user code runs here. It is the clock of the tree the cancel came from,
/// so a deadline owned in the other tree of a merge on another clock is left to that tree
/// (invariant 15).
#[inline]
pub(super) fn deadline_first(
    node: &Arc<Node>,
    now: Instant,
    err: Error,
    cause: Option<ThinCause>,
) -> Outcome {
    let c = node.cancel_node();
    let Some(d) = node.deadline().filter(|_| c.merge().is_some()) else {
        return Outcome { err, cause };
    };
    if now < d {
        return Outcome { err, cause };
    }
    // The owner, found as `expire` finds it; none above (a foreign deadline): no cause.
    let owner = deadline_owner(node, d);
    // Invariant 15: `now` is this tree's clock. An owner on another clock (the other tree of a
    // merge) is judged only on its own, which the walk may not read (invariant 8): its own
    // timer or lazy check will say when it passes. Until then the canceler's answer stands.
    if owner.is_some_and(|o| !o.clock().same(node.clock())) {
        return Outcome { err, cause };
    }
    let cause = owner.and_then(|o| o.cancel_node().deadline_cause());
    Outcome {
        err: Error::DeadlineExceeded,
        cause,
    }
}

/// The next cancel node above `cur` whose effective deadline is `d`: through the first parent,
/// else (for a merged node) through the second. Used to find the owner of a deadline.
#[inline]
pub(super) fn up(cur: &Arc<Node>, d: Instant) -> Option<&Arc<Node>> {
    fn via(p: Option<&NodeRef>, d: Instant) -> Option<&Arc<Node>> {
        p.and_then(NodeRef::source).filter(|n| n.deadline() == Some(d))
    }
    via(cur.parent().get(), d).or_else(|| via(cur.cancel_node().merged_with(), d))
}

impl CancelNode {
    /// The second parent of a merged node (for `Display`).
    pub(crate) fn merged_with(&self) -> Option<&NodeRef> {
        self.merge().map(|m| &m.other)
    }
}

impl Node {
    /// What a dying merged node gives back to its second parent: its slot (removed here), and
    /// the parent itself, for the caller to release without recursing. `None` for any other
    /// node.
    pub(super) fn release_merge(&mut self) -> Option<NodeRef> {
        let Kind::Cancel(c) = &mut self.kind else {
            return None;
        };
        let m = c.cold.as_mut()?.merge.take()?;
        // `&mut self`: nobody else can reach this node; a cancel that took the slot first left
        // `GONE` (invariant 9).
        let slot = real(m.slot.swap(GONE, Ordering::AcqRel));
        let Merge { other, .. } = *m;
        leave_canceler(Some(&other), slot);
        Some(other)
    }
}
