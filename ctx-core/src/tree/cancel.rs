//! Canceling: the walk that marks a subtree done (`cancel`, `propagate`, `walk`), and what it
//! settles afterwards: waking the waiters and running the after-funcs registered here.

use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use super::attach::{entry_mut, insert_entry, leave_canceler, remove_entry};
use super::deadline::expire;
use super::foreign::bridge_outcome;
use super::merge;
use super::moving;
use super::node::{Busy, CancelNode, Entry, Locked, Node, ThinCause};
use super::state::{LockFree, Outcome, Slot, handle_dropped};
use super::trace::{self, Site};
use crate::loom::lock;
use crate::pool::{self, AfterFn};
use crate::{Cause, Error};

// ===== canceling =====

/// An explicit cancel (a handle called or dropped, from `at`). If the node's deadline has passed
/// it is `DeadlineExceeded` instead, even if nobody looked before.
#[inline]
pub(crate) fn cancel(node: &Arc<Node>, cause: Option<Cause>, at: Site) {
    // Fastest path, the usual `cancel()` of a child of a root that nobody waited on: one
    // compare-exchange, no lock (invariant 10), nothing to leave.
    // (Matched apart so that no `cause` is left to drop after the exchange.)
    let Some(cause) = cause else {
        if node.cancel_node().cancel_plain(false) {
            trace::canceled(node, Error::Canceled, at, 0);
        } else {
            cancel_linked::<false>(node, None, at);
        }
        return;
    };
    cancel_linked::<false>(node, Some(cause), at);
}

/// The cancel of a node whose last handle was dropped: `cancel` with the cause
/// `HandleDropped`, which costs what a cause-less cancel does (invariant 17). The event names
/// the `with_*` call that made the handle.
#[inline]
pub(crate) fn cancel_dropped(node: &Arc<Node>) {
    if node.cancel_node().cancel_plain(true) {
        trace::canceled(node, Error::Canceled, Site::CREATED, 0);
    } else {
        cancel_linked::<true>(node, None, Site::CREATED);
    }
}

/// `cancel` of any other node, or of one that changed meanwhile. `DROPPED`: the drop of the
/// last handle (then `cause` is `None`); a constant, so that neither path pays for the other.
fn cancel_linked<const DROPPED: bool>(node: &Arc<Node>, cause: Option<Cause>, at: Site) {
    let c = node.cancel_node();
    if !c.is_open() {
        return;
    }
    if c.looks_further() && expired_first(node) {
        return;
    }
    // Fast path, the usual `cancel()`: no cause, nothing depending on the node. One
    // compare-exchange, no lock (invariant 10).
    if cause.is_none() {
        match c.finish_lock_free(Error::Canceled, DROPPED) {
            LockFree::Marked => {
                leave_marked(node);
                trace::canceled(node, Error::Canceled, at, 0);
                return;
            }
            LockFree::WasDone => return,
            LockFree::Busy => {}
        }
    }
    // Busy: under the lock the cause is an ordinary one, which the children inherit.
    let cause = match cause {
        Some(cause) => Some(Arc::new(cause)),
        None if DROPPED => Some(handle_dropped()),
        None => None,
    };
    if let Some(descendants) = propagate(node, Error::Canceled, cause) {
        trace::canceled(node, Error::Canceled, at, descendants);
    }
}

/// A cancel of a node with a deadline (or a bridge): if the deadline has passed, the node
/// expires instead (`true`). A moving deadline is asked on its word (invariant 18).
#[inline(never)]
fn expired_first(node: &Arc<Node>) -> bool {
    let c = node.cancel_node();
    if let Some(m) = c.moving()
        && moving::poll(node, m)
    {
        return true;
    }
    if let Some(d) = node.deadline()
        && node.clock().now() >= d
    {
        expire(node);
        return true;
    }
    false
}

/// A walk's list of relays to resolve afterwards (or of nodes to visit), with what they inherit.
type Relays = Vec<(Arc<Node>, Error, Option<ThinCause>)>;

/// What a marked node gave up (to be woken and run once every lock is released), and the node.
type Settle = Vec<(Option<Box<Busy>>, Option<Arc<Node>>)>;

/// Marks `top` and every open node below it done, then wakes and runs what they held. Returns
/// how many nodes below `top` it marked, or `None` if `top` was done already.
///
/// A descendant whose own deadline has already passed becomes `DeadlineExceeded` with its own
/// cause rather than taking its parent's error: its timer would have fired first.
///
/// Relays (bridges behind `Ctx::wrap` of a custom context whose `done()` is one of these nodes)
/// are not marked by the walk: they take the custom context's own answers, which only user code
/// can give. They are resolved here afterwards, one by one with no lock held, and the relays
/// found below them join the same list: a chain of a million wraps needs no deep stack.
///
/// The count includes the relays resolved here and the nodes below them (a relay is the cancel
/// node of a wrap, which is done with it).
pub(crate) fn propagate(top: &Arc<Node>, err: Error, cause: Option<ThinCause>) -> Option<usize> {
    let mut relays: Relays = Vec::new();
    let mut afters = Afters::default();
    let mut descendants = walk(top, err, cause, &mut relays, &mut afters);
    if descendants.is_some() {
        while let Some((relay, err, cause)) = relays.pop() {
            let Outcome { err, cause } = if moving::is_grace(relay.cancel_node()) {
                // Invariant 19: its parent's end starts its grace period; it ends now only if
                // that period is over already.
                match moving::start_grace(&relay, err, cause, false) {
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
    descendants
}

/// `propagate` without the relays: collects them into `relays`. Returns how many nodes below
/// `top` it marked, or `None` if `top` was done already.
fn walk(
    top: &Arc<Node>,
    err: Error,
    cause: Option<ThinCause>,
    relays: &mut Relays,
    afters: &mut Afters,
) -> Option<usize> {
    let c = top.cancel_node();
    // Fast path, a node that never had anything depend on it and no cause to publish: one
    // compare-exchange, no lock (invariant 10). Whoever marks a node takes its slots.
    if cause.is_none() {
        match c.finish_lock_free(err, false) {
            LockFree::Marked => {
                leave_marked(top);
                return Some(0);
            }
            LockFree::WasDone => return None,
            LockFree::Busy => {}
        }
    }
    let mut g = lock(&c.inner);
    let mut now: Option<Instant> = None;
    let has_children = loop {
        if !c.is_open() {
            return None; // whoever marked it took both slots (invariants 4 and 9)
        }
        let has_children = g
            .busy
            .as_ref()
            .is_some_and(|b| b.entries.iter().any(|(_, e)| matches!(e, Entry::Child(_))));
        if !has_children || now.is_some() {
            break has_children;
        }
        // The walk compares descendants' own deadlines with the clock. The clock is user code:
        // read it now, with no lock held and before anything has changed, so that a clock that
        // panics leaves the tree exactly as it was (a later cancel completes it) instead of
        // half-canceled. Then look again: the node may have changed while unlocked.
        drop(g);
        now = Some(top.clock().now());
        g = lock(&c.inner);
    };
    let for_children = if has_children { cause.clone() } else { None };
    let Some(taken) = mark_done_and_take(c, &mut g, err, cause) else {
        return None; // a lock-free cancel won (invariant 10) and took the slots
    };
    drop(g);
    let top_slot = c.slot.take();
    let other_slot = merge::take_slot(c); // invariant 9

    if !has_children {
        // A leaf with waiters or after-funcs: nothing to walk and no lists to build. Every
        // lock is released (invariant 5).
        leave_canceler(top.parent().get(), top_slot);
        merge::leave_other(c, other_slot);
        wake(taken, afters);
        return Some(0);
    }

    // Mark the whole subtree first, with an explicit stack (invariant 6); settle afterwards,
    // so no waker or after-func runs while part of the subtree is still open.
    let mut stack: Relays = Vec::new();
    let mut done: Settle = Vec::new();
    let now = now.expect("ctx-core: internal error: clock not read before the walk");
    let mut merged = Vec::new();
    done.push((push_children(taken, err, &for_children, &mut stack), None));
    while let Some((node, err, cause)) = stack.pop() {
        let c = node.cancel_node();
        if c.resolved_after_walk() {
            // resolved by `propagate`, after this walk (a grace node: invariant 19)
            relays.push((node, err, cause));
            continue;
        }
        let (err, cause) = match c.own_deadline() {
            Some(d) if now >= d => (Error::DeadlineExceeded, c.deadline_cause()),
            _ => (err, cause),
        };
        let Outcome { err, cause } = merge::deadline_first(&node, now, err, cause);
        let taken = {
            let mut g = lock(&c.inner);
            let Some(taken) = mark_done_and_take(c, &mut g, err, cause.clone()) else {
                continue; // done already; whoever marked it took its slots
            };
            drop(g);
            if c.merge().is_some() {
                // Reached through one of its two cancelers: it leaves both (invariant 9).
                merged.push(merge::take_slots(&node));
            } else {
                c.slot.take(); // our canceler's slab is gone (invariant 3)
            }
            taken
        };
        done.push((push_children(taken, err, &cause, &mut stack), Some(node)));
    }

    // Every lock is released (invariant 5). Leave the canceler, then wake and run.
    leave_canceler(top.parent().get(), top_slot);
    merge::leave_other(c, other_slot);
    merge::leave_all(merged);
    let descendants = done.len() - 1;
    for (taken, node) in done {
        wake(taken, afters);
        drop(node);
    }
    Some(descendants)
}

/// What a node marked done without its lock gives back: its slots (invariants 4 and 9).
#[inline]
fn leave_marked(node: &Arc<Node>) {
    let c = node.cancel_node();
    leave_canceler(node.parent().get(), c.slot.take());
    if c.cold.is_some() {
        merge::leave_other(c, merge::take_slot(c));
    }
}

/// Wakes a waiter. A panicking waker (an executor's bug) must not leave the other waiters
/// asleep or the after-funcs unrun: it is contained like an after-func's panic.
fn wake_one(w: Waker) {
    let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
}

/// Runs an after-func: here, or on a pool thread when this thread fires a timer or serves the
/// watcher (where one that blocks would stall every other deadline; see pool.rs).
pub(crate) fn run_after(f: AfterFn) {
    if pool::deferring() {
        pool::defer(f, run_after_here);
    } else {
        run_after_here(f);
    }
}

/// Runs an after-func on this thread. A panic is contained: the panic hook has already
/// reported it (as for a panicking thread), the rest of the after-funcs still run, and the tree
/// is fully canceled before any of them starts.
fn run_after_here(f: AfterFn) {
    let _ = catch_unwind(AssertUnwindSafe(f));
}

/// Marks one node done under its lock (invariant 2) and takes what depended on it (woken and
/// run after every lock is released, invariant 5). `None` if it was done already (invariant 10:
/// a lock-free cancel may have won).
fn mark_done_and_take(
    c: &CancelNode,
    g: &mut Locked,
    err: Error,
    cause: Option<ThinCause>,
) -> Option<Option<Box<Busy>>> {
    if !c.mark(err) {
        return None;
    }
    g.cause = cause;
    Some(g.busy.take())
}

/// Moves the children onto the walk's stack, with the error and cause they inherit.
fn push_children(
    mut taken: Option<Box<Busy>>,
    err: Error,
    cause: &Option<ThinCause>,
    stack: &mut Relays,
) -> Option<Box<Busy>> {
    if let Some(busy) = taken.as_mut() {
        busy.entries.retain(|_, entry| match entry {
            Entry::Child(weak) => {
                // A child that fails to upgrade is being dropped; its drop finds us done and
                // skips the slab (invariant 3).
                if let Some(child) = weak.upgrade() {
                    stack.push((child, err, cause.clone()));
                }
                false
            }
            _ => true,
        });
    }
    taken
}

/// The after-funcs a walk took, each node's followed by the node itself if they kept it alive
/// (invariant 7): run by `propagate` once every waiter of the canceled subtree is awake
/// (invariant 13). One list, empty (no allocation) in the usual cancel.
#[derive(Default)]
struct Afters(Vec<Pending>);

enum Pending {
    Run(AfterFn),
    Release(Arc<Node>),
}

impl Afters {
    /// Runs the after-funcs in the order the walk met them (top first, each node's in the
    /// order they were registered), letting each node go after its own.
    #[inline]
    fn run(self) {
        if self.0.is_empty() {
            return;
        }
        for p in self.0 {
            match p {
                Pending::Run(f) => run_after(f),
                Pending::Release(node) => drop(node),
            }
        }
    }
}

/// Stops the timer and the feed and wakes the waiters of a node marked done; its after-funcs
/// go to `afters`, to run once the whole subtree is awake (children, if any are left, are
/// simply released).
fn wake(taken: Option<Box<Busy>>, afters: &mut Afters) {
    let Some(busy) = taken else { return };
    let Busy {
        entries,
        keep_alive,
        timer,
        foreign,
        ..
    } = *busy;
    if let Some(w) = timer {
        w.cancel();
    }
    if let Some(feed) = foreign {
        feed.cancel();
    }
    for (_, entry) in entries {
        match entry {
            Entry::Waiter(w) => wake_one(w),
            Entry::After(f) => afters.0.push(Pending::Run(f)),
            Entry::Child(_) => {}
        }
    }
    if let Some(node) = keep_alive {
        afters.0.push(Pending::Release(node));
    }
}

// ===== waiting =====

/// What registering a waiter found.
pub(crate) enum Registered {
    Done(Error),
    Waiting { arm: bool },
}

/// Registers (or refreshes) `waker` at `*key` on the cancel node `node`.
pub(crate) fn register_waker(node: &Arc<Node>, key: &mut Option<Slot>, waker: &Waker) -> Registered {
    let c = node.cancel_node();
    // A first registration clones the waker before locking; a re-poll with another waker
    // (rare: the task moved) swaps it under the lock. Only clones happen there, never a wake,
    // and the replaced waker is dropped after unlocking (invariant 5).
    let new = key.is_none().then(|| waker.clone());
    let mut old = None;
    let mut g = lock(&c.inner);
    if !c.claim() {
        drop(g);
        drop(new);
        *key = None;
        return Registered::Done(
            c.state_err()
                .expect("ctx-core: internal error: done without error"),
        );
    }
    match new {
        Some(w) => *key = Some(insert_entry(&mut g, Entry::Waiter(w))),
        None => {
            if let Some(Entry::Waiter(slot)) = key.and_then(|k| entry_mut(&mut g, k))
                && !slot.will_wake(waker)
            {
                old = Some(mem::replace(slot, waker.clone()));
            }
        }
    }
    let arm = node.deadline().is_some() && !mem::replace(&mut g.busy().timer_requested, true);
    drop(g);
    drop(old);
    Registered::Waiting { arm }
}

/// Removes the waker at `key`, if the node has not taken it already.
pub(crate) fn unregister_waker(node: &Arc<Node>, key: Slot) {
    drop(remove_entry(node.cancel_node(), key));
}

/// Registers an after-func; returns its key, or gives `f` back if the node is done.
pub(crate) fn register_after(node: &Arc<Node>, f: AfterFn) -> Result<(Slot, bool), AfterFn> {
    let c = node.cancel_node();
    let mut g = lock(&c.inner);
    if !c.claim() {
        return Err(f);
    }
    let key = insert_entry(&mut g, Entry::After(f));
    let has_deadline = node.deadline().is_some();
    let busy = g.busy();
    busy.after_count += 1;
    if busy.keep_alive.is_none() {
        busy.keep_alive = Some(node.clone()); // invariant 7
    }
    let arm = has_deadline && !mem::replace(&mut busy.timer_requested, true);
    Ok((key, arm))
}

/// Removes the after-func at `key`; `true` if it was still pending (so it will never run).
pub(crate) fn unregister_after(node: &Arc<Node>, key: Slot) -> bool {
    let c = node.cancel_node();
    let (f, keep) = {
        let mut g = lock(&c.inner);
        if !c.is_open() {
            return false;
        }
        let Some(busy) = g.busy.as_mut() else {
            return false;
        };
        let f = busy.entries.try_remove(key.key());
        if f.is_some() {
            busy.after_count -= 1;
        }
        let keep = if busy.after_count == 0 {
            busy.keep_alive.take()
        } else {
            None
        };
        (f, keep)
    };
    let stopped = f.is_some();
    drop(f); // user type: dropped after unlocking (invariant 5)
    drop(keep);
    stopped
}
