//! Nodes: what a node holds (`Node`, `Kind`, `CancelNode` and the part its lock guards,
//! `Locked`), how a cancel node attaches to its parent's canceler and leaves it, and how a node
//! is dropped.

use std::any::{Any, TypeId};
use std::mem;
use std::sync::{Arc, Weak};
use std::task::Waker;
use std::time::Instant;

use slab::Slab;

use super::cancel::propagate;
#[cfg(feature = "test-util")]
use super::counters;
use super::deadline::check_deadline;
use super::foreign::{Bridge, Feed, bridge_outcome, drop_custom, placeholder, poll_bridge};
use super::merge;
use crate::clock::ClockRef;
use crate::loom::{AtomicU8, AtomicUsize, Mutex, Ordering, lock, with_mut};
use crate::watch::Watch;
use crate::{Cause, Context, Ctx, Error};

pub(crate) const NO_SLOT: usize = usize::MAX;

pub(super) const OPEN: u8 = 0;
pub(super) const CANCELED: u8 = 1;
pub(super) const DEADLINE: u8 = 2;

#[inline]
pub(super) fn state_of(err: Error) -> u8 {
    match err {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE,
    }
}

pub(crate) type AfterFn = Box<dyn FnOnce() + Send + 'static>;

/// What a cancel node holds for the time it is open.
pub(super) enum Entry {
    /// A cancel node attached below this one (held weakly: it frees itself when dropped).
    Child(Weak<Node>),
    /// The waker of a pending `Done`.
    Waiter(Waker),
    /// A registered after-func.
    After(AfterFn),
}

// ===== Node =====

pub(crate) struct Node {
    /// Set once at creation; taken only while the node is being dropped (iterative unlink).
    /// `None` for a root, and for a child of the process-wide `background()`/`todo()` (which
    /// has no values, never ends and is never dropped: holding it would only bump a shared
    /// reference count on every derivation); `static_parent` then says which.
    pub(crate) parent: Option<Ctx>,
    /// The process-wide root this node hangs from directly, if any (for `Display`).
    pub(crate) static_parent: StaticParent,
    /// The root's clock, inherited by every node.
    pub(crate) clock: ClockRef,
    /// The effective deadline: the earliest of this node's and its ancestors'. Immutable.
    pub(crate) deadline: Option<Instant>,
    pub(crate) kind: Kind,
}

// A panic cannot leave a node half-changed for code that catches it: every state change is made
// whole under one lock (which ignores poisoning) or by one atomic store, no user code runs under
// a lock, and a cancel reads the clock before it changes anything. What the compiler cannot see
// through are the user's values, custom contexts, clocks and callbacks (`dyn` types); they are
// only shared by `&` and are `Sync`. So `Ctx`, `CancelHandle`, `CancelCauseHandle` and
// `AfterFunc` are unwind safe (tokio-util's `CancellationToken` makes the same promise).
impl std::panic::RefUnwindSafe for Node {}
impl std::panic::UnwindSafe for Node {}

/// Which process-wide root, if any, is a node's parent (see `Node::parent`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaticParent {
    None,
    Background,
    Todo,
}

pub(crate) enum Kind {
    Root {
        todo: bool,
        /// The process-wide `Ctx::background()`/`Ctx::todo()`.
        is_static: bool,
    },
    Cancel(CancelNode),
    Value {
        key: TypeId,
        value: Box<dyn Any + Send + Sync>,
        type_name: &'static str,
        source: Option<Arc<Node>>,
    },
    WithoutCancel,
    Wrap(WrapNode),
}

pub(crate) struct WrapNode {
    /// Set once at creation. Moved out only by `Node::drop`, which hands it to `drop_custom`
    /// (a user type may hold the next wrap down: its drop must not recurse, invariant 6).
    pub(crate) custom: Arc<dyn Context>,
    pub(crate) type_name: &'static str,
    /// The bridge behind the custom context (see `wrap`): the cancel node its children attach
    /// to, done with the custom's own answers once its `done()` fires. Resolved once, at
    /// `wrap`, so nothing that asks it goes through the custom again. `None` when the custom
    /// context can never be done.
    pub(crate) source: Option<Arc<Node>>,
}

pub(crate) struct CancelNode {
    /// `OPEN`, `CANCELED` or `DEADLINE`; leaves `OPEN` once, under `inner` (invariant 2).
    pub(super) state: AtomicU8,
    /// `Some` when this node set a deadline of its own that is the effective one (it owns it).
    pub(super) own_deadline: Option<Instant>,
    /// The cause recorded when `own_deadline` passes; set once at creation.
    pub(super) deadline_cause: Option<Cause>,
    /// Named `WithDeadline` in `Display` (else `WithCancel`); set once at creation.
    pub(crate) shown_as_deadline: bool,
    /// Live `CancelHandle`/`CancelCauseHandle` clones; the last one to drop cancels.
    pub(crate) handles: AtomicUsize,
    /// Our key in the children of our parent's canceler, or `NO_SLOT` (invariant 4).
    pub(super) slot: AtomicUsize,
    /// `Some` on a bridge (the cancel node behind `Ctx::wrap` of a custom context); set once at
    /// creation. Boxed: one word on every other cancel node.
    pub(super) bridge: Option<Box<Bridge>>,
    /// `Some` on a merged node: its second parent and slot (invariant 9). Set once, before
    /// the node is shared; taken only by its drop.
    pub(super) merge: Option<Box<merge::Merge>>,
    /// The `with_*` call that made this node, for the cancel event. Only with the feature.
    #[cfg(feature = "tracing")]
    pub(crate) created: &'static std::panic::Location<'static>,
    pub(super) inner: Mutex<Locked>,
}

/// What a cancel node's lock guards (`CancelNode::inner`).
pub(super) struct Locked {
    /// Set once, with `state` (invariant 2). `None` once done means "no cause given": the
    /// error itself is the cause, built on demand so a cause-less cancel touches no shared
    /// reference count.
    pub(super) cause: Option<Cause>,
    /// Children, waiters and after-funcs, in one slab: one allocation, one walk on cancel.
    pub(super) entries: Slab<Entry>,
    /// How many `entries` are after-funcs (for `keep_alive`, invariant 7).
    pub(super) after_count: usize,
    /// `Some(self)` while `after` is not empty (invariant 7).
    pub(super) keep_alive: Option<Arc<Node>>,
    /// A waiter on this node asked for the deadline timer (asked once per node).
    pub(super) timer_requested: bool,
    /// The deadline timer, armed on the owner of the deadline; dropped when done or dropped.
    pub(super) timer: Option<Arc<Watch>>,
    /// On a bridge node (see `wrap`): what feeds it from a foreign `done()`, owned here so that
    /// it lives exactly as long as something can observe the bridge.
    pub(super) foreign: Option<Feed>,
}

#[inline]
fn count_node(_delta: isize) {
    #[cfg(feature = "test-util")]
    {
        use std::sync::atomic::Ordering::Relaxed;
        if _delta > 0 {
            counters::LIVE_NODES.fetch_add(1, Relaxed);
        } else {
            counters::LIVE_NODES.fetch_sub(1, Relaxed);
        }
    }
}

impl Node {
    // Inlined so that the node is built in place: out of line, the ~200-byte kind is copied
    // two or three times on its way into the `Arc`.
    #[inline(always)]
    pub(crate) fn new(
        parent: Option<&Ctx>,
        clock: ClockRef,
        deadline: Option<Instant>,
        kind: Kind,
    ) -> Arc<Node> {
        count_node(1);
        let static_parent = match parent.map(|p| &p.node.kind) {
            Some(Kind::Root {
                todo: true,
                is_static: true,
            }) => StaticParent::Todo,
            Some(Kind::Root {
                todo: false,
                is_static: true,
            }) => StaticParent::Background,
            _ => StaticParent::None,
        };
        let parent = match static_parent {
            StaticParent::None => parent.cloned(),
            _ => None,
        };
        Arc::new(Node {
            parent,
            static_parent,
            clock,
            deadline,
            kind,
        })
    }

    /// The process-wide `Ctx::background()`/`Ctx::todo()` node. Never dropped, so not counted
    /// among live nodes.
    pub(crate) fn new_static_root(todo: bool) -> Arc<Node> {
        Arc::new(Node {
            parent: None,
            static_parent: StaticParent::None,
            clock: ClockRef::System,
            deadline: None,
            kind: Kind::Root {
                todo,
                is_static: true,
            },
        })
    }

    /// The node's *source*: the cancel node it answers `err()`/`done()` from (itself if it is
    /// one, else the nearest one above it), or none. A child's canceler is its parent's source.
    #[inline]
    pub(crate) fn source(self: &Arc<Node>) -> Option<&Arc<Node>> {
        match &self.kind {
            Kind::Cancel(_) => Some(self),
            Kind::Value { source, .. } => source.as_ref(),
            Kind::Wrap(w) => w.source.as_ref(),
            Kind::Root { .. } | Kind::WithoutCancel => None,
        }
    }

    #[inline]
    pub(crate) fn cancel_node(&self) -> &CancelNode {
        match &self.kind {
            Kind::Cancel(c) => c,
            _ => unreachable!("ctx-core: internal error: not a cancel node"),
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Unlink the parent chain in a loop (invariant 6): a node whose last reference is the
        // one we hold is detached and emptied here instead of by a recursive drop.
        count_node(-1);
        self.release();
        if self.is_merged() {
            return merge::unlink(self); // two parents: a loop of its own
        }
        let mut next = self.parent.take();
        while let Some(Ctx { node: arc }) = next.take() {
            // A shared parent (the usual case) is only released: skip the unwrap attempt.
            if Arc::strong_count(&arc) > 1 {
                break;
            }
            match Arc::try_unwrap(arc) {
                Ok(mut node) => {
                    node.release();
                    if node.is_merged() {
                        return merge::unlink(&mut node);
                    }
                    next = node.parent.take();
                    // `node` drops here with no parent: its `Drop` does nothing more.
                }
                Err(_) => break, // still shared: its last owner drops it
            }
        }
    }
}

impl Node {
    /// Everything a dying node gives back: its slot in the canceler, its timer, its watcher.
    /// Idempotent: the loop in `drop` calls it before the node's own `Drop` runs.
    pub(super) fn release(&mut self) {
        if let Kind::Cancel(c) = &mut self.kind {
            // `&mut self`: nobody else can reach this node: no lock, no read-modify-write.
            let slot = c.slot.load(Ordering::Relaxed);
            c.slot.store(NO_SLOT, Ordering::Relaxed);
            let (timer, foreign) = with_mut(&mut c.inner, |inner| (inner.timer.take(), inner.foreign.take()));
            if let Some(watch) = timer {
                watch.cancel();
            }
            if let Some(feed) = foreign {
                feed.cancel();
            }
            leave_canceler(self.parent.as_ref(), slot);
        }
        if let Kind::Wrap(w) = &mut self.kind {
            // The custom context may hold the next wrap down: drop it on the trampoline, not
            // from inside this drop (invariant 6).
            drop_custom(mem::replace(&mut w.custom, placeholder()));
        }
    }
}

// ===== CancelNode =====

/// How a cancel node ended: its error, and the cause given with it (`None`: none was given, the
/// error itself is the cause).
pub(crate) struct Outcome {
    pub(crate) err: Error,
    pub(crate) cause: Option<Cause>,
}

/// What a new cancel node is made of (`CancelNode::new`). The default is a plain open node, as
/// `with_cancel` makes.
#[derive(Default)]
pub(crate) struct CancelSpec {
    /// The node's own deadline, if it set one (see `CancelNode::own_deadline`).
    pub(crate) own_deadline: Option<Instant>,
    /// The cause recorded when `own_deadline` passes.
    pub(crate) deadline_cause: Option<Cause>,
    /// Named `WithDeadline` in `Display` (else `WithCancel`).
    pub(crate) shown_as_deadline: bool,
    /// `Some` for a child of a parent that is already done: the node is built done with the
    /// parent's outcome, and then needs no attaching at all.
    pub(crate) born_done: Option<Outcome>,
}

impl CancelNode {
    /// A cancel node, open, or born done with `spec.born`.
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    pub(crate) fn new(spec: CancelSpec) -> CancelNode {
        let CancelSpec {
            own_deadline,
            deadline_cause,
            shown_as_deadline,
            born_done,
        } = spec;
        let (state, cause) = match born_done {
            Some(Outcome { err, cause }) => (state_of(err), cause),
            None => (OPEN, None),
        };
        CancelNode {
            state: AtomicU8::new(state),
            own_deadline,
            deadline_cause,
            shown_as_deadline,
            handles: AtomicUsize::new(1),
            slot: AtomicUsize::new(NO_SLOT),
            bridge: None,
            merge: None,
            #[cfg(feature = "tracing")]
            created: std::panic::Location::caller(),
            inner: Mutex::new(Locked {
                cause,
                entries: Slab::new(),
                after_count: 0,
                keep_alive: None,
                timer_requested: false,
                timer: None,
                foreign: None,
            }),
        }
    }

    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) == OPEN
    }

    /// The error this node was done with, if it is done. One atomic load.
    #[inline]
    pub(crate) fn state_err(&self) -> Option<Error> {
        match self.state.load(Ordering::Acquire) {
            OPEN => None,
            CANCELED => Some(Error::Canceled),
            _ => Some(Error::DeadlineExceeded),
        }
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        let Outcome { err, cause } = self.outcome()?;
        Some(cause.unwrap_or_else(|| err.as_cause()))
    }

    /// The error and the given cause (if any) of a done node, read together.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        let err = self.state_err()?;
        // invariant 2: `cause` was written before `state` left OPEN, under this lock
        let cause = lock(&self.inner).cause.clone();
        Some(Outcome { err, cause })
    }
}

// ===== attaching =====

/// Links a new cancel node under its parent's canceler, or makes it born done. Then checks its
/// deadline. Called once, right after `Node::new`, before the node is shared.
pub(crate) fn attach(node: &Arc<Node>) {
    let Some(parent) = node.parent.as_ref() else {
        // A child of the process-wide root: nothing to attach to, only a deadline to check.
        check_deadline(node);
        return;
    };
    // A custom parent is done for its children when its `done()` fires (Go's rule), which its
    // bridge (the canceler here) follows; one whose `done()` never fires has no canceler. It is
    // not asked otherwise: in a chain of wraps that would go through every custom in it.
    if let Some(p) = parent.node.source() {
        let slot = &node.cancel_node().slot;
        // invariant 4: set under the parent's lock, which a cancel reaching the child needs
        let attached = attach_to(node, p, |key| {
            slot.store(key, Ordering::Release);
            true
        });
        if !attached {
            return;
        }
    }
    check_deadline(node);
}

/// Registers `node` as a child of the canceler `p` (`attach`, and the second parent of a
/// merged node), or, if `p` is done, cancels `node` with `p`'s answers. `set_slot` records the
/// key under `p`'s lock; if it returns `false` the node does not want it any more (invariant 9)
/// and the entry is removed again, still under the lock. Returns `false` if `p` was done.
pub(super) fn attach_to(node: &Arc<Node>, p: &Arc<Node>, set_slot: impl FnOnce(usize) -> bool) -> bool {
    // A bridge is checked lazily (it may lag behind the custom context it answers for): if
    // the custom says it is done, the bridge is canceled now and the child born done.
    let pc = p.cancel_node();
    if let Some(b) = &pc.bridge
        && pc.is_open()
    {
        poll_bridge(p, b);
    }
    let mut pg = lock(&pc.inner);
    if pc.is_open() {
        // invariant 3: checked under the lock, so a done canceler never gains this child
        let key = pg.entries.insert(Entry::Child(Arc::downgrade(node)));
        if !set_slot(key) {
            pg.entries.remove(key);
        }
        drop(pg);
        true
    } else {
        drop(pg);
        // invariant 2: state is final, cause published with it
        let outcome = pc
            .outcome()
            .expect("ctx-core: internal error: done without error");
        // A relay born under a done parent takes its custom context's answers instead.
        let Outcome { err, cause } = bridge_outcome(node).unwrap_or(outcome);
        propagate(node, err, cause);
        false
    }
}

/// Removes `slot` (taken from a child under the child's lock, invariant 4) from the children
/// of `parent`'s canceler. A slab left empty gives its memory back, so a parent that once had
/// a million children returns to its original footprint.
#[inline]
pub(super) fn leave_canceler(parent: Option<&Ctx>, slot: usize) {
    if slot != NO_SLOT {
        remove_from_canceler(parent, slot);
    }
}

/// `leave_canceler` with a slot to remove, kept out of line.
fn remove_from_canceler(parent: Option<&Ctx>, slot: usize) {
    let Some(p) = parent.and_then(|p| p.node.source()) else {
        return;
    };
    let pc = p.cancel_node();
    let mut g = lock(&pc.inner);
    // invariant 3: a done canceler has given its slab away already
    if pc.is_open() {
        g.entries.try_remove(slot);
        if g.entries.is_empty() && g.entries.capacity() > 64 {
            g.entries = Slab::new();
        }
    }
}
