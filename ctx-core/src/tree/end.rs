//! How a node ends, other than by a handle: `propagate` (the walk, then the relays and grace
//! periods it collected, then the after-funcs), the lazy checks that end an open node whose
//! deadline, moving deadline or foreign context says it is over (`err`, invariants 16 and 18;
//! `poll_bridge`, `poll_moving`), `expire`, and the timers that do it when nobody asks
//! (`arm_timer`, `arm_moving_timer`, invariant 14). One file because these call one another in
//! a circle: a timer expires a node, whose propagation starts a grace period, which arms a
//! timer; a grace node's lazy check asks its parent's `err()`.

use std::future::Future;
use std::mem;
use std::time::Instant;

use super::arc::{Arc, Weak};
#[cfg(feature = "test-util")]
use super::counters;
use super::foreign_calls::bridge_outcome;
use super::node::{Bridge, Kind, Node, NodeRef, SharedCause};
use super::state::{Outcome, WordErr};
use super::trace::{self, Site};
use super::walk::{Afters, Relays, deadline_owner, next_with_deadline, walk};
use super::word::{Moving, Span};
use crate::Error;
use crate::watcher::Watcher;

// ===== propagating =====

/// Marks `top` and every open node below it done, then wakes and runs what they held. Returns
/// how many nodes below `top` it marked, or `None` if `top` was done already.
///
/// A descendant whose own deadline has already passed becomes `DeadlineExceeded` with its own
/// cause rather than taking its parent's error: its timer would have fired first.
///
/// Relays (bridges behind `Ctx::wrap` of a foreign context whose `done()` is one of these nodes)
/// are not marked by the walk: they take the foreign context's own answers, which only user code
/// can give. They are resolved here afterwards, one by one with no lock held, and the relays
/// found below them join the same list: a chain of a million wraps needs no deep stack.
///
/// The count includes the relays resolved here and the nodes below them (a relay is the cancel
/// node of a wrap, which is done with it).
pub(crate) fn propagate(top: &Arc<Node>, err: Error, cause: Option<SharedCause>) -> Option<usize> {
    let mut relays: Relays = Vec::new();
    let mut afters = Afters::default();
    let mut descendants = walk(top, err, cause, &mut relays, &mut afters);
    if descendants.is_some() {
        while let Some((relay, err, cause)) = relays.pop() {
            let Outcome { err, cause } = if relay.expect_cancel().is_grace() {
                // Invariant 19: its parent's end starts its grace period; it ends now only if
                // that period is over already.
                match start_grace(&relay, err, cause, false) {
                    Some(outcome) => outcome,
                    None => continue,
                }
            } else {
                bridge_outcome(&relay).unwrap_or(Outcome { err, cause })
            };
            if let Some(below) = walk(&relay, err, cause, &mut relays, &mut afters) {
                descendants = descendants.map(|d| d + 1 + below);
            }
        }
    }
    // Every waiter of the whole subtree, relays included, is awake: only now may an after-func
    // run (invariant 13), so one that blocks until those waiters act cannot stall them.
    afters.run();
    if relays.capacity() == 0 {
        // None was met: nothing allocated, no drop glue to call (the usual cancel).
        mem::forget(relays);
    }
    descendants
}

// ===== the lazy checks =====

/// `err()` of a cancel node: one atomic load when done or when there is no deadline; a clock
/// read on an open node with a deadline (which then expires lazily if the deadline passed).
#[inline]
pub(crate) fn err(node: &Arc<Node>) -> Option<Error> {
    match node.expect_cancel().err_from_word() {
        WordErr::Open => None,
        WordErr::Done(e) => Some(e),
        WordErr::MustCheck => err_check(node),
    }
}

/// `err().is_some()` of a cancel node, without the error: one atomic load and one test when
/// done or when there is no deadline.
#[inline]
pub(crate) fn is_done(node: &Arc<Node>) -> bool {
    match node.expect_cancel().done_from_word() {
        Some(done) => done,
        None => err_check(node).is_some(),
    }
}

/// `err()` of an open cancel node with something to check: a deadline of its own, proven
/// ahead by a coarse reading of a clock that reads `Instant::now()`, answers at once (the usual
/// `with_timeout` context, in a small frame); anything else is asked in full.
#[inline(never)]
fn err_check(node: &Arc<Node>) -> Option<Error> {
    if node.expect_cancel().own_deadline_ahead(node.clock()) {
        return None;
    }
    err_slow(node)
}

/// `err()` of an open cancel node with a deadline or a bridge.
#[inline(never)]
fn err_slow(node: &Arc<Node>) -> Option<Error> {
    let c = node.expect_cancel();
    if let Some(b) = c.bridge()
        && let Some(e) = poll_bridge(node, b)
    {
        return Some(e);
    }
    // invariant 18: a moving deadline is judged on its word, not on a copy
    if let Some(m) = c.moving()
        && poll_moving(node, m)
    {
        return c.state_err();
    }
    if c.is_under_foreign()
        && let Some(e) = poll_foreign_above(node)
    {
        return Some(e);
    }
    let d = node.deadline()?;
    if !node.clock().passed(d) {
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
        let cc = cur.expect_cancel();
        let parents = [cur.parent().get(), cc.merged_with()];
        for canceler in parents.into_iter().flatten().filter_map(NodeRef::source) {
            let pc = canceler.expect_cancel();
            if let Some(b) = pc.bridge()
                && pc.is_open()
            {
                poll_bridge(canceler, b);
            }
            if let Some(m) = pc.moving()
                && pc.is_open()
            {
                poll_moving(canceler, m); // invariant 18
            }
            if let Some(Outcome { err, cause }) = pc.outcome_if_done() {
                propagate(node, err, cause);
                return node.expect_cancel().state_err();
            }
            if pc.is_under_foreign() {
                stack.push(canceler);
            }
        }
    }
    None
}

/// The lazy check of an open bridge (see [`Bridge`]): asks the foreign context (user code, no
/// lock held) and cancels the bridge with its answers if it says it is done. A relay is not
/// asked while the node feeding it is open: the foreign context's `done()` has not fired, and a
/// chain of wraps answers without going through every foreign context in it. Only the foreign
/// bridge at the bottom of its chain, if any, is checked then: if that one is done, its cancel
/// resolves the relays above it, this one included.
#[inline]
pub(super) fn poll_bridge(node: &Arc<Node>, b: &Bridge) -> Option<Error> {
    let feeder_open = b.relay
        && node
            .parent()
            .get()
            .and_then(NodeRef::source)
            .is_some_and(|feeder| feeder.expect_cancel().is_open());
    // Fast path, the usual wrapper of a live `Ctx`: one more atomic load than a standalone node.
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
        return node.expect_cancel().state_err();
    }
    let Outcome { err, cause } = bridge_outcome(node)?;
    propagate(node, err, cause);
    node.expect_cancel().state_err()
}

/// The lazy check of an open moving node (`err()`, a cancel, a walk's climb, its timer): ends
/// it if its deadline has passed. `true` if it is done now.
pub(super) fn poll_moving(node: &Arc<Node>, m: &Moving) -> bool {
    // A deadline the clock proves still ahead has not passed, whichever the span (a sealed one
    // has: it was sealed at or after it).
    if m.deadline().is_some_and(|d| node.clock().proves_ahead(d)) {
        return false;
    }
    let now = node.clock().now();
    let outcome = match m.span() {
        Span::Idle(_) => {
            if !m.seal_if_passed(now) {
                return false;
            }
            (Error::DeadlineExceeded, None)
        }
        Span::Grace(_) => {
            if m.deadline().is_none_or(|d| now < d) {
                return false;
            }
            let mut pending = m.pending();
            if pending.is_none() {
                // Not started, though the parent's deadline plus the grace period has passed:
                // the parent ended unobserved. Asking it ends it now, and its walk starts (or
                // ends) this grace period (invariant 19).
                if let Some(p) = node.parent().get().and_then(NodeRef::source) {
                    err(p);
                }
                if !node.expect_cancel().is_open() {
                    return true;
                }
                if m.deadline().is_none_or(|d| now < d) {
                    return false;
                }
                pending = m.pending();
            }
            let Some(outcome) = pending else {
                return false;
            };
            outcome
        }
    };
    let (err, cause) = outcome;
    if let Some(descendants) = propagate(node, err, cause) {
        trace::canceled(node, err, Site::CREATED, descendants);
    }
    true
}

// ===== deadlines =====

/// A new node whose deadline has already passed is born `DeadlineExceeded`.
#[inline]
pub(super) fn check_deadline(node: &Arc<Node>) {
    if let Some(d) = node.deadline()
        && node.clock().passed(d)
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
    let cause = owner.expect_cancel().deadline_cause();
    if let Some(descendants) = propagate(owner, Error::DeadlineExceeded, cause)
        && owner.expect_cancel().bridge().is_none()
    {
        // A bridge (its deadline is the foreign context's, expired here because the foreign context
        // had not said so yet) is no context of the user's: it has no name and no `with_*`
        // call to report.
        trace::canceled(owner, Error::DeadlineExceeded, Site::CREATED, descendants);
    }
    // If another thread is still propagating an end down to `start`, do not wait for it: give
    // `start` what that propagation will give it (`in_flight`).
    if !Arc::ptr_eq(owner, start)
        && start.expect_cancel().is_open()
        && let Some(Outcome { err, cause }) = in_flight(start, owner, d)
    {
        propagate(start, err, cause);
    }
}

/// The outcome that a propagation still on its way down gives `start`, open below the deadline
/// `owner` that `expire` has just ended: that of the nearest done canceler on the way up from
/// `start` to the owner (the nodes whose effective deadline is `d`). So a parent canceled
/// explicitly before the deadline passed, whose walk has not reached `start` yet, gives it
/// `Canceled`, as it will, and not the owner's `DeadlineExceeded` (as in Go, where a child has
/// only its parent's word); with no such parent, the owner's outcome, which is `Canceled` too if
/// an explicit cancel reached the owner before its deadline did.
fn in_flight(start: &Arc<Node>, owner: &Arc<Node>, d: Instant) -> Option<Outcome> {
    let mut cur = start;
    while let Some(up) = next_with_deadline(cur, d) {
        if let Some(outcome) = up.expect_cancel().outcome() {
            return Some(outcome);
        }
        if Arc::ptr_eq(up, owner) {
            return None; // the owner is open: nothing in flight
        }
        cur = up;
    }
    // Not reached (`deadline_owner` found the owner by this same climb); its answer all the same.
    owner.expect_cancel().outcome()
}

// ===== timers =====

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
        let c = cur.expect_cancel();
        if c.is_timed() {
            return; // armed, or being armed, from here up
        }
        c.set_timed();
        if c.own_deadline() == Some(d) {
            break cur;
        }
        match next_with_deadline(cur, d) {
            Some(up) => cur = up,
            None => break node, // no cancel node owns it (a foreign deadline): `node` does
        }
    };
    let oc = owner.expect_cancel();
    {
        let g = oc.lock();
        if !oc.is_open() || g.dependents_ref().is_some_and(|b| b.timer.is_some()) {
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
            let _via = crate::after_threads::ViaClock::enter(clock.clone());
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
    let c = node.expect_cancel();
    #[cfg(feature = "test-util")]
    counters::TIMERS_ARMED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // A timer woken on a shared thread hands its after-funcs to the pool; a clock whose timers
    // are woken by the caller's own thread keeps them there (`Clock::after_funcs_inline`).
    let watch = Watcher::start(!node.clock().get().after_funcs_inline(), fut);
    let lost = {
        // invariant 10: the lock taken with `HAS_DEPENDENTS` set if the node is open, before the
        // dependents part gains the timer
        let (mut g, open) = c.lock_for_dependents();
        if open && g.dependents().timer.is_none() {
            g.dependents().timer = Some(watch);
            None
        } else {
            Some(watch) // done meanwhile, or another arm won: release ours
        }
    };
    if let Some(w) = lost {
        w.cancel();
    }
}

/// The parent of the grace node `node` is done with `err` and `cause`: records them and
/// starts the grace period — from the parent's deadline if that is what ended it (noticed
/// late, the period still counts from there), from now if the parent was canceled or was
/// done before this node was made (`born`). Returns the outcome if the period is over already
/// (zero, or elapsed while nobody looked): the caller ends `node` with it now, in the same
/// propagation. Else arms the node's timer. Call with no lock held (invariant 19).
pub(super) fn start_grace(
    node: &Arc<Node>,
    err: Error,
    cause: Option<SharedCause>,
    born: bool,
) -> Option<Outcome> {
    let m = node.expect_cancel().moving()?;
    let &Span::Grace(grace) = m.span() else {
        return None;
    };
    let now = node.clock().now();
    let start = match node.parent().get().and_then(NodeRef::deadline) {
        Some(d) if !born && err == Error::DeadlineExceeded && d <= now => d,
        _ => now,
    };
    let end = start.checked_add(grace);
    m.start(err, cause.clone(), end);
    if end.is_some_and(|e| e <= now) {
        return Some(Outcome { err, cause });
    }
    if end.is_some() {
        arm_moving_timer(node);
    }
    None
}

/// Arms the one timer of a moving node: an idle node's at its birth, a grace node's when its
/// period starts. When it fires it re-reads the deadline and sleeps again if a `touch()` moved
/// it (so `touch` re-arms nothing); it holds its node weakly and ends with it.
pub(super) fn arm_moving_timer(node: &Arc<Node>) {
    let weak = Arc::downgrade(node);
    // Owned: the future may outlive every node of the tree (invariant 12).
    let clock = node.clock().to_shared();
    let fut = async move {
        loop {
            let d = {
                let Some(node) = weak.upgrade() else { return };
                let c = node.expect_cancel();
                match c.moving().and_then(Moving::deadline) {
                    Some(d) if c.is_open() => d,
                    _ => return,
                }
            };
            // Never early: sleep again if the timer woke before the clock reached `d`.
            if clock.now() < d {
                clock.get().sleep_until(d).await;
                continue;
            }
            let Some(node) = weak.upgrade() else { return };
            let _via = crate::after_threads::ViaClock::enter(clock.clone());
            let c = node.expect_cancel();
            match c.moving() {
                Some(m) if c.is_open() => {
                    if poll_moving(&node, m) {
                        return;
                    }
                }
                _ => return,
            }
            // Touched meanwhile: sleep until the later deadline.
        }
    };
    install_timer(node, fut);
}
