//! `Ctx::wrap` of a context that is not a `Ctx`: reads the user's [`Context`] once (its
//! `deadline()`, its `done()`, its clock) and builds the wrap from the engine's parts (see
//! `tree/foreign.rs`). The engine keeps the user's type as a [`Foreign`]: what it asks of a
//! context it does not own.

use std::any::{Any, TypeId};
use std::time::Instant;

use crate::clock::{NodeClock, SharedClock};
#[cfg(feature = "test-util")]
use crate::tree::counters;
use crate::tree::{self, Arc, Feed, Foreign, Node, NodeRef};
use crate::watcher::Watcher;
use crate::{Cause, Context, Done, Error};

/// The key under which a `Ctx` answers its clock (a `NodeClock`) to `value_any`, so that
/// [`build`] finds the clock of a `Ctx` wrapped inside a foreign context that forwards its
/// values. `impl Context for Ctx` (in `ctx.rs`, above this module) answers it.
pub(crate) struct ClockKey;

/// The user's context as the engine holds it. Generic, so that the user's `C` is one
/// allocation with the `Arc`'s counts (`Arc<AsForeign<C>>` coerces to `Arc<dyn Foreign>`).
struct AsForeign<C>(C);

impl<C: Context> Foreign for AsForeign<C> {
    fn err(&self) -> Option<Error> {
        self.0.err()
    }
    fn cause(&self) -> Option<Cause> {
        self.0.cause()
    }
    fn value_any(&self, key: TypeId) -> Option<&(dyn Any + Send + Sync)> {
        self.0.value_any(key)
    }
}

/// `Ctx::wrap` of `user`, a foreign context (not a `Ctx`: the handle returns those as they
/// are). Its children attach to one *bridge* node, which is done with the foreign context's own
/// answers once its `done()` fires:
///
/// * a `done()` that is a `Ctx`'s (Go's `parentCancelCtx`): the bridge is a relay attached to
///   that `Ctx`'s cancel node, resolved by the cancel that reaches it;
/// * a foreign `done()`: the foreign context's `on_done` callback (Go's `afterFuncer`) feeds the bridge,
///   else one watcher of the foreign future does;
/// * a `done()` that never completes: a bridge that only its deadline ends, if it has one (a
///   foreign deadline ends the wrap on every path, as it ends the wrap's children); else no
///   bridge at all.
///
/// Either way the bridge is also checked lazily (see `tree::node::Bridge`).
pub(crate) fn wrap<C: Context>(user: C) -> NodeRef {
    let user = std::sync::Arc::new(AsForeign(user));
    let foreign: std::sync::Arc<dyn Foreign> = user.clone();
    build(&user.0, foreign, std::any::type_name::<C>())
}

/// The body of [`wrap`], once per program rather than once per wrapped type: `ctx` is the
/// user's context, `foreign` the same one as the engine keeps it.
fn build(ctx: &dyn Context, foreign: std::sync::Arc<dyn Foreign>, type_name: &'static str) -> NodeRef {
    let deadline = ctx.deadline();
    let done = ctx.done();
    // The wrapped `Ctx`'s clock: through its values, else through its `done()` (a type that
    // hides values still keeps its root's clock), else the system clock. Owned from here on,
    // taken while `ctx` and `done` are borrowed: the foreign context may be anything, and nothing else
    // keeps the wrapped tree alive once it is gone (invariant 12).
    let clock = ctx
        .value_any(TypeId::of::<ClockKey>())
        .and_then(|v| v.downcast_ref::<NodeClock>())
        .or_else(|| done.node().map(|n| n.clock()))
        .map_or_else(SharedClock::default, NodeClock::to_shared);
    let source = if let Some(feeder) = done.node().cloned() {
        drop(done); // a `Done` the foreign context has polled leaves its waker before the relay attaches
        Some(tree::relay_bridge(&foreign, &feeder, &clock, deadline))
    } else if done.is_never() {
        // Never done by its own `done()`, but its deadline still ends it: one rule for a
        // foreign deadline on every path (`err()`, `done()`, `sleep`, children, which take the
        // deadline anyway), so a bridge fed by nothing but that deadline (its timer, lazily
        // checked like any deadline). With no deadline either, no bridge: it is never done.
        deadline.map(|d| tree::foreign_bridge(&foreign, &clock, Some(d)))
    } else {
        Some(foreign_bridge(ctx, &foreign, done, &clock, deadline))
    };
    tree::wrap_node(foreign, type_name, clock, deadline, source)
}

/// The bridge behind a foreign `done()`, fed by the foreign context's `on_done` callback if it has
/// one, else by a watcher.
fn foreign_bridge(
    ctx: &dyn Context,
    foreign: &std::sync::Arc<dyn Foreign>,
    done: Done,
    clock: &SharedClock,
    deadline: Option<Instant>,
) -> Arc<Node> {
    let bridge = tree::foreign_bridge(foreign, clock, deadline);
    if tree::resolve_bridge(&bridge, None) {
        return bridge; // done already: nothing to feed it
    }
    let weak = Arc::downgrade(&bridge);
    let on_done = Box::new(move || {
        if let Some(bridge) = weak.upgrade() {
            tree::resolve_bridge(&bridge, Some(Error::Canceled));
        }
    });
    let feed = match ctx.on_done(on_done) {
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
            // future may be woken under its own lock (see `watcher.rs`).
            Feed::Watcher(Watcher::start_with(wake, async move {
                let err = fut.await;
                if let Some(bridge) = weak.upgrade() {
                    tree::resolve_bridge(&bridge, Some(err));
                }
            }))
        }
    };
    tree::install_feed(&bridge, feed);
    bridge
}
