//! Foreign contexts: `Ctx::wrap` of a custom context, the bridge that follows it (a relay, an
//! `on_done` callback or a watcher: `Feed`), and the trampoline that drops its custom context.

use std::any::TypeId;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Weak};
use std::time::Instant;

use super::attach::attach;
use super::cancel::propagate;
#[cfg(feature = "test-util")]
use super::counters;
use super::node::{CancelNode, Cold, Kind, Node, NodeRef, WrapNode};
use super::state::Outcome;
use crate::clock::ClockRef;
use crate::loom::lock;
use crate::watch::Watch;
use crate::{Context, Ctx, Done, Error};

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
    pub(super) custom: Weak<dyn Context>,
    pub(super) relay: bool,
    /// On a relay whose chain of relays ends at a foreign bridge (a wrap of a wrap of a foreign
    /// context): that bridge, so that the lazy check reaches it in one step at any depth. Weak:
    /// the relay's parent chain holds it.
    pub(super) foreign_root: Option<Weak<Node>>,
}

/// What feeds a bridge from a foreign `done()`; let go of when the bridge is done or dropped.
pub(super) enum Feed {
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
        custom: &Arc<dyn Context>,
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
            bridge: Some(Bridge {
                custom: Arc::downgrade(custom),
                relay: feeder.is_some(),
                foreign_root,
            }),
            ..Cold::default()
        };
        CancelNode::new(None, false, Some(Box::new(cold)))
    }
}

// ===== wrapping custom contexts =====

/// A custom context's `err()` and `cause()`, asked for by ctx-core itself (at wrap, at derive,
/// when its `done()` fires). They are user code: a panic in them is contained (the hook reports
/// it) and read as "not done", so ctx-core then relies on the context's `done()` alone.
fn custom_outcome(custom: &dyn Context) -> Option<Outcome> {
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
            .parent
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

/// `Ctx::wrap` of a context that is not a `Ctx`. Its children attach to one *bridge* node,
/// which is done with the custom context's own answers once the custom's `done()` fires:
///
/// * a `done()` that is a `Ctx`'s (Go's `parentCancelCtx`): the bridge is a relay attached to
///   that `Ctx`'s cancel node, and is resolved by the cancel that reaches it (no thread, no
///   task; children are done before that cancel returns);
/// * a foreign `done()`: the custom's `on_done` callback (Go's `afterFuncer`) feeds the bridge,
///   else one watcher of the foreign future does;
/// * a `done()` that never completes: no bridge at all.
///
/// Either way the bridge is also checked lazily (see [`Bridge`]).
pub(crate) fn wrap(custom: Arc<dyn Context>, type_name: &'static str) -> NodeRef {
    let deadline = custom.deadline();
    let done = custom.done();
    // The wrapped `Ctx`'s clock: through its values, else through its `done()` (a type that
    // hides values still keeps its root's clock), else the system clock.
    let clock = custom
        .value_any(TypeId::of::<ClockRef>())
        .and_then(|v| v.downcast_ref::<ClockRef>())
        .or_else(|| done.node().map(|n| &n.clock))
        .cloned()
        .unwrap_or(ClockRef::SYSTEM);
    let source = if let Some(feeder) = done.node() {
        let relay = Node::new(
            Some(&NodeRef::Node(feeder.clone())),
            clock.clone(),
            Kind::Cancel(CancelNode::new_bridge(&custom, Some(feeder), deadline)),
        );
        drop(done);
        attach(&relay, true);
        Some(relay)
    } else if done.is_never() {
        None
    } else {
        Some(foreign_bridge(&custom, done, clock.clone(), deadline))
    };
    NodeRef::Node(Node::new(
        None,
        clock,
        Kind::Wrap(Box::new(WrapNode {
            custom,
            type_name,
            deadline,
            source,
        })),
    ))
}

/// The bridge behind a foreign `done()`, fed by the custom's `on_done` callback if it has
/// one, else by a watcher.
fn foreign_bridge(
    custom: &Arc<dyn Context>,
    done: Done,
    clock: ClockRef,
    deadline: Option<Instant>,
) -> Arc<Node> {
    let bridge = Node::new(
        None,
        clock,
        Kind::Cancel(CancelNode::new_bridge(custom, None, deadline)),
    );
    if let Some(Outcome { err, cause }) = custom_outcome(&**custom) {
        propagate(&bridge, err, cause);
        return bridge;
    }
    let weak = Arc::downgrade(&bridge);
    let on_done = Box::new(move || {
        if let Some(bridge) = weak.upgrade() {
            // The children take the custom context's own answers (contained if they panic).
            let Outcome { err, cause } = bridge_outcome(&bridge).unwrap_or(Outcome {
                err: Error::Canceled,
                cause: None,
            });
            propagate(&bridge, err, cause);
        }
    });
    let feed = match custom.on_done(on_done) {
        Some(stop) => {
            drop(done); // never polled: no watcher
            Feed::Callback(stop)
        }
        None => {
            let (fut, wake) = done
                .into_foreign()
                .expect("ctx-core: internal error: foreign done expected");
            let weak = Arc::downgrade(&bridge);
            #[cfg(feature = "test-util")]
            counters::WATCHERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Deferred unless the future promised otherwise (`Done::new_inline`): a foreign
            // future may be woken under its own lock (see `watch.rs`).
            Feed::Watch(Watch::start_with(wake, async move {
                let err = fut.await;
                let Some(bridge) = weak.upgrade() else {
                    return;
                };
                // The children take the custom context's own answers when it has them. Its
                // methods are user code: if they panic, the children still get canceled.
                let Outcome { err, cause } = bridge_outcome(&bridge).unwrap_or(Outcome { err, cause: None });
                propagate(&bridge, err, cause);
            }))
        }
    };
    let bc = bridge.cancel_node();
    let lost = {
        let mut g = lock(&bc.inner);
        // invariant 10: claimed under the lock before the busy part gains the feed
        if bc.claim() {
            g.busy().foreign = Some(feed);
            None
        } else {
            Some(feed) // fired already (during its first poll, or inside `on_done`)
        }
    };
    if let Some(feed) = lost {
        feed.cancel();
    }
    bridge
}

/// Drops a wrap node's custom context. A user type may hold the next wrap down, whose drop
/// drops the next custom, and so on: a chain of a million wraps would recurse a million deep.
/// So drops nested on one thread are queued (a trampoline), and the outermost one drains the
/// queue in a loop (invariant 6).
pub(super) fn drop_custom(custom: Arc<dyn Context>) {
    thread_local! {
        /// `Some` while a `drop_custom` runs on this thread: the customs it has yet to drop.
        static PENDING: std::cell::RefCell<Option<Vec<Arc<dyn Context>>>> =
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

/// What a dying wrap node leaves in place of its custom context (moved to `drop_custom`).
pub(super) fn placeholder() -> Arc<dyn Context> {
    static NEVER: std::sync::LazyLock<Arc<dyn Context>> =
        std::sync::LazyLock::new(|| Arc::new(Ctx::background()));
    NEVER.clone()
}
