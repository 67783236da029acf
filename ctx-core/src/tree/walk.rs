//! The cancel walk: marking a node and every open node below it done (`walk`, a loop over the
//! list of nodes reached: invariant 6), and settling afterwards what they held — waking the
//! waiters, then running the after-funcs (`Afters`, invariant 13). What a walk needs to know
//! about deadlines on its way down (a descendant whose own deadline has passed, a merged node
//! whose other parent's has: `deadline_first`, `deadline_owner`) is here too, with the walk's
//! one reading of the clock (`WalkClock`, invariant 8). The walk collects what it must not mark
//! (relays, grace nodes) for `end::propagate`.

use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;
use std::time::Instant;

use smallvec::SmallVec;

use super::arc::{Arc, Weak};
use super::entries::Entries;
use super::lock::Guard;
use super::node::{CancelNode, Dependents, Entry, Guarded, Node, NodeRef, SharedCause, Taken};
use super::slots::{leave_all, leave_held, leave_other, take_slot, take_slots};
use super::spent::Spent;
use super::state::{LockFree, Outcome};
use crate::Error;
use crate::after_threads::{self, AfterFn};

/// A walk's list of relays to resolve afterwards (or of nodes to visit), with what they inherit.
pub(super) type Relays = Vec<(Arc<Node>, Error, Option<SharedCause>)>;

/// Every node a walk reaches below its top, in the order it reaches them, with the error and
/// cause it inherits: the walk visits them by index (breadth first), so each node is written
/// once and stays, to be released when the walk has settled. A few inline, so a small walk (a
/// node with a child or two, a short chain) allocates none.
type Reached = SmallVec<[Visit; 4]>;

/// A node the walk reached, with what it inherits (taken when it is visited).
struct Visit {
    node: Arc<Node>,
    err: Error,
    cause: Option<SharedCause>,
}

/// The dependents parts the walk took, to settle (wake, run) once every lock is released, each
/// with its node (`None`: the top; else its index in `Reached`); only nodes that had one (a leaf
/// or a chain's level has none).
type Settle = SmallVec<[(Option<usize>, Box<Dependents>); 2]>;

/// The walk's reading of its tree's clock, for the deadlines it meets (invariant 8). A user's
/// clock is read before the walk changes anything (`Fixed`); one that reads `Instant::now()`
/// (the system clock, or a clock that says so: `NodeClock::reads_instant`) as
/// `Instant::now()`, which is no user code (it neither panics nor blocks), when a deadline is
/// first met (`System`), so that a walk that meets none reads no clock.
enum WalkClock {
    Fixed(Instant),
    System(Option<Instant>),
}

impl WalkClock {
    #[inline]
    fn now(&mut self) -> Instant {
        match self {
            WalkClock::Fixed(now) => *now,
            WalkClock::System(now) => *now.get_or_insert_with(Instant::now),
        }
    }
}

/// `propagate` without the relays: collects them into `relays`. Returns how many nodes below
/// `top` it marked, or `None` if `top` was done already.
pub(super) fn walk(
    top: &Arc<Node>,
    err: Error,
    cause: Option<SharedCause>,
    relays: &mut Relays,
    afters: &mut Afters,
) -> Option<usize> {
    let c = top.expect_cancel();
    let mut now = top.clock().reads_instant().then_some(WalkClock::System(None));
    let cause_given = cause.is_some();
    let (taken, mut for_children, has_children) = 'top: {
        // Fast path, a node that never had anything depend on it and no cause to publish: one
        // compare-exchange, no lock (invariant 10). Whoever marks a node takes its slots.
        if cause.is_none() {
            if now.is_none() && c.has_first() {
                // A child in the first-child word (invariant 25) wants a user's clock read
                // before the first change, as children under the lock do (below).
                now = Some(WalkClock::Fixed(top.clock().now()));
            }
            match c.finish_lock_free(err, false) {
                LockFree::Marked => break 'top (Taken::Nothing, None, false),
                LockFree::WasDone => return None,
                LockFree::HasDependents => {}
            }
        }
        let mut g = c.lock();
        let has_children = loop {
            if !c.is_open() {
                return None; // whoever marked it took both slots (invariants 4 and 9)
            }
            let has_children = g.has_children();
            // A child in the first-child word (invariant 25) wants the clock too.
            if !(has_children || c.has_first()) || now.is_some() {
                break has_children;
            }
            // The walk compares descendants' own deadlines with the clock. A user's clock is
            // user code: read it now, with no lock held and before anything has changed, so that
            // a clock that panics leaves the tree exactly as it was (a later cancel completes it)
            // instead of half-canceled. Then look again: the node may have changed while
            // unlocked.
            drop(g);
            now = Some(WalkClock::Fixed(top.clock().now()));
            g = c.lock();
        };
        let for_children = if has_children || c.has_first() {
            cause.clone()
        } else {
            None
        };
        let Some(taken) = mark_done_and_take(c, &mut g, err, cause) else {
            return None; // a lock-free cancel won (invariant 10) and took the slots
        };
        drop(g);
        (taken, for_children, has_children)
    };
    // Invariant 25: the child in the first-child word, taken as the word closes.
    let mut first = c.close_first();
    if first.is_some() && cause_given && for_children.is_none() {
        // It came after the look above: its cause is the one the node keeps now.
        for_children = c.outcome().and_then(|o| o.cause);
    }
    if first.is_some() && now.is_none() {
        // It came after the look above, under a user's clock that was not read: it is walked
        // after this walk, which reads that clock before its own first change (invariant 8).
        if let Some(child) = first.take().and_then(Weak::into_arc) {
            relays.push((child, err, for_children.clone()));
        }
    }
    let top_slot = c.slot.take();
    let other_slot = take_slot(c); // invariant 9

    if !has_children && first.is_none() {
        // A leaf with waiters or after-funcs: nothing to walk and no lists to build. Every
        // lock is released (invariant 5).
        leave_held(top, top_slot);
        leave_other(c, other_slot);
        wake(c, taken, afters);
        return Some(0);
    }

    // Mark the whole subtree first, breadth first by index into the list of nodes reached
    // (a loop over the list, not a recursion: invariant 6); settle afterwards, so no waker or
    // after-func runs while part of the subtree is still open.
    let mut reached = Reached::new();
    let mut settle = Settle::new();
    let mut now = now.expect("ctx-core: internal error: clock not read before the walk");
    let mut merged = Vec::new();
    // The wakers of the leaves below that kept their one waiter inline (invariant 23: such a
    // node has no children).
    let mut wakers = Vec::new();
    if let Some(busy) = push_children(taken, err, &for_children, &mut reached, &mut wakers) {
        settle.push((None, busy));
    }
    push_first(first, err, &for_children, &mut reached);
    let mut marked = 0;
    let mut next = 0;
    while let Some(visit) = reached.get_mut(next) {
        next += 1;
        let node = &visit.node;
        let c = node.expect_cancel();
        let (err, cause) = (visit.err, visit.cause.take());
        if c.resolved_after_walk() {
            // resolved by `propagate`, after this walk (a grace node: invariant 19)
            relays.push((node.clone(), err, cause));
            continue;
        }
        let (err, cause) = match c.own_deadline() {
            Some(d) if now.now() >= d => (Error::DeadlineExceeded, c.deadline_cause()),
            _ => (err, cause),
        };
        let Outcome { err, cause } = deadline_first(node, &mut now, err, cause);
        // A node that nothing has ever depended on (a leaf: the usual child of a wide parent,
        // the end of a chain), with no cause to publish, is marked as the top is: one
        // compare-exchange, no lock (invariant 10). It holds nothing to take.
        let taken = match cause.is_none().then(|| c.finish_lock_free(err, false)) {
            Some(LockFree::Marked) => Taken::Nothing,
            Some(LockFree::WasDone) => continue, // whoever marked it took its slots
            Some(LockFree::HasDependents) | None => {
                let mut g = c.lock();
                let Some(taken) = mark_done_and_take(c, &mut g, err, cause.clone()) else {
                    continue; // done already; whoever marked it took its slots
                };
                taken
            }
        };
        marked += 1;
        let first = c.close_first(); // invariant 25
        // Whoever marked the node takes its slots (invariants 4 and 9); no lock is held.
        if c.merge().is_some() {
            // Reached through one of its two cancelers: it leaves both (invariant 9).
            merged.push(take_slots(node));
        } else {
            c.slot.take(); // our canceler's slab is gone (invariant 3)
        }
        if let Some(busy) = push_children(taken, err, &cause, &mut reached, &mut wakers) {
            settle.push((Some(next - 1), busy));
        }
        push_first(first, err, &cause, &mut reached);
    }

    // Every lock is released (invariant 5). Leave the canceler, then wake and run; the nodes
    // reached go last.
    leave_held(top, top_slot);
    leave_other(c, other_slot);
    leave_all(merged);
    for (at, busy) in settle {
        let owner = at.map_or(c, |i| reached[i].node.expect_cancel());
        wake_busy(owner, busy, afters);
    }
    if !wakers.is_empty() {
        wake_all(wakers);
    }
    drop(reached);
    Some(marked)
}

/// What a node marked done without its lock gives back: its slots (invariants 4 and 9).
#[inline]
pub(super) fn leave_marked(node: &Arc<Node>) {
    let c = node.expect_cancel();
    leave_held(node, c.slot.take());
    if c.merge().is_some() {
        leave_other(c, take_slot(c));
    }
}

/// Marks one node done under its lock (invariant 2) and takes what depended on it (woken and
/// run after every lock is released, invariant 5). `None` if it was done already (invariant 10:
/// a lock-free cancel may have won).
#[inline(always)]
fn mark_done_and_take(
    c: &CancelNode,
    g: &mut Guard<'_, Guarded>,
    err: Error,
    cause: Option<SharedCause>,
) -> Option<Taken> {
    if !c.mark(g, err) {
        return None;
    }
    Some(g.take(cause))
}

/// Appends the children to the nodes the walk reached, with the error and cause they inherit,
/// and an inline waiter to `wakers`; the dependents part left to settle (`wake_busy`). Their
/// entries stay in the slab, which nobody else can reach any more (it was taken under the lock)
/// and which `wake_busy` drops whole: removing them one by one would only keep a free list that
/// is never used again.
#[inline(always)]
fn push_children(
    taken: Taken,
    err: Error,
    cause: &Option<SharedCause>,
    reached: &mut Reached,
    wakers: &mut Vec<Waker>,
) -> Option<Box<Dependents>> {
    // A child that fails to upgrade is being dropped; its drop finds us done and skips the slab
    // (invariant 3).
    match taken {
        Taken::Nothing => None,
        // A chain's level: its one child, inline (invariant 22). Its `Weak` becomes the walk's
        // `Arc` of it (one read-modify-write), with every lock released.
        Taken::Child(weak) => {
            if let Some(node) = weak.into_arc() {
                reached.push(Visit {
                    node,
                    err,
                    cause: cause.clone(),
                });
            }
            None
        }
        // A leaf's one waiter, inline (invariant 23).
        Taken::Waiter(waker) => {
            keep_waker(wakers, waker);
            None
        }
        Taken::Busy(mut busy) => {
            reached.reserve(busy.children.places()); // one allocation for a wide node, not a series
            // Each child's `Weak` becomes the walk's `Arc` of it in one read-modify-write.
            busy.children.take_each(|weak| {
                if let Some(node) = weak.into_arc() {
                    reached.push(Visit {
                        node,
                        err,
                        cause: cause.clone(),
                    });
                }
            });
            Some(busy)
        }
    }
}

/// Appends the child taken from a node's first-child word (invariant 25), if any, to the nodes
/// the walk reached: its `Weak` becomes the walk's `Arc` of it in one read-modify-write.
#[inline(always)]
fn push_first(first: Option<Weak<Node>>, err: Error, cause: &Option<SharedCause>, reached: &mut Reached) {
    if let Some(node) = first.and_then(Weak::into_arc) {
        reached.push(Visit {
            node,
            err,
            cause: cause.clone(),
        });
    }
}

// ===== settling =====

/// Keeps the inline waiter (invariant 23) of a node below a walk's top, to be woken with the
/// rest once every lock is released. Out of line, as `wake_all`: most nodes a walk reaches have
/// none, and the walk's own loop stays as small as it was (measured: `cancel-chain/depth=1`).
#[cold]
#[inline(never)]
fn keep_waker(wakers: &mut Vec<Waker>, waker: Waker) {
    wakers.push(waker);
}

/// Wakes the inline waiters a walk kept (`keep_waker`), in the order it met them.
#[cold]
#[inline(never)]
fn wake_all(wakers: Vec<Waker>) {
    wakers.into_iter().for_each(wake_one);
}

/// What a dependents part given up (by a node marked done, or dying) leaves once its children's
/// `Weak`s are released and its timer and feed stopped: its waiters and after-funcs, and the
/// node's hold on itself (invariant 7), for the caller to settle or drop.
#[inline]
pub(super) fn stop_dependents(busy: Dependents) -> (Entries<Entry>, Option<Arc<Node>>) {
    let Dependents {
        children,
        entries,
        keep_alive,
        timer,
        feed,
        ..
    } = busy;
    children.release();
    if let Some(w) = timer {
        w.cancel();
    }
    if let Some(feed) = feed {
        feed.cancel();
    }
    (entries, keep_alive)
}

/// Stops the timer and the feed and wakes the waiters of a leaf marked done; its after-funcs go
/// to `afters`, to run once the whole subtree is awake.
#[inline(always)]
fn wake(c: &CancelNode, taken: Taken, afters: &mut Afters) {
    match taken {
        Taken::Nothing | Taken::Child(_) => {}
        Taken::Waiter(waker) => wake_one(waker), // invariant 23
        Taken::Busy(busy) => wake_busy(c, busy, afters),
    }
}

/// What a node (`c`, marked done) that had a dependents part settles once every lock is
/// released: its timer and feed stopped, its waiters woken, its after-funcs handed to `afters`
/// (its children's entries, if any are left, are simply released). Most nodes a walk marks had
/// no dependents part: the test is inlined, this is not. (It takes the box, which it frees,
/// rather than its contents, which the caller would copy out first.)
#[allow(clippy::boxed_local)]
fn wake_busy(c: &CancelNode, busy: Box<Dependents>, afters: &mut Afters) {
    let waiters = busy.entries.len() - busy.after_count as usize;
    let (entries, keep_alive) = stop_dependents(*busy);
    if waiters >= BY_REFERENCE && entries.spilled() {
        wake_by_reference(c, entries, afters);
    } else {
        for (_, entry) in entries {
            match entry {
                Entry::Waiter(w) => wake_one(w),
                Entry::After(f) => afters.0.push(Pending::Run(f)),
            }
        }
    }
    if let Some(node) = keep_alive {
        afters.0.push(Pending::Release(node));
    }
}

/// How many waiters a node needs for its cancel to wake them by reference (invariant 26): below
/// it, the `Spent`'s allocation and publication cost more than the waker drops they save
/// (measured, a cancel of `n` waiters with counting wakers: level at five, ahead from six).
const BY_REFERENCE: usize = 6;

/// Invariant 26: keeps the waiters' wakers in the node (`Spent`, made in the slab's own
/// allocation), then wakes each by reference, for its `Done` to take and drop on its own
/// thread. The cancel makes one read-modify-write of each waker's own (its wake) instead of two.
#[inline(never)]
fn wake_by_reference(c: &CancelNode, entries: Entries<Entry>, afters: &mut Afters) {
    let spent = Spent::new(entries.into_places().map(|place| match place {
        Some(Entry::Waiter(w)) => Some(w),
        Some(Entry::After(f)) => {
            afters.0.push(Pending::Run(f));
            None
        }
        None => None,
    }));
    // The word is closed (the walk closed it as it marked the node) or was never used (no
    // child publishes in a done node's word: invariant 25), so it keeps the wakers; were it
    // not, they would be woken here and dropped, as a cancel that wakes by value does.
    c.first.keep_and_wake(Box::new(spent));
}

/// Wakes a waiter. A panicking waker (an executor's bug) must not leave the other waiters
/// asleep or the after-funcs unrun: it is contained like an after-func's panic.
fn wake_one(w: Waker) {
    let _ = catch_unwind(AssertUnwindSafe(|| w.wake()));
}

/// The after-funcs a walk took, each node's followed by the node itself if they kept it alive
/// (invariant 7): run by `propagate` once every waiter of the canceled subtree is awake
/// (invariant 13). One list, empty (no allocation) in the usual cancel.
#[derive(Default)]
pub(super) struct Afters(Vec<Pending>);

enum Pending {
    Run(AfterFn),
    Release(Arc<Node>),
}

impl Afters {
    /// Runs the after-funcs in the order the walk met them (top first, each node's in the
    /// order they were registered), letting each node go after its own.
    #[inline]
    pub(super) fn run(self) {
        if self.0.capacity() == 0 {
            // Nothing was ever pushed, so nothing is allocated: skip the drop glue, an
            // out-of-line call (the usual cancel has no after-funcs).
            mem::forget(self);
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

/// Runs an after-func: here, or on a pool thread when this thread fires a timer or serves the
/// watcher (where one that blocks would stall every other deadline; see after_threads.rs).
pub(crate) fn run_after(f: AfterFn) {
    if after_threads::off_thread() {
        after_threads::hand_off(f, run_after_here);
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

// ===== deadlines met on the way down =====

/// What a cancel walk gives a merged node it reaches: `err` and `cause` from the canceler it came
/// through — unless the node's deadline, which may come from its *other* parent, has passed
/// already. Then the owner of that deadline would have been first (its timer would have
/// fired), so the node is `DeadlineExceeded` with the owner's cause, as a node whose own
/// deadline has passed is in the walk. Other nodes: unchanged.
///
/// `now` is the walk's one reading of the clock, taken before it changed anything or, on the
/// system clock, when first needed (invariant 8 of `tree/mod.rs`): no user code runs here. It
/// is the clock of the tree the cancel came from, so a deadline owned in the other tree of a
/// merge on another clock is left to that tree (invariant 15).
#[inline]
fn deadline_first(node: &Arc<Node>, now: &mut WalkClock, err: Error, cause: Option<SharedCause>) -> Outcome {
    let c = node.expect_cancel();
    let Some(d) = node.deadline().filter(|_| c.merge().is_some()) else {
        return Outcome { err, cause };
    };
    if now.now() < d {
        return Outcome { err, cause };
    }
    // The owner, found as `expire` finds it; none above (a foreign deadline): no cause.
    let owner = deadline_owner(node, d);
    // Invariant 15: `now` is this tree's clock. An owner on another clock (the other tree of a
    // merge) is judged only on its own, which the walk may not read (invariant 8): its own
    // timer or lazy check will say when it passes. Until then the canceler's answer stands.
    if owner.is_some_and(|o| !o.clock().same(node.clock())) {
        return Outcome { err, cause };
    }
    let cause = owner.and_then(|o| o.expect_cancel().deadline_cause());
    Outcome {
        err: Error::DeadlineExceeded,
        cause,
    }
}

/// The node that owns the deadline `d` of `start`: the nearest cancel node at or above it whose
/// own deadline is `d` (through either parent of a merged node, see `next_with_deadline`).
/// `None` when no cancel node owns it (the deadline came from a foreign context).
#[inline]
pub(super) fn deadline_owner(start: &Arc<Node>, d: Instant) -> Option<&Arc<Node>> {
    let mut cur = start;
    loop {
        if cur.expect_cancel().own_deadline() == Some(d) {
            return Some(cur);
        }
        cur = next_with_deadline(cur, d)?;
    }
}

/// The next cancel node above `cur` whose effective deadline is `d`: through the first parent,
/// else (for a merged node) through the second. Used to find the owner of a deadline.
#[inline]
pub(super) fn next_with_deadline(cur: &Arc<Node>, d: Instant) -> Option<&Arc<Node>> {
    fn via(p: Option<&NodeRef>, d: Instant) -> Option<&Arc<Node>> {
        p.and_then(NodeRef::source).filter(|n| n.deadline() == Some(d))
    }
    via(cur.parent().get(), d).or_else(|| via(cur.expect_cancel().merged_with(), d))
}
