//! Deadlines and timers: the lazy expiry in `err()`, `expire`, and the timer armed on the
//! owner of a deadline.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::cancel::propagate;
#[cfg(feature = "test-util")]
use super::counters;
use super::foreign::poll_bridge;
use super::merge;
use super::moving;
use super::node::{Node, NodeRef};
use super::state::Outcome;
use super::trace::{self, Site};
use crate::Error;
use crate::loom::lock;
use crate::watch::Watch;

/// `err()` of a cancel node: one atomic load when done or when there is no deadline; a clock
/// read on an open node with a deadline (which then expires lazily if the deadline passed).
#[inline]
pub(crate) fn err(node: &Arc<Node>) -> Option<Error> {
    match node.cancel_node().quick_err() {
        Ok(e) => e,
        Err(()) => err_slow(node),
    }
}

/// `err()` of an open cancel node with a deadline or a bridge.
#[inline(never)]
fn err_slow(node: &Arc<Node>) -> Option<Error> {
    let c = node.cancel_node();
    if let Some(b) = c.bridge()
        && let Some(e) = poll_bridge(node, b)
    {
        return Some(e);
    }
    // invariant 18: a moving deadline is judged on its word, not on a copy
    if let Some(m) = c.moving()
        && moving::poll(node, m)
    {
        return c.state_err();
    }
    if c.is_under_foreign()
        && let Some(e) = poll_foreign_above(node)
    {
        return Some(e);
    }
    let d = node.deadline()?;
    if node.clock().now() < d {
        return None;
    }
    expire(node);
    c.state_err()
}

/// `err()` of an open node below a bridge fed from another thread (invariant 16): polls the
/// bridges above it (climbing the cancelers that carry `UNDER_FOREIGN`, through both parents of
/// a merge), and if one of them — or a canceler on the way — is done, gives `node` that outcome
/// now, as the walk on its way down will (as `expire` does for a deadline's owner). So once a
/// foreign context's own `err()` says it is done, everything derived from its wrap says so
/// too, whoever asks, without waiting for the watcher thread.
#[cold]
#[inline(never)]
fn poll_foreign_above(node: &Arc<Node>) -> Option<Error> {
    // Inline: a chain climbs one canceler at a time; only merges add a second (no allocation
    // on this `err()` unless merges stack up).
    let mut stack: smallvec::SmallVec<[&Arc<Node>; 4]> = smallvec::smallvec![node];
    while let Some(cur) = stack.pop() {
        let cc = cur.cancel_node();
        let parents = [cur.parent().get(), cc.merged_with()];
        for canceler in parents.into_iter().flatten().filter_map(NodeRef::source) {
            let pc = canceler.cancel_node();
            if let Some(b) = pc.bridge()
                && pc.is_open()
            {
                poll_bridge(canceler, b);
            }
            if let Some(m) = pc.moving()
                && pc.is_open()
            {
                moving::poll(canceler, m); // invariant 18
            }
            if let Some(Outcome { err, cause }) = pc.outcome_if_done() {
                propagate(node, err, cause);
                return node.cancel_node().state_err();
            }
            if pc.is_under_foreign() {
                stack.push(canceler);
            }
        }
    }
    None
}

/// A new node whose deadline has already passed is born `DeadlineExceeded`.
#[inline]
pub(super) fn check_deadline(node: &Arc<Node>) {
    if let Some(d) = node.deadline()
        && node.clock().now() >= d
    {
        expire(node);
    }
}

/// The deadline of `start` has passed: find the node that owns it and cancel that one with
/// `DeadlineExceeded`. If no cancel node above owns it (it came from a foreign context),
/// `start` itself expires.
pub(crate) fn expire(start: &Arc<Node>) {
    let Some(d) = start.deadline() else { return };
    let owner = deadline_owner(start, d).unwrap_or(start);
    // Invariant 15: a deadline is judged on its owner's clock. An owner reached through a
    // merge of two trees may run on another clock than the one `start` was read on: ask its own.
    if !owner.clock().same(start.clock()) && owner.clock().now() < d {
        return;
    }
    let cause = owner.cancel_node().deadline_cause();
    if let Some(descendants) = propagate(owner, Error::DeadlineExceeded, cause)
        && owner.cancel_node().bridge().is_none()
    {
        // A bridge (its deadline is the custom context's, expired here because the custom
        // had not said so yet) is no context of the user's: it has no name and no `with_*`
        // call to report.
        trace::canceled(owner, Error::DeadlineExceeded, Site::CREATED, descendants);
    }
    // If another thread is still propagating the owner's end down to `start`, do not wait for
    // it: give `start` what that propagation will give it — the owner's outcome, which is
    // `Canceled` if an explicit cancel reached the owner before its deadline did.
    if !Arc::ptr_eq(owner, start)
        && start.cancel_node().is_open()
        && let Some(Outcome { err, cause }) = owner.cancel_node().outcome()
    {
        propagate(start, err, cause);
    }
}

/// The node that owns the deadline `d` of `start`: the nearest cancel node at or above it whose
/// own deadline is `d` (through either parent of a merged node, see `merge::up`). `None` when no
/// cancel node owns it (the deadline came from a foreign context).
#[inline]
pub(super) fn deadline_owner(start: &Arc<Node>, d: Instant) -> Option<&Arc<Node>> {
    let mut cur = start;
    loop {
        if cur.cancel_node().own_deadline() == Some(d) {
            return Some(cur);
        }
        cur = merge::up(cur, d)?;
    }
}

/// Arms the deadline timer for waiters on `node`: on the owner of its deadline, once.
///
/// Climbing to the owner stops at the first node marked `TIMED` (invariant 14), and marks the
/// nodes it passes: a chain of `n` nodes under one deadline, each waited on, climbs `O(n)` in
/// all, whatever the order of the waits, instead of `O(n²)`.
pub(crate) fn arm_timer(node: &Arc<Node>) {
    let Some(d) = node.deadline() else { return };
    let mut cur = node;
    let owner = loop {
        #[cfg(feature = "test-util")]
        counters::OWNER_STEPS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let c = cur.cancel_node();
        if c.is_timed() {
            return; // armed, or being armed, from here up
        }
        c.set_timed();
        if c.own_deadline() == Some(d) {
            break cur;
        }
        match merge::up(cur, d) {
            Some(up) => cur = up,
            None => break node, // no cancel node owns it (a foreign deadline): `node` does
        }
    };
    let oc = owner.cancel_node();
    {
        let g = lock(&oc.inner);
        if !oc.is_open() || g.busy.as_ref().is_some_and(|b| b.timer.is_some()) {
            return;
        }
        // The watch is started after unlocking: its first poll may fire at once and lock us.
        // Two racing arms may both start one; the loser is canceled below.
    }
    let weak = Arc::downgrade(owner);
    // Owned: the future holds its node only weakly, and may outlive every node of the tree
    // (invariant 12).
    let clock = owner.clock().to_shared();
    let fut = async move {
        // Never early: sleep again if the timer woke before the clock reached `d`.
        while clock.now() < d {
            clock.get().sleep_until(d).await;
        }
        if let Some(node) = weak.upgrade() {
            // The after-funcs this ends, if deferred (fired from a wake), are offered to this
            // clock's own threads first (`Clock::spawn_after_func`).
            let _via = crate::pool::Via::enter(clock.clone());
            expire(&node);
        }
    };
    install_timer(owner, fut);
}

/// Starts the timer future `fut` of `node` and hands it to the node, which owns it from then
/// on (dropped when the node is done or dropped); if the node is done meanwhile (the first poll
/// may have ended it) or another arm won, lets go of it at once. Call with no lock held: the
/// first poll may fire and lock the node.
pub(super) fn install_timer(node: &Arc<Node>, fut: impl Future<Output = ()> + Send + 'static) {
    let c = node.cancel_node();
    #[cfg(feature = "test-util")]
    counters::TIMERS_ARMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A timer woken on a shared thread hands its after-funcs to the pool; a clock whose timers
    // are woken by the caller's own thread keeps them there (`Clock::after_funcs_inline`).
    let watch = Watch::start(!node.clock().get().after_funcs_inline(), fut);
    let lost = {
        let mut g = lock(&c.inner);
        // invariant 10: claimed under the lock before the busy part gains the timer
        if c.claim() && g.busy().timer.is_none() {
            g.busy().timer = Some(watch);
            None
        } else {
            Some(watch) // done meanwhile, or another arm won: release ours
        }
    };
    if let Some(w) = lost {
        w.cancel();
    }
}
