//! Merged contexts (`Ctx::with_merged`): one cancel node registered under two cancelers.
//!
//! A merged node is an ordinary cancel node whose `parent` is the first parent (`self` of
//! `with_merged`: values, clock and the `Display` chain come from there), plus a [`Merge`]:
//! the second parent and a second slot. It is a child in both parents' cancelers' slabs, so
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
//!
//! The second slot's word is `word.rs`'s (`SecondSlot`); taking and leaving it, `slots.rs`'s.

use super::arc::Arc;
use super::attach::{attach, attach_to};
use super::end::err;
use super::node::{CancelNode, Fixed, Kind, Merge, Node, NodeRef, Owners, Timing};
use super::word::SecondSlot;

/// Builds `a.with_merged(b)` (the node and its handle's owner): born done if either parent is done, else
/// attached under both cancelers.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
pub(crate) fn derive_merged(a: &NodeRef, b: &NodeRef) -> Owners {
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
        c.expect_cancel().outcome()
    };
    let born_done = outcome(a).or_else(|| outcome(b));
    let is_born_done = born_done.is_some();
    let fixed = Fixed {
        deadline,
        merge: Some(Box::new(Merge {
            other: b.clone(),
            slot: SecondSlot::none(),
        })),
        ..Fixed::default()
    };
    let leads = |p: &NodeRef| p.source().is_some_and(|s| s.expect_cancel().leads_to_foreign());
    let under_foreign = !is_born_done && (leads(a) || leads(b)); // invariant 16
    let cancel = CancelNode::new(born_done, false, under_foreign, Timing::new(fixed));
    // invariant 12: `a`'s clock, held through `a` (the node's parent)
    let registers = !is_born_done && a.source().is_some();
    let (node, handle, weak) = Node::new_cancel(Some(a), Kind::Cancel(cancel), registers);
    if !is_born_done {
        // The first parent as for any child (it also expires a deadline that has passed),
        // then the second.
        attach(&node, weak, true);
        attach_other(&node, b);
    }
    (node, handle)
}

/// Registers the merged `node` under the canceler of its second parent `other`, or cancels it
/// with `other`'s answers if `other` is done: `attach` for the second slot.
fn attach_other(node: &Arc<Node>, other: &NodeRef) {
    let c = node.expect_cancel();
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
    attach_to(node, p, Arc::downgrade(node), |slot| m.slot.set_if_none(slot));
}
