//! What the handles call: an explicit cancel (`cancel`, `cancel_dropped`: the lock-free paths of
//! invariants 10, 11 and 17, else `propagate`), and registering and removing waiters and
//! after-funcs.

use std::mem;
use std::sync::atomic::{Ordering, fence};
use std::task::Waker;

use super::arc::{Arc, Weak};
use super::end::{expire, poll_moving, propagate};
use super::node::{Entry, Node};
use super::slots::{insert_entry, insert_waiter, refresh_waiter, remove_waiter};
use super::state::{LockFree, Standalone, handle_dropped};
use super::trace::{self, Site};
use super::walk::leave_marked;
use super::word::Slot;
use crate::after_threads::AfterFn;
use crate::{Cause, Error};

// ===== canceling =====

/// An explicit cancel (a handle called or dropped, from `at`). If the node's deadline has passed
/// it is `DeadlineExceeded` instead, even if nobody looked before.
#[inline(always)]
pub(crate) fn cancel(node: &Arc<Node>, cause: Option<Cause>, at: Site) {
    // Fastest path, the usual `cancel()` of a child of a root that nobody waited on: one
    // compare-exchange, no lock (invariant 10), nothing to leave; for a timed one, after a
    // coarse clock reading that proves its deadline ahead (invariant 11).
    // (Matched apart so that no `cause` is left to drop after the exchange.)
    let Some(cause) = cause else {
        match node.expect_cancel().cancel_standalone(false) {
            Standalone::Marked => trace::canceled(node, Error::Canceled, at, 0),
            Standalone::Timed => cancel_timed::<false>(node, at),
            Standalone::General => cancel_general::<false>(node, None, at),
        }
        return;
    };
    cancel_general::<false>(node, Some(cause), at);
}

/// The cancel of a node whose last handle was dropped: `cancel` with the cause
/// `HandleDropped`, which costs what a cause-less cancel does (invariant 17). The event names
/// the `with_*` call that made the handle.
#[inline(always)]
pub(crate) fn cancel_dropped(node: &Arc<Node>) {
    match node.expect_cancel().cancel_standalone(true) {
        Standalone::Marked => trace::canceled(node, Error::Canceled, Site::CREATED, 0),
        Standalone::Timed => cancel_timed::<true>(node, Site::CREATED),
        Standalone::General => cancel_general::<true>(node, None, Site::CREATED),
    }
}

/// The cause-less cancel of a standalone node with a deadline of its own (`with_timeout` of a
/// root): its one compare-exchange once a coarse clock reading proves the deadline ahead
/// (invariant 11), else the general path. Out of line, so that the others' fast path saves no
/// registers for it.
#[inline(never)]
fn cancel_timed<const DROPPED: bool>(node: &Arc<Node>, at: Site) {
    if node.expect_cancel().cancel_timed(node.clock(), DROPPED) {
        trace::canceled(node, Error::Canceled, at, 0);
    } else {
        cancel_general::<DROPPED>(node, None, at);
    }
}

/// Marks `node` canceled if nobody but the caller, who holds `node`, can ever observe it
/// (invariant 21): the caller's is the only strong reference, no weak one exists, and nothing
/// has depended on it. `true` if so.
#[inline(always)]
fn cancel_unseen(node: &Arc<Node>, dropped: bool) -> bool {
    // Off where a cancel is seen all the same (its event), and under loom, which does not
    // model `Arc`'s counts.
    if cfg!(any(loom, feature = "tracing")) {
        return false;
    }
    // Weak first: a weak reference upgraded elsewhere is counted strong before it is dropped,
    // and the fence makes that count visible to the second load (and every access made through
    // a reference before its release, to what follows).
    if Arc::weak_count(node) != 0 {
        return false;
    }
    fence(Ordering::Acquire);
    if Arc::strong_count(node) != 1 {
        return false;
    }
    fence(Ordering::Acquire);
    node.expect_cancel().mark_unseen(dropped)
}

/// `cancel` of any other node, or of one that changed meanwhile. `DROPPED`: the drop of the
/// last handle (then `cause` is `None`); a constant, so that neither path pays for the other.
fn cancel_general<const DROPPED: bool>(node: &Arc<Node>, cause: Option<Cause>, at: Site) {
    let c = node.expect_cancel();
    if !c.is_open() {
        return;
    }
    // A cancel nobody can see (invariant 21): no clock read, no cause, no lock. Asked where it
    // saves one of those (a deadline or bridge to check, a cause to keep); past the standalone
    // nodes' compare-exchange, which costs no more; and never of an attached node (its
    // canceler holds it weakly), the usual one without a deadline.
    if (c.needs_check() || cause.is_some()) && cancel_unseen(node, DROPPED) {
        return;
    }
    if c.needs_check() && expired_first(node) {
        return;
    }
    // Fast path, the usual `cancel()`: no cause, nothing depending on the node. One
    // compare-exchange, no lock (invariant 10).
    if cause.is_none() {
        match c.finish_lock_free(Error::Canceled, DROPPED) {
            LockFree::Marked => {
                leave_marked(node);
                // Invariant 25: the child in the first-child word, taken as the word closes,
                // is canceled with what it inherits.
                let below = match c.close_first().and_then(Weak::into_arc) {
                    Some(child) => {
                        let cause = if DROPPED { Some(handle_dropped()) } else { None };
                        propagate(&child, Error::Canceled, cause).map_or(0, |n| n + 1)
                    }
                    None => 0,
                };
                trace::canceled(node, Error::Canceled, at, below);
                return;
            }
            LockFree::WasDone => return,
            LockFree::HasDependents => {}
        }
    }
    // Dependents: under the lock the cause is an ordinary one, which the children inherit.
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
    let c = node.expect_cancel();
    if let Some(m) = c.moving()
        && poll_moving(node, m)
    {
        return true;
    }
    if let Some(d) = node.deadline()
        && node.clock().passed(d)
    {
        expire(node);
        return true;
    }
    false
}

// ===== waiting =====

/// What registering a waiter found.
pub(crate) enum Registered {
    Done(Error),
    Waiting { arm: bool },
}

/// Registers (or refreshes) `waker` at `*key` on the cancel node `node`.
pub(crate) fn register_waker(node: &Arc<Node>, key: &mut Option<Slot>, waker: &Waker) -> Registered {
    let c = node.expect_cancel();
    // The waker is cloned before locking: a clone is the executor's code, and none runs under
    // our lock. A first registration stores it; a re-poll whose task moved swaps it in. What
    // is left over — the replaced waker, or the clone not needed — is dropped after unlocking
    // (invariant 5).
    let new = waker.clone();
    let (mut g, open) = c.lock_for_dependents();
    if !open {
        drop(g);
        drop(new);
        if let Some(k) = key.take() {
            drop(remove_waiter(c, k)); // invariant 26: ours, if the cancel left it
        }
        return Registered::Done(
            c.state_err()
                .expect("ctx-core: internal error: done without error"),
        );
    }
    let has_deadline = node.deadline().is_some();
    let spare = match *key {
        // A node with a deadline keeps whether its timer was asked for in its dependents part:
        // its waiters go there. Any other's first waiter stays inline (invariant 23).
        None if has_deadline => {
            *key = Some(insert_entry(&mut g, Entry::Waiter(new)));
            None
        }
        None => {
            *key = Some(insert_waiter(&mut g, new));
            None
        }
        Some(k) => Some(refresh_waiter(&mut g, k, new)),
    };
    let arm = has_deadline && !mem::replace(&mut g.dependents().timer_requested, true);
    drop(g);
    drop(spare);
    Registered::Waiting { arm }
}

/// Removes the waker at `key`: from the node's waiters if it is open, else from the wakers its
/// cancel left for their `Done`s (invariant 26), if it did.
pub(crate) fn unregister_waker(node: &Arc<Node>, key: Slot) {
    drop(remove_waiter(node.expect_cancel(), key));
}

/// Registers an after-func; returns its key, or gives `f` back if the node is done.
pub(crate) fn register_after(node: &Arc<Node>, f: AfterFn) -> Result<(Slot, bool), AfterFn> {
    let c = node.expect_cancel();
    let (mut g, open) = c.lock_for_dependents();
    if !open {
        return Err(f);
    }
    let key = insert_entry(&mut g, Entry::After(f));
    let has_deadline = node.deadline().is_some();
    let busy = g.dependents();
    busy.after_count += 1;
    if busy.keep_alive.is_none() {
        busy.keep_alive = Some(node.clone()); // invariant 7
    }
    let arm = has_deadline && !mem::replace(&mut busy.timer_requested, true);
    Ok((key, arm))
}

/// Removes the after-func at `key`; `true` if it was still pending (so it will never run).
pub(crate) fn unregister_after(node: &Arc<Node>, key: Slot) -> bool {
    let c = node.expect_cancel();
    if !c.is_open() {
        return false; // its after-funcs were taken when it was marked (invariant 3)
    }
    let (f, keep) = {
        let mut g = c.lock();
        if !c.is_open() {
            return false;
        }
        let Some(busy) = g.dependents_mut() else {
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
