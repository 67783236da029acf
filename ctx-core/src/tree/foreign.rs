//! Foreign contexts (the user's type behind `Ctx::wrap`, kept as a `Foreign`): building the
//! wrap node and the bridge that follows such a context (a relay, or fed by a `Feed`: an
//! `on_done` callback or a watcher), resolving a bridge when its foreign context's `done()`
//! fires, and handing it its feed. The types are `node.rs`'s, the bridge's lazy check is in
//! `end.rs`, and calling into a foreign context is `foreign_calls.rs`'s. Reading the user's
//! `Context` to choose among these is `Ctx::wrap`'s (`crate::wrap`): the engine never names
//! `Context` or `Done`.

use std::time::Instant;

use super::arc::Arc;
use super::attach::attach;
use super::end::propagate;
use super::foreign_calls::bridge_outcome;
use super::node::{CancelNode, Feed, Foreign, Kind, Node, NodeRef, Parent, WrapNode};
use super::state::Outcome;
use crate::Error;
use crate::clock::SharedClock;

/// The node behind `Ctx::wrap` of `foreign` (see `crate::wrap`): its values and name are the
/// foreign context's, its `deadline` the foreign context's own (asked once, by the caller), and its `err()`
/// and `done()` come from `source`, the bridge that follows the foreign context (`None` when its
/// `done()` never completes).
pub(crate) fn wrap_node(
    foreign: std::sync::Arc<dyn Foreign>,
    type_name: &'static str,
    clock: SharedClock,
    deadline: Option<Instant>,
    source: Option<Arc<Node>>,
) -> NodeRef {
    // Owns the wrapped context's clock: the foreign context may be anything, so nothing else
    // keeps that clock alive (invariant 12).
    NodeRef::Node(Node::owning(
        Parent::None,
        clock,
        Kind::Wrap(Box::new(WrapNode {
            foreign,
            type_name,
            deadline,
            source,
        })),
    ))
}

/// A relay: the bridge for `foreign` whose `done()` is the `done()` of `feeder`, a `Ctx`'s
/// cancel node (Go's `parentCancelCtx`). It is attached to `feeder` like any child and resolved
/// by the cancel that reaches it (no thread, no task; children are done before that cancel
/// returns).
pub(crate) fn relay_bridge(
    foreign: &std::sync::Arc<dyn Foreign>,
    feeder: &Arc<Node>,
    clock: &SharedClock,
    deadline: Option<Instant>,
) -> Arc<Node> {
    // A bridge owns its clock (invariant 12): it may outlive its wrap (a cancel walk or a
    // feed upgrades it), and a relay's clock need not be its parent's (a foreign context may
    // take values from one tree and `done()` from another).
    let relay = Node::owning(
        Parent::Node(NodeRef::Node(feeder.clone())),
        clock.clone(),
        Kind::Cancel(CancelNode::new_bridge(foreign, Some(feeder), deadline)),
    );
    attach(&relay, None, true);
    relay
}

/// An open bridge for `foreign` whose `done()` is a foreign future; the caller feeds it
/// ([`resolve_bridge`] first, then [`install_feed`]).
pub(crate) fn foreign_bridge(
    foreign: &std::sync::Arc<dyn Foreign>,
    clock: &SharedClock,
    deadline: Option<Instant>,
) -> Arc<Node> {
    Node::owning(
        Parent::None,
        clock.clone(), // a bridge owns its clock (see `relay_bridge`)
        Kind::Cancel(CancelNode::new_bridge(foreign, None, deadline)),
    )
}

/// Cancels `bridge` with its foreign context's own answers if the foreign context says it is done,
/// else with `fired` (its `done()` has completed with that error) if given: the children take the
/// foreign context's answers when it has them, and are canceled anyway if its methods panic. Returns
/// whether this call canceled the bridge. User code (the foreign context's methods): call with no
/// lock held.
pub(crate) fn resolve_bridge(bridge: &Arc<Node>, fired: Option<Error>) -> bool {
    let outcome = bridge_outcome(bridge).or(fired.map(|err| Outcome { err, cause: None }));
    match outcome {
        Some(Outcome { err, cause }) => {
            propagate(bridge, err, cause);
            true
        }
        None => false,
    }
}

/// Hands `feed` to `bridge`, which owns it from then on (it lives exactly as long as something
/// can observe the bridge); if the bridge is done already (the feed fired during its first
/// poll, or inside `on_done`), lets go of it at once.
pub(crate) fn install_feed(bridge: &Arc<Node>, feed: Feed) {
    let bc = bridge.expect_cancel();
    let feed = Box::new(feed); // allocated before the lock is taken
    let lost = {
        // invariant 10: the lock taken with `HAS_DEPENDENTS` set if the bridge is open, before
        // the dependents part gains the feed
        let (mut g, open) = bc.lock_for_dependents();
        if open {
            g.dependents().feed = Some(feed);
            None
        } else {
            Some(feed)
        }
    };
    if let Some(feed) = lost {
        feed.cancel(); // user code: no lock held (invariant 5)
    }
}
