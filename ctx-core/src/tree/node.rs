//! The layout: every type a node is made of, and accessors, no behaviour. What a `Ctx` points at
//! (`NodeRef`: a `Node`, or a `ValueNode`), what a node holds (`Parent`, `Kind`, `CancelNode`,
//! the part its lock guards, `Guarded`, and its out-of-line parts, `Fixed` and `Dependents`),
//! and the parts only some nodes have: a wrap (`WrapNode`) and what the engine asks of its
//! foreign context (`Foreign`), a bridge (`Bridge`) and its `Feed`, a merge's second parent
//! (`Merge`). The atomic words a node holds are `word.rs`'s; what reads and changes a cancel
//! node is `state.rs`'s; how a node is dropped is `teardown.rs`'s.

use std::any::{Any, TypeId};
use std::mem;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;
use std::time::Instant;

use super::arc::{Arc, Weak};
#[cfg(feature = "test-util")]
use super::counters;
use super::entries::{Children, Entries};
use super::first::FirstChild;
use super::lock::StateLock;
use super::packed::{Form, Packed, Unpacked};
use super::thin::ThinArc;
#[cfg(all(test, not(loom), not(feature = "tracing")))]
use super::word::Slot;
use super::word::{AtomicSlot, Moving, SecondSlot};
use crate::after_threads::AfterFn;
use crate::clock::{NodeClock, SharedClock};
use crate::watcher::Watcher;
use crate::{Cause, Error};

/// A cause as a cancel node keeps it: one word. A walk wraps the user's cause once and every
/// node it marks shares that one `Arc`.
pub(crate) type SharedCause = Arc<Cause>;

/// A new cancel node's two owners: the `Ctx`'s, and its handle's.
pub(crate) type Owners = (Arc<Node>, Arc<Node>);

/// A new cancel node's two owners, and the `Weak` for its canceler's children if it registers
/// with one (`Node::new_cancel`).
pub(crate) type Born = (Arc<Node>, Arc<Node>, Option<Weak<Node>>);

/// What a cancel node holds for the time it is open, besides its children (`Dependents`).
pub(super) enum Entry {
    /// The waker of a pending `Done`.
    Waiter(Waker),
    /// A registered after-func.
    After(AfterFn),
}

// ===== Node =====

/// What a `Ctx` points at: a node, or a value node (a type of its own, so that it is smaller
/// than a cancel node).
#[derive(Clone)]
pub(crate) enum NodeRef {
    Node(Arc<Node>),
    Value(ThinArc<ValueNode>),
}

/// A node's parent.
pub(crate) enum Parent {
    /// A root (or a node being dropped, whose parent was taken).
    None,
    /// The process-wide `background()`/`todo()`: not held (it has no values, never ends and
    /// is never dropped: holding it would only bump a shared reference count on every
    /// derivation); kept apart for `Display`.
    Background,
    Todo,
    Node(NodeRef),
}

impl Parent {
    /// How a child of `parent` holds it, and the child's clock: a copy of the parent's, kept
    /// valid by the `Parent` that holds it (the system clock below a process-wide root, which
    /// has no other and is not held; or below none). The caller stores both in the child's
    /// `parent` and `clock` fields.
    #[inline(always)]
    #[allow(unsafe_code)]
    fn with_clock(parent: Option<&NodeRef>) -> (Parent, NodeClock) {
        // SAFETY (both `below`s): the copy is made from the node that the `Parent` returned
        // with it holds. The child keeps that `Parent` in its `parent` field, private to this
        // module, and gives it up only in `take_parent`, which releases the copy first (leaving
        // the system clock). So the parent, and the `NodeClock` inside it, live and stay in
        // place for as long as the copy can be read.
        match parent {
            None => (Parent::None, NodeClock::SYSTEM),
            Some(NodeRef::Node(n)) => match n.kind {
                Kind::Root {
                    todo: true,
                    is_static: true,
                } => (Parent::Todo, NodeClock::SYSTEM),
                Kind::Root {
                    todo: false,
                    is_static: true,
                } => (Parent::Background, NodeClock::SYSTEM),
                _ => (Parent::Node(NodeRef::Node(n.clone())), unsafe {
                    NodeClock::below(&n.clock)
                }),
            },
            Some(v @ NodeRef::Value(vn)) => (Parent::Node(v.clone()), unsafe { NodeClock::below(&vn.clock) }),
        }
    }

    /// The parent, unless it is none or a process-wide root.
    #[inline]
    pub(crate) fn get(&self) -> Option<&NodeRef> {
        match self {
            Parent::Node(n) => Some(n),
            _ => None,
        }
    }

    /// Takes the parent (while dropping, for the iterative unlink).
    #[inline]
    fn take(&mut self) -> Option<NodeRef> {
        match mem::replace(self, Parent::None) {
            Parent::Node(n) => Some(n),
            _ => None,
        }
    }
}

pub(crate) struct Node {
    /// The root's clock, inherited by every node: owned by this node (a root, a wrap, a
    /// bridge), else a copy of its parent's (invariant 12). Private, with `parent`: this module
    /// keeps the parent for as long as the copy exists (`NodeClock::below`'s contract). First,
    /// so that it is dropped before `parent`.
    clock: NodeClock,
    /// Set once at creation; taken only while the node is being dropped (iterative unlink),
    /// together with `clock` (`take_parent`).
    parent: Parent,
    pub(crate) kind: Kind,
}

/// A value node (`with_value`): this header and the value after it, in one allocation
/// (`ThinArc`, one word; 64 bytes with a `u64` value). Its deadline is its parent's:
/// `NodeRef::deadline` looks it up.
///
/// What a lookup compares comes first, in one word read with no call:
///
/// * `digest`: 32 bits of the [`digest`] of the value's key (the `TypeId` of its type,
///   [`short_digest`]). Equal digests are confirmed by the full key (`ThinArc::key`, or the
///   downcast of a typed lookup) before a value is returned.
/// * `seen`: a 32-bit filter of the keys of this value node and of every value node above it up
///   to the first node that is not one (the *base* of the run), one bit per key ([`key_bit`]). A
///   lookup whose bit is clear skips the rest of the run in one step, to the base, which is then
///   the node's source (a cancel node, which holds no values) or none (a root above: no values).
///   Below a wrap or a `without_cancel` node, whose values a lookup must ask for, it is all ones
///   (see `ValueNode::new`): every lookup walks.
pub(crate) struct ValueNode {
    pub(crate) digest: u32,
    pub(crate) seen: u32,
    /// The parent's clock, copied (invariant 12; private, as `Node::clock`).
    clock: NodeClock,
    /// Set once at creation; taken only while the node is being dropped (iterative unlink),
    /// together with `clock` (`take_parent`).
    parent: Parent,
    /// The nearest cancel node above: this node's `err()` and `done()`.
    pub(crate) source: Option<Arc<Node>>,
}

// A panic cannot leave a node half-changed for code that catches it: every state change is made
// whole under one lock (which ignores poisoning) or by one atomic operation, no user code runs
// under a lock, and a cancel reads the clock before it changes anything. What the compiler cannot
// see through are the user's values, foreign contexts, clocks and callbacks (`dyn` types); they are
// only shared by `&` and are `Sync`. So `Ctx`, `CancelHandle`, `CancelCauseHandle` and
// `AfterFunc` are unwind safe (tokio-util's `CancellationToken` makes the same promise).
impl std::panic::RefUnwindSafe for Node {}
impl std::panic::UnwindSafe for Node {}
impl std::panic::RefUnwindSafe for ValueNode {}
impl std::panic::UnwindSafe for ValueNode {}

pub(crate) enum Kind {
    Root {
        todo: bool,
        /// The process-wide `Ctx::background()`/`Ctx::todo()`.
        is_static: bool,
    },
    Cancel(CancelNode),
    WithoutCancel,
    /// Boxed: wraps are rare, and inline they would make every node bigger.
    Wrap(Box<WrapNode>),
}

/// A key's 64-bit digest (the `TypeId`'s own hash, mixed once so that its top bits are good).
#[inline]
pub(crate) fn digest(key: TypeId) -> u64 {
    use std::hash::{Hash, Hasher};

    /// Folds what `TypeId` hashes (today one `u64`) into one word.
    struct Fold(u64);
    impl Hasher for Fold {
        #[inline]
        fn finish(&self) -> u64 {
            self.0
        }
        #[inline]
        fn write(&mut self, bytes: &[u8]) {
            for &b in bytes {
                self.write_u64(u64::from(b));
            }
        }
        #[inline]
        fn write_u64(&mut self, n: u64) {
            self.0 = (self.0.rotate_left(29) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    let mut h = Fold(0);
    key.hash(&mut h);
    h.finish()
}

/// The bit of the key with this digest in a `seen` filter.
#[inline]
pub(crate) fn key_bit(digest: u64) -> u32 {
    1 << ((digest >> 27) & 31)
}

/// The 32 bits of the key's digest that `ValueNode::digest` keeps (the best mixed).
#[inline]
pub(crate) fn short_digest(digest: u64) -> u32 {
    (digest >> 32) as u32
}

pub(crate) struct WrapNode {
    /// Set once at creation. Moved out only by `Node::drop`, which hands it to `drop_foreign`
    /// (a user type may hold the next wrap down: its drop must not recurse, invariant 6).
    pub(crate) foreign: std::sync::Arc<dyn Foreign>,
    pub(crate) type_name: &'static str,
    /// The foreign context's deadline, asked once, at `wrap`.
    pub(crate) deadline: Option<Instant>,
    /// The bridge behind the foreign context (see `wrap`): the cancel node its children attach
    /// to, done with the foreign context's own answers once its `done()` fires. Resolved once, at
    /// `wrap`, so nothing that asks it goes through the foreign context again. `None` when the
    /// foreign context can never be done.
    pub(crate) source: Option<Arc<Node>>,
}

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

/// What a bridge node answers to. A bridge is done with the foreign context's own `err()` and
/// `cause()` once the foreign context's `done()` has fired, and is checked *lazily*, as deadlines
/// are: whoever asks an open bridge (`err()`, `cause()`, a `done()` poll, `after_func`, a child's
/// birth, `wait_blocking`) asks the foreign context too, and cancels the bridge right there if it
/// says it is done. What feeds it otherwise:
///
/// * a *relay* (the foreign context's `done()` is a `Ctx`'s: its cancel node is the bridge's
///   parent): attached to that node like any child; the walk that cancels the parent collects the
///   relay instead of marking it, and `propagate` then resolves it with the foreign context's
///   answers (no user code runs during the walk);
/// * a foreign `done()`: the foreign context's `on_done` callback, else a watcher (`watcher.rs`).
pub(crate) struct Bridge {
    /// Weak: a `Done` or an after-func that outlives the wrap must not keep a user type alive.
    pub(super) foreign: std::sync::Weak<dyn Foreign>,
    pub(super) relay: bool,
    /// On a relay whose chain of relays ends at a foreign bridge (a wrap of a wrap of a foreign
    /// context): that bridge, so that the lazy check reaches it in one step at any depth. Weak:
    /// the relay's parent chain holds it.
    pub(super) foreign_root: Option<Weak<Node>>,
}

/// What feeds a bridge from a foreign `done()`; let go of when the bridge is done or dropped.
pub(crate) enum Feed {
    /// A watcher polling the foreign `done()` future.
    Watcher(std::sync::Arc<Watcher>),
    /// The stop function of the foreign context's `on_done` registration.
    Callback(StopFn),
}

impl Feed {
    /// Stops feeding. User code (a stop function, a future's `Drop`): call with no lock held.
    pub(super) fn cancel(self) {
        match self {
            Feed::Watcher(w) => w.cancel(),
            Feed::Callback(stop) => {
                // `false` when the callback has run: nothing left to release either way.
                let _ = catch_unwind(AssertUnwindSafe(stop));
            }
        }
    }
}

/// The stop function of a foreign context's `on_done` registration.
pub(crate) type StopFn = Box<dyn FnOnce() -> bool + Send + 'static>;

/// A cancel node. What every one of them needs is inline, a deadline of its own too
/// ([`Timing`]); what only some need is behind two boxes: [`Fixed`] (set at creation,
/// immutable) and [`Dependents`] (under the lock, allocated when the first child, waiter,
/// after-func, timer or feed arrives). A `with_cancel` or `with_timeout` node that nobody waits
/// on is one allocation of 88 bytes (see `tests::sizes`, and `tests/allocations.rs`).
pub(crate) struct CancelNode {
    /// The state word and the node's lock, which guards what depends on the node (`lock.rs`).
    /// The word: `OPEN`, `CANCELED` or `DEADLINE` in the low bits (leaves `OPEN` once,
    /// invariants 2 and 10), and the flags `HAS_DEPENDENTS`, `NEEDS_CHECK`, `SHOWN_AS_DEADLINE`,
    /// `STANDALONE`, `TIMED`, `UNDER_FOREIGN` and `DROPPED` (`word.rs`), the lock in its two high
    /// bits. Its spare half counts the live `CancelHandle`/`CancelCauseHandle` clones
    /// (`CancelNode::handles`; the last one to drop cancels).
    pub(super) state: StateLock<Guarded>,
    /// Our key in the children of our parent's canceler, if any (invariant 4).
    pub(super) slot: AtomicSlot,
    /// Our first plain child, outside the lock (invariant 25).
    pub(super) first: FirstChild<Node>,
    /// Set once at creation, never changed: see [`Timing`].
    pub(super) timing: Timing,
    /// The `with_*` call that made this node, for the cancel event. Only with the feature.
    #[cfg(feature = "tracing")]
    pub(crate) created: &'static std::panic::Location<'static>,
}

/// A cancel node's deadline and what only some cancel nodes have, set at creation and never
/// changed. The usual deadline node (`with_timeout`, `with_deadline` and their `_cancel_cause`
/// forms below a node without an earlier deadline) keeps its deadline inline, so that it is
/// one allocation; the rest is boxed ([`Fixed`]).
///
/// 16 bytes, those of an `Instant`: the two variants without one live in the `Instant`'s niche
/// (its nanoseconds never reach 10^9), and `Kind` finds its own tag there too (see
/// `tests::sizes`).
pub(crate) enum Timing {
    /// No deadline and nothing else: a `with_cancel` node below one without a deadline.
    None,
    /// A deadline of the node's own that is its effective one, with no cause of its own.
    Own(Instant),
    /// Anything else: an inherited deadline, a deadline cause, a bridge, a moving deadline, a
    /// second parent.
    Boxed(Box<Fixed>),
}

impl Timing {
    /// `fixed`, inline when it is nothing or a deadline of the node's own alone.
    #[inline(always)]
    pub(super) fn new(fixed: Fixed) -> Timing {
        match fixed {
            Fixed {
                deadline: None,
                own_deadline: None,
                deadline_cause: None,
                extra: None,
                merge: None,
            } => Timing::None,
            Fixed {
                deadline: Some(d),
                own_deadline: Some(o),
                deadline_cause: None,
                extra: None,
                merge: None,
            } if d == o => Timing::Own(d),
            fixed => Timing::Boxed(Box::new(fixed)),
        }
    }

    /// The boxed part, if the node has one.
    #[inline]
    pub(super) fn boxed(&self) -> Option<&Fixed> {
        match self {
            Timing::Boxed(f) => Some(f),
            Timing::None | Timing::Own(_) => None,
        }
    }

    /// The boxed part, for the node's drop (which owns it: `release_merge`).
    #[inline]
    pub(super) fn boxed_mut(&mut self) -> Option<&mut Fixed> {
        match self {
            Timing::Boxed(f) => Some(f),
            Timing::None | Timing::Own(_) => None,
        }
    }

    /// The effective deadline: the earliest of this node's and its ancestors'.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self {
            Timing::None => None,
            Timing::Own(d) => Some(*d),
            Timing::Boxed(f) => f.deadline,
        }
    }

    /// The node's own deadline, when it is the effective one.
    #[inline]
    pub(super) fn own_deadline(&self) -> Option<Instant> {
        match self {
            Timing::None => None,
            Timing::Own(d) => Some(*d),
            Timing::Boxed(f) => f.own_deadline,
        }
    }

    /// Whether an open state word alone does not answer `err()`: the node has a deadline, a
    /// bridge or a moving deadline to check (`NEEDS_CHECK`, set at creation).
    #[inline]
    pub(super) fn needs_check(&self) -> bool {
        match self {
            Timing::None => false,
            Timing::Own(_) => true,
            Timing::Boxed(f) => f.deadline.is_some() || f.extra.is_some(),
        }
    }
}

/// What only some cancel nodes have, fixed at creation (boxed: [`Timing::Boxed`]).
#[derive(Default)]
pub(crate) struct Fixed {
    /// The effective deadline: the earliest of this node's and its ancestors'.
    pub(super) deadline: Option<Instant>,
    /// `Some` when this node set a deadline of its own that is the effective one (it owns it).
    pub(super) own_deadline: Option<Instant>,
    /// The cause recorded when `own_deadline` passes.
    pub(super) deadline_cause: Option<SharedCause>,
    /// `Some` on a bridge (the cancel node behind `Ctx::wrap` of a foreign context) or on a node
    /// whose deadline moves (`with_grace`, `with_idle_timeout`: `moving.rs`). Boxed, as
    /// `merge`: few nodes have either, and every deadline node has a `Fixed` part.
    pub(super) extra: Option<Box<Extra>>,
    /// `Some` on a merged node: its second parent and slot (invariant 9). Taken only by its
    /// drop (which owns the node).
    pub(super) merge: Option<Box<Merge>>,
}

/// The rare part of a [`Fixed`]: what makes a bridge one, or a deadline that moves.
pub(crate) enum Extra {
    Bridge(Bridge),
    Moving(Moving),
}

/// What a merged node keeps of its second parent.
pub(super) struct Merge {
    /// The second parent. It is held strongly (as `parent` is) so that its canceler outlives
    /// our entry in it; values are never looked up through it.
    pub(super) other: NodeRef,
    /// Our slot in the children of `other`'s canceler: none, a slot, or taken (invariant 9).
    pub(super) slot: SecondSlot,
}

/// What a cancel node's lock guards (`CancelNode::inner`): what depends on it while it is open,
/// its cause once it is done. The two never meet: the dependents are given away in the critical
/// section that marks the node done and sets its cause (invariant 2), and nothing is added to a
/// done node (invariant 3). A [`Held`], in two words (`packed.rs`: as an enum, a first waiter
/// would make it three, and the node 96 bytes).
pub(super) struct Guarded(Packed<Weak<Node>, Box<Dependents>, SharedCause>);

/// The forms of [`Guarded`], by value.
pub(super) enum Held {
    /// Open with nothing depending on it; or done with no cause given: the error itself is the
    /// cause, built on demand, so that a cause-less cancel touches no shared reference count.
    Empty,
    /// Open with one child and nothing else, at key 0 of the children (invariant 22): a node of
    /// a chain allocates no dependents part.
    Child(Weak<Node>),
    /// Open with one waiter and nothing else, at key 0 of the entries (invariant 23): a context
    /// one task waits on allocates no dependents part.
    Waiter(Waker),
    /// Open with anything else; allocated with the first of it that is not a first child or a
    /// first waiter alone (`HAS_DEPENDENTS` is set before anything is added: invariant 10).
    Busy(Box<Dependents>),
    /// Done with a cause given. Set once, with the state (invariant 2).
    Cause(SharedCause),
}

impl From<Held> for Unpacked<Weak<Node>, Box<Dependents>, SharedCause> {
    #[inline(always)]
    fn from(held: Held) -> Self {
        match held {
            Held::Empty => Unpacked::Empty,
            Held::Child(child) => Unpacked::A(child),
            Held::Busy(busy) => Unpacked::B(busy),
            Held::Cause(cause) => Unpacked::C(cause),
            Held::Waiter(waker) => Unpacked::Waker(waker),
        }
    }
}

impl From<Unpacked<Weak<Node>, Box<Dependents>, SharedCause>> for Held {
    #[inline(always)]
    fn from(held: Unpacked<Weak<Node>, Box<Dependents>, SharedCause>) -> Self {
        match held {
            Unpacked::Empty => Held::Empty,
            Unpacked::A(child) => Held::Child(child),
            Unpacked::B(busy) => Held::Busy(busy),
            Unpacked::C(cause) => Held::Cause(cause),
            Unpacked::Waker(waker) => Held::Waiter(waker),
        }
    }
}

/// What depends on an open cancel node (`Held::Busy`): everything but a first child or a first
/// waiter alone.
#[derive(Default)]
pub(super) struct Dependents {
    /// The cancel nodes attached below this one, held weakly (each frees itself when dropped):
    /// one word a child, in a slab of their own (a parent may have millions).
    pub(super) children: Children<Weak<Node>>,
    /// Waiters and after-funcs, in the order they came (a cancel wakes and runs them in it).
    pub(super) entries: Entries<Entry>,
    /// How many `entries` are after-funcs (for `keep_alive`, invariant 7); at most `entries`'
    /// own bound.
    pub(super) after_count: u32,
    /// A waiter on this node asked for the deadline timer (asked once per node).
    pub(super) timer_requested: bool,
    /// `Some(self)` while there are after-funcs (invariant 7).
    pub(super) keep_alive: Option<Arc<Node>>,
    /// The deadline timer, armed on the owner of the deadline; dropped when done or dropped.
    pub(super) timer: Option<std::sync::Arc<Watcher>>,
    /// On a bridge node (see `wrap`): what feeds it from a foreign `done()`, owned here so that
    /// it lives exactly as long as something can observe the bridge. Boxed: only bridges have
    /// one.
    pub(super) feed: Option<Box<Feed>>,
}

impl Guarded {
    /// Open with nothing depending on it.
    pub(super) const EMPTY: Guarded = Guarded(Packed::EMPTY);

    /// A new node's: its cause if it is born done with one, else nothing.
    #[inline]
    pub(super) fn new(cause: Option<SharedCause>) -> Guarded {
        Guarded(Packed::new(cause.map_or(Held::Empty, Held::Cause).into()))
    }

    /// Which form it holds.
    #[inline(always)]
    fn form(&self) -> Form {
        self.0.form()
    }

    /// Takes what it holds, leaving `held`.
    #[inline(always)]
    fn replace(&mut self, held: Held) -> Held {
        self.0.replace(held.into()).into()
    }

    /// Stores `held` where nothing is (no old value to give back).
    #[inline(always)]
    fn set_empty(&mut self, held: Held) {
        debug_assert_eq!(
            self.form(),
            Form::Empty,
            "ctx-core: internal error: overwrote dependents"
        );
        self.0 = Packed::new(held.into());
    }

    /// The dependents part, allocated if need be (taking a first child or waiter along, at the
    /// same key: invariants 22 and 23). Call only after `CancelNode::lock_for_dependents` said
    /// the node is open (invariant 10).
    #[inline]
    pub(super) fn dependents(&mut self) -> &mut Dependents {
        if self.form() != Form::B {
            self.grow();
        }
        self.0
            .b_mut()
            .expect("ctx-core: internal error: no dependents part after growing one")
    }

    /// `dependents`' allocation, out of line.
    #[inline(never)]
    fn grow(&mut self) {
        let mut busy = Box::<Dependents>::default();
        match self.replace(Held::Empty) {
            Held::Empty => {}
            Held::Child(child) => {
                let key = busy.children.insert(child);
                debug_assert_eq!(key, 0, "ctx-core: internal error: the first child moved");
            }
            Held::Waiter(waker) => {
                let key = busy.entries.insert(Entry::Waiter(waker));
                debug_assert_eq!(key, 0, "ctx-core: internal error: the first waiter moved");
            }
            Held::Busy(_) | Held::Cause(_) => {
                unreachable!("ctx-core: internal error: dependents added to a done node")
            }
        }
        self.set_empty(Held::Busy(busy));
    }

    /// The dependents part, if there is one.
    #[inline]
    pub(super) fn dependents_mut(&mut self) -> Option<&mut Dependents> {
        self.0.b_mut().map(|busy| &mut **busy)
    }

    /// The dependents part, if there is one.
    #[inline]
    pub(super) fn dependents_ref(&self) -> Option<&Dependents> {
        self.0.b().map(|busy| &**busy)
    }

    /// Adds a child to an open node (see `dependents`); its key. The first child of a node
    /// that has nothing else stays inline, at key 0 (invariant 22).
    #[inline]
    pub(super) fn add_child(&mut self, child: Weak<Node>) -> usize {
        if self.form() == Form::Empty {
            self.set_empty(Held::Child(child));
            return 0;
        }
        self.dependents().children.insert(child)
    }

    /// Adds a waiter to an open node (see `dependents`); its key in the entries. The first
    /// waiter of a node that has nothing else stays inline, at key 0 (invariant 23).
    #[inline]
    pub(super) fn add_waiter(&mut self, waker: Waker) -> usize {
        if self.form() == Form::Empty {
            self.set_empty(Held::Waiter(waker));
            return 0;
        }
        self.dependents().entries.insert(Entry::Waiter(waker))
    }

    /// Puts `new` in place of the waiter at `key` of an open node, if it is still there and
    /// would not wake the same task; the waker left over (the one it replaced, or `new`), to be
    /// dropped with no lock held. No waker code runs here: `will_wake` compares two words.
    #[inline]
    pub(super) fn refresh_waiter(&mut self, key: usize, new: Waker) -> Waker {
        match self.form() {
            Form::Waker if key == 0 => {
                if self.0.holds_waker_like(&new) {
                    return new;
                }
                match self.replace(Held::Waiter(new)) {
                    Held::Waiter(old) => old,
                    _ => unreachable!("ctx-core: internal error: the waiter was not a waiter"),
                }
            }
            Form::B => match self.dependents_mut().and_then(|busy| busy.entries.get_mut(key)) {
                Some(Entry::Waiter(slot)) if !slot.will_wake(&new) => mem::replace(slot, new),
                _ => new,
            },
            _ => new,
        }
    }

    /// Removes the entry at `key` of an open node, if it is still there (a slab left empty and
    /// large gives its memory back).
    #[inline]
    pub(super) fn remove_entry(&mut self, key: usize) -> Option<Entry> {
        match self.form() {
            Form::Waker if key == 0 => match self.replace(Held::Empty) {
                Held::Waiter(waker) => Some(Entry::Waiter(waker)),
                _ => unreachable!("ctx-core: internal error: the waiter was not a waiter"),
            },
            Form::B => {
                let busy = self.dependents_mut()?;
                let entry = busy.entries.try_remove(key);
                if busy.entries.is_empty() && busy.entries.capacity() > 64 {
                    busy.entries = Entries::default();
                }
                entry
            }
            _ => None,
        }
    }

    /// Removes the child at `key` of an open node, if it is still there.
    #[inline]
    pub(super) fn remove_child(&mut self, key: usize) -> Option<Weak<Node>> {
        match self.form() {
            Form::A if key == 0 => match self.replace(Held::Empty) {
                Held::Child(child) => Some(child),
                _ => unreachable!("ctx-core: internal error: the child was not a child"),
            },
            Form::B => self.dependents_mut()?.children.try_remove(key),
            _ => None,
        }
    }

    /// Whether an open node has children.
    #[inline]
    pub(super) fn has_children(&self) -> bool {
        match self.form() {
            Form::A => true,
            Form::B => self
                .dependents_ref()
                .is_some_and(|busy| !busy.children.is_empty()),
            _ => false,
        }
    }

    /// Whether anything depends on an open node.
    #[inline]
    pub(super) fn has_dependents(&self) -> bool {
        matches!(self.form(), Form::A | Form::B | Form::Waker)
    }

    /// What depended on the node, taken as it is marked done, and `cause` in its place
    /// (invariant 2).
    #[inline]
    pub(super) fn take(&mut self, cause: Option<SharedCause>) -> Taken {
        let old = match cause {
            // The usual leaf: nothing to take and no cause to set.
            None if self.form() == Form::Empty => return Taken::Nothing,
            None => self.0.take(),
            Some(cause) => self.0.replace(Unpacked::C(cause)),
        };
        match old {
            Unpacked::A(child) => Taken::Child(child),
            Unpacked::Waker(waker) => Taken::Waiter(waker),
            Unpacked::B(busy) => Taken::Busy(busy),
            Unpacked::Empty | Unpacked::C(_) => Taken::Nothing,
        }
    }

    /// The cause of a done node (`None`: none was given).
    #[inline]
    pub(super) fn cause(&self) -> Option<SharedCause> {
        self.0.c().cloned()
    }

    /// The waiters, for tests.
    #[cfg(all(test, loom))]
    pub(super) fn waiter_count(&self) -> usize {
        match self.form() {
            Form::Waker => 1,
            Form::B => self.dependents_ref().map_or(0, |busy| {
                busy.entries
                    .iter()
                    .filter(|(_, e)| matches!(e, Entry::Waiter(_)))
                    .count()
            }),
            _ => 0,
        }
    }

    /// The children, for tests.
    #[cfg(test)]
    pub(super) fn child_count(&self) -> usize {
        match self.form() {
            Form::A => 1,
            Form::B => self
                .dependents_ref()
                .map_or(0, |busy| busy.children.iter().count()),
            _ => 0,
        }
    }
}

/// Most nodes die holding nothing: their drop is one test, and what the others hold is dropped
/// out of line.
impl Drop for Guarded {
    #[inline]
    fn drop(&mut self) {
        if self.form() != Form::Empty {
            drop_held(self.replace(Held::Empty));
        }
    }
}

#[inline(never)]
fn drop_held(held: Held) {
    drop(held);
}

/// What an open node's dependents were when it was marked done or dropped ([`Guarded::take`]).
pub(super) enum Taken {
    Nothing,
    Child(Weak<Node>),
    Waiter(Waker),
    Busy(Box<Dependents>),
}

#[inline]
pub(super) fn count_node(_delta: isize) {
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
    /// A node below `parent`, on its clock.
    #[inline(always)]
    pub(crate) fn new(parent: Option<&NodeRef>, kind: Kind) -> Arc<Node> {
        count_node(1);
        let (parent, clock) = Parent::with_clock(parent);
        Arc::new(Node { clock, parent, kind })
    }

    /// A cancel node below `parent`, made with its two owners (the `Ctx`'s and its handle's)
    /// counted at once (`Arc::new_pair`: no read-modify-write for the second); and, if it
    /// `registers` with its canceler (`attach`), the `Weak` its canceler's children keep,
    /// counted at birth too (`Arc::new_pair_and_weak`).
    #[inline(always)]
    pub(crate) fn new_cancel(parent: Option<&NodeRef>, kind: Kind, registers: bool) -> Born {
        if registers {
            let (node, handle, weak) = Node::new_registered(parent, kind);
            (node, handle, Some(weak))
        } else {
            count_node(1);
            let (parent, clock) = Parent::with_clock(parent);
            let (node, handle) = Arc::new_pair(Node { clock, parent, kind });
            (node, handle, None)
        }
    }

    /// `new_cancel` of a node that registers with its canceler: its two owners and its `Weak`.
    #[inline(always)]
    pub(crate) fn new_registered(parent: Option<&NodeRef>, kind: Kind) -> (Arc<Node>, Arc<Node>, Weak<Node>) {
        count_node(1);
        let (parent, clock) = Parent::with_clock(parent);
        Arc::new_pair_and_weak(Node { clock, parent, kind })
    }

    /// `new_cancel` of a node that does not register, with the parent already in its `Parent` form.
    #[inline(always)]
    pub(crate) fn with_parent(parent: Parent, kind: Kind) -> Owners {
        count_node(1);
        Arc::new_pair(Node {
            clock: clock_below(&parent),
            parent,
            kind,
        })
    }

    /// A node that owns its clock (a root, a wrap, a bridge: invariant 12), below `parent`.
    pub(crate) fn owning(parent: Parent, clock: SharedClock, kind: Kind) -> Arc<Node> {
        count_node(1);
        Arc::new(Node {
            clock: NodeClock::own(clock),
            parent,
            kind,
        })
    }

    /// The process-wide `Ctx::background()`/`Ctx::todo()` node. Never dropped, so not counted
    /// among live nodes.
    pub(crate) fn new_static_root(todo: bool) -> Arc<Node> {
        Arc::new(Node {
            clock: NodeClock::SYSTEM,
            parent: Parent::None,
            kind: Kind::Root {
                todo,
                is_static: true,
            },
        })
    }

    /// The node's clock (invariant 12).
    #[inline]
    pub(crate) fn clock(&self) -> &NodeClock {
        &self.clock
    }

    /// The node's parent.
    #[inline]
    pub(crate) fn parent(&self) -> &Parent {
        &self.parent
    }

    /// Takes the parent, while dropping (the iterative unlink, `teardown.rs`). The clock goes
    /// first: released (an owned clock's count given back) and left as the system clock, so
    /// that no copy of the parent's clock outlives the parent, whoever calls this and whatever
    /// it reads afterwards (invariant 12).
    #[inline]
    pub(super) fn take_parent(&mut self) -> Option<NodeRef> {
        self.clock.release();
        self.parent.take()
    }

    #[inline]
    pub(crate) fn expect_cancel(&self) -> &CancelNode {
        match &self.kind {
            Kind::Cancel(c) => c,
            _ => unreachable!("ctx-core: internal error: not a cancel node"),
        }
    }

    /// The effective deadline: the earliest of this node's and its ancestors'.
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        match &self.kind {
            Kind::Cancel(c) => c.timing.deadline(),
            Kind::Wrap(w) => w.deadline,
            Kind::Root { .. } | Kind::WithoutCancel => None,
        }
    }
}

impl ValueNode {
    /// A value node below `parent` carrying `value`, keyed by its type.
    #[inline]
    pub(crate) fn new<T: Any + Send + Sync>(parent: &NodeRef, value: T) -> ThinArc<ValueNode> {
        count_node(1);
        let full = digest(TypeId::of::<T>());
        let mut seen = key_bit(full);
        let (held, clock) = Parent::with_clock(Some(parent));
        // The filter (`seen`): the parent's added if it is a value node; all ones below a
        // node whose values a lookup must ask for; as it is below a cancel node or a root, which
        // hold none (matched on what `with_clock` matched: nothing more to read below a
        // process-wide root).
        match &held {
            Parent::Node(NodeRef::Value(p)) => seen |= p.seen,
            Parent::Node(NodeRef::Node(n)) => {
                if let Kind::Wrap(_) | Kind::WithoutCancel = n.kind {
                    seen = u32::MAX;
                }
            }
            Parent::None | Parent::Background | Parent::Todo => {}
        }
        ThinArc::new(
            ValueNode {
                digest: short_digest(full),
                seen,
                clock,
                parent: held,
                source: parent.source().cloned(),
            },
            value,
        )
    }

    /// The node's parent.
    #[inline]
    pub(crate) fn parent(&self) -> &Parent {
        &self.parent
    }

    /// As `Node::take_parent`. A value node's clock is always a copy (`Parent::with_clock`), so it is
    /// overwritten, not released (had it owned a count, that would be a leak, never a dangling
    /// pointer).
    #[inline]
    pub(super) fn take_parent(&mut self) -> Option<NodeRef> {
        self.clock = NodeClock::SYSTEM;
        self.parent.take()
    }
}

/// The clock of a node whose `parent` field will be `parent`: a copy of the held parent's clock
/// (the system clock below a process-wide root, or none).
#[inline(always)]
#[allow(unsafe_code)]
fn clock_below(parent: &Parent) -> NodeClock {
    match parent {
        // SAFETY: as in `Parent::with_clock`: the child holds this `Parent` in its private
        // `parent` field, and `take_parent` releases the copy before it gives the parent up.
        Parent::Node(p) => unsafe { NodeClock::below(p.clock()) },
        Parent::None | Parent::Background | Parent::Todo => NodeClock::SYSTEM,
    }
}

impl NodeRef {
    /// The node's *source* (see `Node::source`).
    #[inline]
    pub(crate) fn source(&self) -> Option<&Arc<Node>> {
        match self {
            NodeRef::Node(n) => n.source(),
            NodeRef::Value(v) => v.source.as_ref(),
        }
    }

    #[inline]
    pub(crate) fn clock(&self) -> &NodeClock {
        match self {
            NodeRef::Node(n) => &n.clock,
            NodeRef::Value(v) => &v.clock,
        }
    }

    #[inline]
    pub(crate) fn parent(&self) -> &Parent {
        match self {
            NodeRef::Node(n) => &n.parent,
            NodeRef::Value(v) => &v.parent,
        }
    }

    /// The effective deadline. A value node has its parent's (looked up in a loop, as Go's
    /// `valueCtx` asks its parent).
    #[inline]
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let mut node = self;
        loop {
            match node {
                NodeRef::Node(n) => return n.deadline(),
                NodeRef::Value(v) => node = v.parent().get()?,
            }
        }
    }

    /// The node behind a `Ctx` that a `with_*` method has just built as one (for `tests` below).
    #[cfg(all(test, not(loom), not(feature = "tracing")))]
    pub(crate) fn expect_node(&self) -> &Arc<Node> {
        match self {
            NodeRef::Node(n) => n,
            NodeRef::Value(_) => unreachable!("ctx-core: internal error: a value node"),
        }
    }

    /// Held by others too (as far as this thread can tell: they may drop it meanwhile).
    #[inline]
    pub(super) fn is_shared(&self) -> bool {
        match self {
            NodeRef::Node(n) => Arc::strong_count(n) > 1,
            NodeRef::Value(v) => v.count() > 1,
        }
    }

    /// The node's address: equal exactly when `ptr_eq` is (for `Hash for Ctx`).
    #[inline]
    pub(crate) fn addr(&self) -> usize {
        match self {
            NodeRef::Node(n) => Arc::as_ptr(n) as *const () as usize,
            NodeRef::Value(v) => v.as_ptr() as usize,
        }
    }

    pub(crate) fn ptr_eq(&self, other: &NodeRef) -> bool {
        match (self, other) {
            (NodeRef::Node(a), NodeRef::Node(b)) => Arc::ptr_eq(a, b),
            (NodeRef::Value(a), NodeRef::Value(b)) => ThinArc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Arc<Node> {
    /// The node's *source*: the cancel node it answers `err()`/`done()` from (itself if it is
    /// one, else the nearest one above it), or none. A child's canceler is its parent's source.
    #[inline]
    pub(crate) fn source(&self) -> Option<&Arc<Node>> {
        match &self.kind {
            Kind::Cancel(_) => Some(self),
            Kind::Wrap(w) => w.source.as_ref(),
            Kind::Root { .. } | Kind::WithoutCancel => None,
        }
    }
}

impl From<Arc<Node>> for NodeRef {
    #[inline]
    fn from(node: Arc<Node>) -> NodeRef {
        NodeRef::Node(node)
    }
}

#[cfg(all(test, not(loom), not(feature = "tracing")))]
mod tests {
    use super::*;

    /// The layout targets: a cancel node is one allocation of at most 96 bytes (issue 11; the
    /// `Arc`'s counts in one word, and its `settled` word: `arc.rs`, point 6; the lock lives in
    /// the state word, `lock.rs`, and the handle count beside it, which leaves room for the
    /// first-child word, `first.rs`), a
    /// value node holding a `u64` one of at most 72 (issue 21: 64); a `Slot` is one word, as is
    /// `Option<Slot>`.
    #[test]
    fn sizes() {
        let node = super::super::arc::alloc_size::<Node>();
        assert!(node <= 96, "node: {node} bytes");
        let value_node = super::super::thin::alloc_size::<ValueNode, u64>();
        assert!(value_node <= 64, "value node: {value_node} bytes");
        assert_eq!(mem::size_of::<NodeRef>(), 2 * mem::size_of::<usize>());
        assert_eq!(mem::size_of::<Parent>(), mem::size_of::<NodeRef>());
        assert_eq!(mem::size_of::<Option<Slot>>(), mem::size_of::<usize>());
        assert_eq!(mem::size_of::<NodeClock>(), mem::size_of::<usize>());
        assert_eq!(mem::size_of::<Option<SharedCause>>(), mem::size_of::<usize>());
        // Every node that anything depends on has a `Dependents` part: two slabs whose first
        // place is inline (a child's is one word), the after-func count, keep-alive, timer
        // and feed.
        // 112 bytes (was 152: the counts of `Entries` and `after_count` in 32 bits, the rare
        // feed boxed, `smallvec`'s `union` layout); a node one task waits on is 96 + 112 bytes
        // (memory bench `WithCancel+wait+cancel`).
        assert!(
            mem::size_of::<Dependents>() <= 112,
            "dependents part: {} bytes",
            mem::size_of::<Dependents>()
        );
        assert_eq!(mem::size_of::<Option<Weak<Node>>>(), mem::size_of::<usize>());
        // The wakers a cancel keeps for their `Done`s (invariant 26) are made in the slab's own
        // allocation: a place of each is the same size.
        assert_eq!(
            super::super::spent::PLACE_LAYOUT,
            (
                mem::size_of::<super::super::entries::Item<Entry>>(),
                mem::align_of::<super::super::entries::Item<Entry>>()
            )
        );
        // A deadline of the node's own is inline; the variants without one take no room of
        // their own (the `Instant`'s niche), nor does `Kind`'s tag.
        assert_eq!(mem::size_of::<Timing>(), mem::size_of::<Instant>());
        assert_eq!(mem::size_of::<Kind>(), mem::size_of::<CancelNode>());
        // Any other deadline node has a `Fixed` part: the two deadlines, their cause and one
        // word each for the rare bridge and merge.
        assert!(
            mem::size_of::<Fixed>() <= 56,
            "fixed part: {} bytes",
            mem::size_of::<Fixed>()
        );
    }

    /// The wakers a cancel keeps (invariant 26) take the slab's own allocation: no allocation
    /// of their size at the cancel (`Vec`'s in-place `collect`, which the equal layouts of
    /// `sizes` allow).
    #[test]
    fn kept_wakers_take_the_slab_allocation() {
        use super::super::entries::Entries;
        use super::super::spent::Spent;
        let mut entries = Entries::<Entry>::default();
        for _ in 0..10 {
            entries.insert(Entry::Waiter(Waker::noop().clone()));
        }
        let slab = entries.places_addr();
        let spent = Spent::new(entries.into_places().map(|place| match place {
            Some(Entry::Waiter(w)) => Some(w),
            _ => None,
        }));
        assert_eq!(spent.places_addr(), slab);
    }

    /// Which cancel nodes take the fast paths of invariant 11: children of a root with no
    /// deadline or one of their own ahead, for as long as nothing depends on them.
    #[test]
    fn standalone_nodes() {
        use std::time::Duration;

        use crate::Ctx;
        use crate::clock::SystemClock;

        let standalone = |ctx: &Ctx| ctx.node.expect_node().expect_cancel().has_nothing_to_release();
        let (a, _a) = Ctx::background().with_cancel();
        assert!(standalone(&a));
        let (b, _b) = Ctx::todo().with_cancel_cause();
        assert!(standalone(&b));
        let root = Ctx::background_with_clock(std::sync::Arc::new(SystemClock::default()));
        let (c, _c) = root.with_cancel();
        assert!(standalone(&c));
        // Too far ahead for `Instant`: no deadline, shown as one.
        let (d, _d) = Ctx::background().with_timeout(Duration::MAX);
        assert!(standalone(&d));
        assert_eq!(d.to_string(), "context.Background.WithDeadline(never)");

        let (child, _child) = a.with_cancel();
        assert!(!standalone(&child), "attached to its parent");
        // Its first child is in its first-child word (invariant 25), which its drop, after the
        // child's, finds empty; a second one is a dependent.
        assert!(standalone(&a), "one child, in the word");
        let (_second, _s) = a.with_cancel();
        assert!(!standalone(&a), "a second child: a dependent");
        // A deadline of its own, ahead: standalone too (its cancel checks the deadline first).
        let (e, _e) = Ctx::background().with_timeout(Duration::from_secs(60));
        assert!(standalone(&e));
        let (g, _g) = root.with_timeout_cancel_cause(Duration::from_secs(60));
        assert!(standalone(&g));
        // A deadline not known to lie ahead (no clock reading), or inherited: the general path.
        let (h, _h) = root.with_deadline(std::time::Instant::now() + Duration::from_secs(60));
        assert!(
            !standalone(&h),
            "a deadline the caller did not compare with the clock"
        );
        let (i, _i) = e.with_cancel();
        assert!(!standalone(&i), "attached to its parent");
        let (f, _f) = Ctx::background().with_value(1u8).with_cancel();
        assert!(!standalone(&f), "a value node's child takes the general path");
    }
}
