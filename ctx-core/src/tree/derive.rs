//! Building nodes: the roots and the children the handle's `with_*` methods derive.
//!
//! The handle ([`Ctx`](crate::Ctx)) never matches on a node's [`Kind`]: it calls these.

use std::any::Any;
use std::time::Instant;

use super::arc::Arc;
use super::attach::{attach, attach_plain};
use super::node::{Born, CancelNode, Fixed, Kind, Node, NodeRef, Owners, Parent, Timing, ValueNode};
use super::state::Outcome;
use crate::clock::SharedClock;
use crate::{Cause, Clock};

/// A root whose time and timers come from `clock`: Background, or TODO if `todo`.
pub(crate) fn root_with_clock(clock: std::sync::Arc<dyn Clock>, todo: bool) -> Arc<Node> {
    Node::owning(
        Parent::None,
        SharedClock::new(clock),
        Kind::Root {
            todo,
            is_static: false,
        },
    )
}

/// A child of `parent` carrying `value`, keyed by its type.
pub(crate) fn derive_value<T: Any + Send + Sync>(parent: &NodeRef, value: T) -> NodeRef {
    NodeRef::Value(ValueNode::new(parent, value))
}

/// A child of `parent` that keeps its values but is never canceled and has no deadline.
pub(crate) fn derive_without_cancel(parent: &NodeRef) -> Arc<Node> {
    Node::new(Some(parent), Kind::WithoutCancel)
}

/// A cancel child of `parent`, with a deadline of its own if `own_deadline` (the earlier of it
/// and the parent's wins); `shown_as_deadline` names it `.WithDeadline` rather than `.WithCancel`.
/// `read_at`: when the caller last read the clock, if it did (`with_timeout`): a deadline later
/// than that is not compared with the clock again.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
pub(crate) fn derive_cancel(
    parent: &NodeRef,
    own_deadline: Option<Instant>,
    cause: Option<Cause>,
    shown_as_deadline: bool,
    read_at: Option<Instant>,
) -> Owners {
    // Fast paths for a child of a root (`STANDALONE`, invariant 11): nothing above it has a
    // deadline or can be done, and there is nothing to attach to, so the node is built open in
    // a few stores.
    if let NodeRef::Node(n) = parent
        && let Kind::Root { todo, is_static, .. } = n.kind
    {
        match own_deadline {
            // No deadline of its own (a `cause` comes only with one).
            None => {
                return standalone_of_root(parent, todo, is_static, shown_as_deadline, Timing::None);
            }
            // A deadline the caller's clock reading shows ahead (`with_timeout*`): nothing to
            // check now; with no cause, kept inline (one allocation).
            Some(d) if read_at.is_some_and(|t| d > t) => {
                let timing = match cause {
                    None => Timing::Own(d),
                    Some(cause) => Timing::Boxed(Box::new(Fixed {
                        deadline: Some(d),
                        own_deadline: Some(d),
                        deadline_cause: Some(Arc::new(cause)),
                        ..Fixed::default()
                    })),
                };
                return standalone_of_root(parent, todo, is_static, shown_as_deadline, timing);
            }
            Some(_) => {}
        }
    }
    derive_cancel_general(parent, own_deadline, cause, shown_as_deadline, read_at)
}

/// `derive_cancel` of a `with_timeout` child (a deadline of its own, no cause) that the
/// caller's clock reading (`read_at`) shows ahead, when `parent` is a root: the fast path above,
/// asked first, before anything of the parent's deadline is looked at (a root has none). `None`
/// for any other parent or deadline.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
pub(crate) fn derive_timeout_of_root(
    parent: &NodeRef,
    deadline: Instant,
    read_at: Instant,
) -> Option<Owners> {
    match parent {
        NodeRef::Node(n) if deadline > read_at => match n.kind {
            Kind::Root { todo, is_static } => Some(standalone_of_root(
                parent,
                todo,
                is_static,
                true,
                Timing::Own(deadline),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// A standalone node (invariant 11) below the root `parent`, with the deadline of its own that
/// `timing` holds, if any.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
fn standalone_of_root(
    parent: &NodeRef,
    todo: bool,
    is_static: bool,
    shown_as_deadline: bool,
    timing: Timing,
) -> Owners {
    let held = match (is_static, todo) {
        (true, false) => Parent::Background,
        (true, true) => Parent::Todo,
        (false, _) => Parent::Node(parent.clone()),
    };
    Node::with_parent(
        held,
        Kind::Cancel(CancelNode::new_standalone(shown_as_deadline, timing)),
    )
}

/// `derive_cancel` of a child with no deadline of its own below `p` (`parent` itself, or the
/// canceler of a value `parent`), an open cancel node with no deadline and no bridge, moving
/// deadline or foreign context above it (`is_plain_open`):
/// what `derive_cancel_general` would find, without looking. If `p` is done by the time the
/// child registers, `attach_plain` makes the child born done.
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
fn derive_plain(parent: &NodeRef, p: &Arc<Node>, shown_as_deadline: bool) -> Owners {
    let cancel = CancelNode::new(None, shown_as_deadline, false, Timing::None);
    let (node, handle, weak) = Node::new_registered(Some(parent), Kind::Cancel(cancel));
    attach_plain(&node, p, weak);
    (node, handle)
}

/// The canceler of `parent` if it is `parent` itself or the source of a value `parent` (values
/// add no deadline and cancel nothing) and is plain and open (`is_plain_open`). Not through a
/// wrap, whose foreign context answers for itself (`attach`).
#[inline(always)]
fn plain_canceler(parent: &NodeRef) -> Option<&Arc<Node>> {
    let (p, c) = match parent {
        NodeRef::Node(n) => match &n.kind {
            Kind::Cancel(c) => (n, c),
            _ => return None,
        },
        NodeRef::Value(v) => {
            let s = v.source.as_ref()?;
            (s, s.expect_cancel())
        }
    };
    c.is_plain_open().then_some(p)
}

/// `derive_cancel` of any other child: with a deadline, or under a node that may be done.
#[cfg_attr(feature = "tracing", track_caller)]
fn derive_cancel_general(
    parent: &NodeRef,
    own_deadline: Option<Instant>,
    cause: Option<Cause>,
    shown_as_deadline: bool,
    read_at: Option<Instant>,
) -> Owners {
    // Fast path for a child with no deadline of its own of an open cancel node that has no
    // deadline and nothing foreign above it, or of a value below one (the usual child of a
    // request's context, every level of a chain): open, `Timing::None`, nothing to check; it
    // registers with that canceler.
    if own_deadline.is_none()
        && let Some(p) = plain_canceler(parent)
    {
        return derive_plain(parent, p, shown_as_deadline);
    }
    let deadline = match (parent.deadline(), own_deadline) {
        (Some(p), Some(o)) => Some(p.min(o)),
        (p, o) => p.or(o),
    };
    // Fast path for a child of a done parent: born done with the parent's error and cause
    // (which win over a deadline of its own, as in Go), with no attaching and no cancel.
    // A foreign parent answers for itself, in `attach`.
    let source = parent.source();
    let born_done = match parent {
        NodeRef::Node(n) if matches!(n.kind, Kind::Wrap(_)) => None,
        _ => source.and_then(|s| s.expect_cancel().outcome_if_done()),
    };
    let is_born_done = born_done.is_some();
    let under_foreign = !is_born_done && source.is_some_and(|s| s.expect_cancel().leads_to_foreign()); // invariant 16
    // A deadline of its own with no cause stays inline; an inherited one or a cause is boxed
    // (a cause comes only with a deadline of its own). Built in each arm, so that the usual
    // one (no deadline) builds its node with what it knows.
    // It registers with its canceler unless it is born done (`attach`): its `Weak` for that is
    // counted at birth.
    let registers = !is_born_done && source.is_some();
    let (node, handle, weak) = match (deadline, cause) {
        (None, _) => cancel_node(
            parent,
            born_done,
            shown_as_deadline,
            under_foreign,
            Timing::None,
            registers,
        ),
        (Some(d), None) if own_deadline == Some(d) => cancel_node(
            parent,
            born_done,
            shown_as_deadline,
            under_foreign,
            Timing::Own(d),
            registers,
        ),
        (Some(d), cause) => {
            let fixed = Fixed {
                deadline: Some(d),
                own_deadline,
                deadline_cause: cause.map(Arc::new),
                ..Fixed::default()
            };
            let timing = Timing::Boxed(Box::new(fixed));
            cancel_node(
                parent,
                born_done,
                shown_as_deadline,
                under_foreign,
                timing,
                registers,
            )
        }
    };
    // A child of the process-wide root with no deadline has nothing to attach to and nothing
    // to check.
    let check_deadline = deadline.is_some_and(|d| read_at.is_none_or(|t| d <= t));
    if !is_born_done && (node.parent().get().is_some() || check_deadline) {
        attach(&node, weak, check_deadline);
    }
    (node, handle)
}

/// A cancel node below `parent`: `CancelNode::new`'s arguments; with its `Weak` for its
/// canceler's children if it `registers`. (A function, not a closure: with the `tracing`
/// feature the node records where its `with_*` was called.)
#[cfg_attr(feature = "tracing", track_caller)]
#[inline(always)]
fn cancel_node(
    parent: &NodeRef,
    born_done: Option<Outcome>,
    shown_as_deadline: bool,
    under_foreign: bool,
    timing: Timing,
    registers: bool,
) -> Born {
    let cancel = CancelNode::new(born_done, shown_as_deadline, under_foreign, timing);
    Node::new_cancel(Some(parent), Kind::Cancel(cancel), registers)
}

/// The process-wide `Ctx::background()` (or `Ctx::todo()`, if `todo`) node; the handle keeps
/// the one it makes for the life of the process.
pub(crate) fn static_root(todo: bool) -> NodeRef {
    NodeRef::Node(Node::new_static_root(todo))
}
