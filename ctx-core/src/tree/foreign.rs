//! Foreign contexts: what the engine asks of a context it does not own ([`Foreign`]), the
//! wrap node and the bridge that follows such a context (a relay, or fed by a `Feed`: an
//! `on_done` callback or a watcher), and the trampoline that drops it. Reading the user's
//! `Context` to choose among these is `Ctx::wrap`'s (`crate::wrap`): the engine never names
//! `Context` or `Done`.

use std::any::{Any, TypeId};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::attach::attach;
use super::cancel::propagate;
use super::node::{CancelNode, Cold, Extra, Kind, Node, NodeRef, Parent, WrapNode};
use super::state::Outcome;
use crate::clock::SharedClock;
use crate::loom::lock;
use crate::watch::Watch;
use crate::{Cause, Error};

/// What the engine asks of a context it does not own (the user's type behind `Ctx::wrap`).
/// Every method is user code: the engine calls them with no lock held.
pub(crate) trait Foreign: Send + Sync + 'static {
    /// The context's error, or `None` while it is not done.
    fn err(&self) -> Option<Error>;
    /// The context's cause, or `None` while it is not done.
    fn cause(&self) -> Option<Cause>;
    /// The value keyed `key`, if the context has one.
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)>;
}

/// What a bridge node answers to. A bridge is done with the custom context's own `err()` and
/// `cause()` once the custom's `done()` has fired, and is checked *lazily*, as deadlines are:
/// whoever asks an open bridge (`err()`, `cause()`, a `done()` poll, `after_func`, a child's
/// birth, `wait_blocking`) asks the custom context too, and cancels the bridge right there if it
/// says it is done. What feeds it otherwise:
///
/// * a *relay* (the custom's `done()` is a `Ctx`'s: its cancel node is the bridge's parent):
///   attached to that node like any child; the walk that cancels the parent collects the relay
///   instead of marking it, and `propagate` then resolves it with the custom's answers (no user
///   code runs during the walk);
/// * a foreign `done()`: the custom's `on_done` callback, else a watcher (`watch.rs`).
pub(crate) struct Bridge {
    /// Weak: a `Done` or an after-func that outlives the wrap must not keep a user type alive.
    pub(super) custom: Weak<dyn Foreign>,
    pub(super) relay: bool,
    /// On a relay whose chain of relays ends at a foreign bridge (a wrap of a wrap of a foreign
    /// context): that bridge, so that the lazy check reaches it in one step at any depth. Weak:
    /// the relay's parent chain holds it.
    pub(super) foreign_root: Option<Weak<Node>>,
}

/// What feeds a bridge from a foreign `done()`; let go of when the bridge is done or dropped.
pub(crate) enum Feed {
    /// A watcher polling the foreign `done()` future.
    Watch(Arc<Watch>),
    /// The stop function of the custom context's `on_done` registration.
    Callback(StopFn),
}

impl Feed {
    /// Stops feeding. User code (a stop function, a future's `Drop`): call with no lock held.
    pub(super) fn cancel(self) {
        match self {
            Feed::Watch(w) => w.cancel(),
            Feed::Callback(stop) => {
                // `false` when the callback has run: nothing left to release either way.
                let _ = catch_unwind(AssertUnwindSafe(stop));
            }
        }
    }
}

impl CancelNode {
    /// An open bridge for `custom` (see [`Bridge`]) with the custom's `deadline`: a relay under
    /// `feeder`, or fed from a foreign `done()`.
    pub(super) fn new_bridge(
        custom: &Arc<dyn Foreign>,
        feeder: Option<&Arc<Node>>,
        deadline: Option<Instant>,
    ) -> CancelNode {
        let foreign_root = feeder.and_then(|f| match &f.kind {
            Kind::Cancel(c) => c.bridge().and_then(|b| match b.relay {
                true => b.foreign_root.clone(),
                false => Some(Arc::downgrade(f)),
            }),
            _ => None,
        });
        let cold = Cold {
            deadline,
            extra: Some(Box::new(Extra::Bridge(Bridge {
                custom: Arc::downgrade(custom),
                relay: feeder.is_some(),
                foreign_root,
            }))),
            ..Cold::default()
        };
        CancelNode::new(None, false, false, Some(Box::new(cold)))
    }
}

// ===== wrapping custom contexts =====

/// A custom context's `err()` and `cause()`, asked for by ctx-core itself (at wrap, at derive,
/// when its `done()` fires). They are user code: a panic in them is contained (the hook reports
/// it) and read as "not done", so ctx-core then relies on the context's `done()` alone.
fn custom_outcome(custom: &dyn Foreign) -> Option<Outcome> {
    catch_unwind(AssertUnwindSafe(|| {
        let err = custom.err()?;
        Some(Outcome {
            err,
            cause: custom.cause().map(Arc::new),
        })
    }))
    .ok()
    .flatten()
}

/// The stop function of a custom context's `on_done` registration.
pub(crate) type StopFn = Box<dyn FnOnce() -> bool + Send + 'static>;

/// The lazy check of an open bridge (see [`Bridge`]): asks the custom context (user code, no
/// lock held) and cancels the bridge with its answers if it says it is done. A relay is not
/// asked while the node feeding it is open: the custom's `done()` has not fired, and a chain
/// of wraps answers without going through every custom in it. Only the foreign bridge at the
/// bottom of its chain, if any, is checked then: if that one is done, its cancel resolves the
/// relays above it, this one included.
#[inline]
pub(super) fn poll_bridge(node: &Arc<Node>, b: &Bridge) -> Option<Error> {
    let feeder_open = b.relay
        && node
            .parent()
            .get()
            .and_then(NodeRef::source)
            .is_some_and(|feeder| feeder.cancel_node().is_open());
    // Fast path, the usual wrapper of a live `Ctx`: one more atomic load than a plain node.
    if feeder_open && b.foreign_root.is_none() {
        return None;
    }
    poll_bridge_slow(node, b, feeder_open)
}

#[cold]
#[inline(never)]
fn poll_bridge_slow(node: &Arc<Node>, b: &Bridge, feeder_open: bool) -> Option<Error> {
    if feeder_open {
        let root = b.foreign_root.as_ref().and_then(Weak::upgrade)?;
        if let Kind::Cancel(rc) = &root.kind
            && let Some(rb) = rc.bridge()
            && rc.is_open()
        {
            poll_bridge(&root, rb); // a foreign bridge: no further step down
        }
        return node.cancel_node().state_err();
    }
    let Outcome { err, cause } = bridge_outcome(node)?;
    propagate(node, err, cause);
    node.cancel_node().state_err()
}

/// A bridge's custom context's answers, if `node` is a bridge whose custom is alive and done.
pub(super) fn bridge_outcome(node: &Arc<Node>) -> Option<Outcome> {
    let Kind::Cancel(c) = &node.kind else { return None };
    let custom = c.bridge()?.custom.upgrade()?;
    let outcome = custom_outcome(&*custom);
    drop_custom(custom);
    outcome
}

/// The node behind `Ctx::wrap` of `custom` (see `crate::wrap`): its values and name are the
/// custom's, its `deadline` the custom's own (asked once, by the caller), and its `err()` and
/// `done()` come from `source`, the bridge that follows the custom (`None` when its `done()`
/// never completes).
pub(crate) fn wrap_node(
    custom: Arc<dyn Foreign>,
    type_name: &'static str,
    clock: SharedClock,
    deadline: Option<Instant>,
    source: Option<Arc<Node>>,
) -> NodeRef {
    // Owns the wrapped context's clock: the custom context may be anything, so nothing else
    // keeps that clock alive (invariant 12).
    NodeRef::Node(Node::owning(
        Parent::None,
        clock,
        Kind::Wrap(Box::new(WrapNode {
            custom,
            type_name,
            deadline,
            source,
        })),
    ))
}

/// A relay: the bridge for `custom` whose `done()` is the `done()` of `feeder`, a `Ctx`'s
/// cancel node (Go's `parentCancelCtx`). It is attached to `feeder` like any child and resolved
/// by the cancel that reaches it (no thread, no task; children are done before that cancel
/// returns).
pub(crate) fn relay_bridge(
    custom: &Arc<dyn Foreign>,
    feeder: &Arc<Node>,
    clock: &SharedClock,
    deadline: Option<Instant>,
) -> Arc<Node> {
    // A bridge owns its clock (invariant 12): it may outlive its wrap (a cancel walk or a
    // feed upgrades it), and a relay's clock need not be its parent's (a custom context may
    // take values from one tree and `done()` from another).
    let relay = Node::owning(
        Parent::Node(NodeRef::Node(feeder.clone())),
        clock.clone(),
        Kind::Cancel(CancelNode::new_bridge(custom, Some(feeder), deadline)),
    );
    attach(&relay, true);
    relay
}

/// An open bridge for `custom` whose `done()` is a foreign future; the caller feeds it
/// ([`resolve_bridge`] first, then [`install_feed`]).
pub(crate) fn foreign_bridge(
    custom: &Arc<dyn Foreign>,
    clock: &SharedClock,
    deadline: Option<Instant>,
) -> Arc<Node> {
    Node::owning(
        Parent::None,
        clock.clone(), // a bridge owns its clock (see `relay_bridge`)
        Kind::Cancel(CancelNode::new_bridge(custom, None, deadline)),
    )
}

/// Cancels `bridge` with its custom context's own answers if the custom says it is done, else
/// with `fired` (its `done()` has completed with that error) if given: the children take the
/// custom's answers when it has them, and are canceled anyway if its methods panic. Returns
/// whether this call canceled the bridge. User code (the custom's methods): call with no lock
/// held.
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
    let bc = bridge.cancel_node();
    let lost = {
        let mut g = lock(&bc.inner);
        // invariant 10: claimed under the lock before the busy part gains the feed
        if bc.claim() {
            g.busy().foreign = Some(feed);
            None
        } else {
            Some(feed)
        }
    };
    if let Some(feed) = lost {
        feed.cancel(); // user code: no lock held (invariant 5)
    }
}

/// Drops a wrap node's custom context. A user type may hold the next wrap down, whose drop
/// drops the next custom, and so on: a chain of a million wraps would recurse a million deep.
/// So drops nested on one thread are queued (a trampoline), and the outermost one drains the
/// queue in a loop (invariant 6).
pub(super) fn drop_custom(custom: Arc<dyn Foreign>) {
    thread_local! {
        /// `Some` while a `drop_custom` runs on this thread: the customs it has yet to drop.
        static PENDING: std::cell::RefCell<Option<Vec<Arc<dyn Foreign>>>> =
            const { std::cell::RefCell::new(None) };
    }
    /// Ends the outermost drop, also when a user `Drop` panics: what is left is dropped then
    /// (each through this function again).
    struct Outermost;
    impl Drop for Outermost {
        fn drop(&mut self) {
            let left = PENDING.try_with(|p| p.borrow_mut().take()).ok().flatten();
            drop(left);
        }
    }
    let mut custom = Some(custom);
    let outermost = PENDING.try_with(|p| {
        let mut p = p.borrow_mut();
        match p.as_mut() {
            Some(queue) => {
                queue.extend(custom.take());
                false
            }
            None => {
                *p = Some(Vec::new());
                true
            }
        }
    });
    if outermost != Ok(true) {
        drop(custom); // queued (`None` here), or this thread's locals are gone: drop it now
        return;
    }
    let _end = Outermost;
    drop(custom);
    while let Some(next) = PENDING.with(|p| p.borrow_mut().as_mut().and_then(Vec::pop)) {
        drop(next);
    }
}

/// What a dying wrap node leaves in place of its custom context (moved to `drop_custom`): a
/// context that is never done and has no values.
pub(super) fn placeholder() -> Arc<dyn Foreign> {
    struct Never;
    impl Foreign for Never {
        fn err(&self) -> Option<Error> {
            None
        }
        fn cause(&self) -> Option<Cause> {
            None
        }
        fn value_any(&self, _: TypeId) -> Option<&(dyn Any + Send + Sync)> {
            None
        }
    }
    static NEVER: std::sync::LazyLock<Arc<dyn Foreign>> = std::sync::LazyLock::new(|| Arc::new(Never));
    NEVER.clone()
}
