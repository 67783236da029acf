//! Deadlines that move: building the nodes behind `Ctx::with_grace` (done a grace period after
//! its parent is done, with the parent's outcome) and `Ctx::with_idle_timeout` (done once its
//! deadline, pushed later by every `touch()`, passes), and `touch`. Both are ordinary cancel
//! nodes with a `Moving` (`word.rs`) in their fixed part; their lazy check (`poll_moving`), the
//! grace period's start (`start_grace`) and their one timer (`arm_moving_timer`) are in
//! `end.rs`, `Ctx::deadline`'s climb to them in `observe.rs`. Invariants 18 and 19 of
//! `tree/mod.rs`.

use std::time::{Duration, Instant};

use super::arc::Arc;
use super::attach::attach;
use super::end::{arm_moving_timer, arm_timer, err, poll_moving};
use super::node::{CancelNode, Extra, Fixed, Kind, Node, NodeRef, Owners, Timing};
use super::word::{Moving, Span};

/// `parent.with_grace(grace)` (the node and its handle's owner): a cancel node whose values and name come
/// from `parent`, attached to `parent`'s canceler so that the walk ending `parent` reaches it,
/// but which that walk does not end: it starts the grace period (invariant 19). `deadline` is
/// the parent's (`ctx_deadline`), read by the caller.
#[cfg_attr(feature = "tracing", track_caller)]
pub(crate) fn derive_grace(parent: &NodeRef, grace: Duration, deadline: Option<Instant>) -> Owners {
    let clock = parent.clock();
    let moving = Moving::new(
        Span::Grace(grace),
        clock.now(),
        deadline.and_then(|d| d.checked_add(grace)),
    );
    let fixed = Fixed {
        extra: Some(Box::new(Extra::Moving(moving))),
        ..Fixed::default()
    };
    // Never `UNDER_FOREIGN`: its parent is not its canceler (invariant 19).
    let source = parent.source();
    let (node, handle, weak) = Node::new_cancel(
        Some(parent),
        Kind::Cancel(CancelNode::new(None, false, false, Timing::new(fixed))),
        source.is_some(),
    );
    if let Some(src) = source {
        // A parent whose deadline passed unobserved, or a bridge that lags, ends now, so that
        // the grace period starts from this call rather than from whenever somebody looks.
        err(src);
        // Born under a done parent: `attach_to` starts the grace period now.
        attach(&node, weak, false);
        // The parent's end must be noticed even if nobody waits on it: its deadline timer is
        // armed now (shared with its other waiters, invariant 14). `src` has dependents: this node
        // is attached there, or it is done and arms nothing.
        if src.deadline().is_some() && src.expect_cancel().is_open() {
            arm_timer(src);
        }
    }
    (node, handle)
}

/// `parent.with_idle_timeout(d)` (the node and its handle's owner): an ordinary child of `parent` whose
/// deadline is also the last touch plus `d`. Its timer is armed at once (invariant 18).
#[cfg_attr(feature = "tracing", track_caller)]
pub(crate) fn derive_idle(parent: &NodeRef, d: Duration) -> Owners {
    let clock = parent.clock();
    let now = clock.now();
    let fixed = Fixed {
        // The parent's deadline (it never moves) is this node's own part, as for any child.
        deadline: parent.deadline(),
        extra: Some(Box::new(Extra::Moving(Moving::new(
            Span::Idle(d),
            now,
            now.checked_add(d),
        )))),
        ..Fixed::default()
    };
    let source = parent.source();
    let under_foreign = source.is_some_and(|s| s.expect_cancel().leads_to_foreign()); // invariant 16
    let cancel = CancelNode::new(None, false, under_foreign, Timing::new(fixed));
    let (node, handle, weak) = Node::new_cancel(Some(parent), Kind::Cancel(cancel), source.is_some());
    attach(&node, weak, true);
    let c = node.expect_cancel();
    if c.is_open()
        && let Some(m) = c.moving()
        && !poll_moving(&node, m)
    {
        arm_moving_timer(&node);
    }
    (node, handle)
}

/// `IdleHandle::touch`: the deadline moves to now plus the idle timeout. No lock, no
/// allocation, no timer: one clock read and one `fetch_max` (invariant 18). Nothing once the
/// node is done.
#[inline]
pub(crate) fn touch(node: &Arc<Node>) {
    let c = node.expect_cancel();
    let Some(m) = c.moving() else { return };
    let &Span::Idle(d) = m.span() else { return };
    if c.is_open() {
        m.push(node.clock().now().checked_add(d));
    }
}
