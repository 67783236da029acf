//! A cancel node's state: every `CancelNode` method, in one place. Building one (`new`,
//! `new_standalone`, `new_bridge`), reading its state word and its fixed part, and changing the
//! word: `mark`, `lock_for_dependents` and the lock-free cancels of invariants 10 and 11. The
//! word's bits and slots are `word.rs`'s.

use std::sync::LazyLock;
use std::time::Instant;

use super::arc::{Arc, Weak};
use super::first::FirstChild;
use super::lock::{Guard, StateLock};
use super::node::{
    Bridge, CancelNode, Extra, Fixed, Foreign, Guarded, Kind, Merge, Node, NodeRef, SharedCause, Timing,
};
use super::word::{
    AtomicSlot, CANCELED, DONE_MASK, DROPPED, HAS_DEPENDENTS, HAS_FIRST, Moving, NEEDS_CHECK, OPEN,
    SHOWN_AS_DEADLINE, STANDALONE, TIMED, UNDER_FOREIGN, err_of, state_of,
};
use crate::clock::NodeClock;
use crate::error::HandleDropped;
use crate::loom::{AtomicU32, Ordering};
use crate::{Cause, Error};

// ===== CancelNode =====

/// What `CancelNode::cancel_standalone` did.
pub(super) enum Standalone {
    /// Marked canceled, with nothing to leave.
    Marked,
    /// A standalone node whose one check is a deadline of its own: for `cancel_timed`.
    Timed,
    /// Anything else: for the general path.
    General,
}

/// The bits `cancel_standalone` and `cancel_timed` look at.
const STANDALONE_SEEN: u32 = DONE_MASK | HAS_DEPENDENTS | HAS_FIRST | NEEDS_CHECK | STANDALONE;

/// Those bits of an open standalone node with a deadline of its own (its only check: invariant
/// 11) and nothing depending on it.
const STANDALONE_TIMED: u32 = STANDALONE | NEEDS_CHECK;

/// How a cancel node ended: its error, and the cause given with it (`None`: none was given, the
/// error itself is the cause).
pub(crate) struct Outcome {
    pub(crate) err: Error,
    pub(crate) cause: Option<SharedCause>,
}

/// What the state word alone says about `err()` (`CancelNode::err_from_word`).
pub(super) enum WordErr {
    /// Open, with nothing else to ask: `err()` is `None`.
    Open,
    /// Done, with this error.
    Done(Error),
    /// Open as far as the word says, but the node has a deadline or a bridge, or is below one
    /// (`NEEDS_CHECK`): `err()` must check it first.
    MustCheck,
}

/// What a cancel without the lock found (`CancelNode::finish_lock_free`).
pub(super) enum LockFree {
    /// This call marked the node done.
    Marked,
    /// The node was done already.
    WasDone,
    /// The node has dependents: only a holder of its lock may mark it (invariant 10).
    HasDependents,
}

impl CancelNode {
    /// A cancel node, open, or born done with `born_done` (a child of a parent that is already
    /// done: built done with the parent's outcome, it needs no attaching at all). `timing`: see
    /// [`Timing`]; `shown_as_deadline`: named `WithDeadline` in `Display` (else `WithCancel`);
    /// `under_foreign`: below a bridge fed from another thread (`UNDER_FOREIGN`, invariant 16).
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    pub(crate) fn new(
        born_done: Option<Outcome>,
        shown_as_deadline: bool,
        under_foreign: bool,
        timing: Timing,
    ) -> CancelNode {
        let (mut state, cause) = match born_done {
            Some(Outcome { err, cause }) => (state_of(err), cause),
            None => (OPEN, None),
        };
        if timing.needs_check() {
            state |= NEEDS_CHECK;
        }
        if shown_as_deadline {
            state |= SHOWN_AS_DEADLINE;
        }
        if under_foreign {
            state |= UNDER_FOREIGN | NEEDS_CHECK; // invariant 16
        }
        CancelNode {
            state: StateLock::new(state, 1, Guarded::new(cause)),
            slot: AtomicSlot::none(),
            first: FirstChild::new(),
            timing,
            #[cfg(feature = "tracing")]
            created: std::panic::Location::caller(),
        }
    }

    /// A child of a root (see `STANDALONE`): open, no slot, no second parent, bridge or moving
    /// deadline, no dependents part, one handle; `timing`: no deadline, or one of its own that
    /// has not passed (`NEEDS_CHECK` then). A few stores.
    #[cfg_attr(feature = "tracing", track_caller)]
    #[inline(always)]
    pub(crate) fn new_standalone(shown_as_deadline: bool, timing: Timing) -> CancelNode {
        let mut state = STANDALONE;
        if shown_as_deadline {
            state |= SHOWN_AS_DEADLINE;
        }
        if !matches!(timing, Timing::None) {
            state |= NEEDS_CHECK;
        }
        CancelNode {
            state: StateLock::new(state, 1, Guarded::EMPTY),
            slot: AtomicSlot::none(),
            first: FirstChild::new(),
            timing,
            #[cfg(feature = "tracing")]
            created: std::panic::Location::caller(),
        }
    }

    /// An open bridge for `foreign` (see [`Bridge`]) with the foreign context's `deadline`: a relay
    /// under `feeder`, or fed from a foreign `done()`.
    pub(super) fn new_bridge(
        foreign: &std::sync::Arc<dyn Foreign>,
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
        let fixed = Fixed {
            deadline,
            extra: Some(Box::new(Extra::Bridge(Bridge {
                foreign: std::sync::Arc::downgrade(foreign),
                relay: feeder.is_some(),
                foreign_root,
            }))),
            ..Fixed::default()
        };
        CancelNode::new(None, false, false, Timing::new(fixed))
    }

    /// The usual `cancel()` of a standalone node (see `STANDALONE`) with no deadline that
    /// nothing depends on: one compare-exchange, as in `finish_lock_free` (invariant 10), with
    /// nothing to leave (a standalone node has no slot and no second parent): `Marked`.
    /// `Timed` for such a node with a deadline of its own (`NEEDS_CHECK`, its only check:
    /// `with_timeout` of a root), left unchanged for `cancel_timed`. `General` if the node is
    /// not standalone, has dependents or a first child, or is done, or changed meanwhile: the
    /// caller takes the general path, which looks again. With `dropped` (the drop of the last
    /// handle), the word also takes `DROPPED`.
    #[inline(always)]
    pub(super) fn cancel_standalone(&self, dropped: bool) -> Standalone {
        let word = self.state.load(Ordering::Relaxed);
        let done = if dropped { CANCELED | DROPPED } else { CANCELED };
        match word & STANDALONE_SEEN {
            STANDALONE => {
                match self
                    .state
                    .compare_exchange(word, word | done, Ordering::AcqRel, Ordering::Relaxed)
                {
                    Ok(_) => Standalone::Marked,
                    Err(_) => Standalone::General,
                }
            }
            STANDALONE_TIMED => Standalone::Timed,
            _ => Standalone::General,
        }
    }

    /// `cancel_standalone` of a node it found `Timed`: the same one compare-exchange, once a
    /// coarse reading of the system clock proves the node's deadline still ahead
    /// (`NodeClock::proves_ahead`; `clock` is the node's, and proves something only if it
    /// reads `Instant::now()`).
    /// `false`, changing nothing, if that is not proven (the general path reads the clock in
    /// full, and may expire the node instead) or the word is no longer `STANDALONE_TIMED`.
    /// A deadline that passes between the reading and the exchange is one the cancel came
    /// before, as on any path; a timer or a reader that expires the node meanwhile makes the
    /// exchange fail.
    #[inline(always)]
    pub(super) fn cancel_timed(&self, clock: &NodeClock, dropped: bool) -> bool {
        if !clock.reads_instant() {
            return false; // asked first: a clock whose time may be paused or driven (a test's)
        }
        let word = self.state.load(Ordering::Relaxed);
        if word & STANDALONE_SEEN != STANDALONE_TIMED {
            return false;
        }
        // A standalone node has no bridge and no moving deadline (invariant 11): its deadline
        // is its one check.
        let Some(deadline) = self.timing.deadline() else {
            return false;
        };
        let done = if dropped { CANCELED | DROPPED } else { CANCELED };
        clock.proves_ahead(deadline)
            && self
                .state
                .compare_exchange(word, word | done, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Marks an open node canceled that nobody but the caller can reach (invariant 21: the
    /// caller checked that it holds the only reference): with one compare-exchange, without
    /// looking at its deadline. `false`, changing nothing, if it is done or has ever had
    /// dependents.
    #[inline]
    pub(super) fn mark_unseen(&self, dropped: bool) -> bool {
        let word = self.state.load(Ordering::Relaxed);
        if word & (DONE_MASK | HAS_DEPENDENTS) != OPEN {
            return false;
        }
        let done = if dropped { CANCELED | DROPPED } else { CANCELED };
        // A compare-exchange, not a store, though nobody else can reach the node: only the
        // lock's owner may write the word whole (`lock.rs`).
        self.state
            .compare_exchange(word, word | done, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    /// Nothing to give back when dropped: `STANDALONE` and never `HAS_DEPENDENTS` (no slot, no
    /// second parent, no dependents part: see `STANDALONE`; a boxed deadline cause is the
    /// fields' to drop). For the node's owner (its drop): a
    /// `Relaxed` load.
    #[inline]
    pub(super) fn has_nothing_to_release(&self) -> bool {
        self.state.load(Ordering::Relaxed) & (STANDALONE | HAS_DEPENDENTS) == STANDALONE
    }

    /// A dying node that has given everything back (`teardown`'s loop: its slot, dependents,
    /// second parent and parent) says so, as a standalone node does, so that its `Drop` finds
    /// nothing to do. For the node's owner only: plain loads and stores.
    #[inline]
    pub(super) fn mark_released(&mut self) {
        self.state
            .update_mut(|word| (word | STANDALONE) & !HAS_DEPENDENTS);
    }

    /// Open, with no deadline, bridge or moving deadline of its own or above it (no
    /// `NEEDS_CHECK`, which `UNDER_FOREIGN` always comes with): a child with no deadline of its
    /// own needs nothing of it but to register (`derive.rs`, `derive_plain`). It may be done by
    /// the time the child registers; `attach_plain` looks again under the lock.
    #[inline]
    pub(super) fn is_plain_open(&self) -> bool {
        self.state.load(Ordering::Acquire) & (DONE_MASK | NEEDS_CHECK) == OPEN
    }

    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) & DONE_MASK == OPEN
    }

    /// The error this node was done with, if it is done. One atomic load.
    #[inline]
    pub(crate) fn state_err(&self) -> Option<Error> {
        err_of(self.state.load(Ordering::Acquire))
    }

    /// What the state word alone says about `err()`: one atomic load. Open with nothing else to
    /// ask, done, or open with a deadline, a bridge or something above to check first.
    #[inline]
    pub(super) fn err_from_word(&self) -> WordErr {
        let word = self.state.load(Ordering::Acquire);
        if word & (DONE_MASK | NEEDS_CHECK) == OPEN {
            return WordErr::Open;
        }
        match err_of(word) {
            Some(e) => WordErr::Done(e),
            None => WordErr::MustCheck,
        }
    }

    /// `err_from_word` for `is_done()`, which needs no error: `Some(false)` open with nothing
    /// else to ask, `Some(true)` done, `None` open with something to check first.
    #[inline]
    pub(super) fn done_from_word(&self) -> Option<bool> {
        let word = self.state.load(Ordering::Acquire);
        if word & (DONE_MASK | NEEDS_CHECK) == OPEN {
            return Some(false);
        }
        (word & DONE_MASK != OPEN).then_some(true)
    }

    /// Whether an open node's one check is a deadline of its own that `clock` proves still
    /// ahead, so that `err()` is `None` with nothing more asked: `err()`'s usual case on a
    /// `with_timeout` context. A `Timing::Own` node has no bridge, moving deadline or deadline
    /// cause (those are `Boxed`), and a word without `UNDER_FOREIGN` (set at creation, never
    /// changed) has nothing above to poll (invariants 16 and 18). `false`: ask in full.
    #[inline(always)]
    pub(super) fn own_deadline_ahead(&self, clock: &NodeClock) -> bool {
        match self.timing {
            Timing::Own(d) => {
                self.state.load(Ordering::Relaxed) & UNDER_FOREIGN == 0 && clock.proves_ahead(d)
            }
            _ => false,
        }
    }

    /// The node has a deadline or is a bridge (set at creation).
    #[inline]
    pub(super) fn needs_check(&self) -> bool {
        self.state.load(Ordering::Relaxed) & NEEDS_CHECK != 0
    }

    /// Below a bridge fed from another thread (see `UNDER_FOREIGN`).
    #[inline]
    pub(super) fn is_under_foreign(&self) -> bool {
        self.state.load(Ordering::Relaxed) & UNDER_FOREIGN != 0
    }

    /// Whether a cancel node attached below this one is `UNDER_FOREIGN`: this one is, or is a
    /// bridge that a foreign `done()` feeds (a relay whose feeder is one, included).
    #[inline]
    pub(super) fn leads_to_foreign(&self) -> bool {
        let word = self.state.load(Ordering::Relaxed);
        if word & NEEDS_CHECK == 0 {
            // neither a bridge, a moving deadline, nor below one (all set `NEEDS_CHECK`): the usual
            // case
            return false;
        }
        word & UNDER_FOREIGN != 0
            || match self.timing.boxed().and_then(|c| c.extra.as_deref()) {
                None => false,
                Some(Extra::Bridge(b)) => !b.relay || b.foreign_root.is_some(),
                Some(Extra::Moving(_)) => true, // invariant 18: a child cannot copy it
            }
    }

    /// Not marked by a walk that reaches it, but collected and resolved after it: a relay
    /// (invariant 6), or a grace node (invariant 19).
    #[inline]
    pub(super) fn resolved_after_walk(&self) -> bool {
        match self.timing.boxed().and_then(|c| c.extra.as_deref()) {
            None => false,
            Some(Extra::Bridge(b)) => b.relay,
            Some(Extra::Moving(m)) => m.is_grace(),
        }
    }

    /// The timer of this node's deadline is armed (or being armed) on its owner (see `TIMED`).
    #[inline]
    pub(super) fn is_timed(&self) -> bool {
        self.state.load(Ordering::Relaxed) & TIMED != 0
    }

    /// Records that the timer of this node's deadline is armed, or being armed, on its owner.
    /// Called on nodes with dependents only (invariant 14); were one without them, a
    /// compare-exchange of invariant 10 racing it would fail and take the lock instead.
    #[inline]
    pub(super) fn set_timed(&self) {
        if !self.is_timed() {
            self.state.fetch_or(TIMED, Ordering::Relaxed);
        }
    }

    /// Named `WithDeadline` in `Display`.
    pub(crate) fn shown_as_deadline(&self) -> bool {
        self.state.load(Ordering::Relaxed) & SHOWN_AS_DEADLINE != 0
    }

    #[inline]
    pub(super) fn own_deadline(&self) -> Option<Instant> {
        self.timing.own_deadline()
    }

    #[inline]
    pub(super) fn deadline_cause(&self) -> Option<SharedCause> {
        self.timing.boxed()?.deadline_cause.clone()
    }

    #[inline]
    pub(super) fn bridge(&self) -> Option<&Bridge> {
        match self.timing.boxed()?.extra.as_deref()? {
            Extra::Bridge(b) => Some(b),
            Extra::Moving(_) => None,
        }
    }

    /// The moving deadline of a `with_grace` or `with_idle_timeout` node (`moving.rs`).
    #[inline]
    pub(super) fn moving(&self) -> Option<&Moving> {
        match self.timing.boxed()?.extra.as_deref()? {
            Extra::Moving(m) => Some(m),
            Extra::Bridge(_) => None,
        }
    }

    /// A grace node (as opposed to an idle one or any other cancel node).
    #[inline]
    pub(super) fn is_grace(&self) -> bool {
        self.moving().is_some_and(Moving::is_grace)
    }

    #[inline]
    pub(super) fn merge(&self) -> Option<&Merge> {
        self.timing.boxed()?.merge.as_deref()
    }

    /// The second parent of a merged node (for `Display`).
    pub(crate) fn merged_with(&self) -> Option<&NodeRef> {
        self.merge().map(|m| &m.other)
    }

    /// The node's live handles (`CancelHandle`, `CancelCauseHandle` clones): the spare half
    /// of the state word's eight bytes (`lock.rs`).
    #[inline(always)]
    pub(crate) fn handles(&self) -> &AtomicU32 {
        &self.state.spare
    }

    /// Before a plain child publishes itself in this node's first-child word: sets `HAS_FIRST`
    /// if the node is open, with a compare-exchange (so never on a done node), unless it is set
    /// already. `false` if the node is done: the child registers the usual way, which finds it
    /// done (invariant 25).
    #[inline]
    pub(super) fn open_for_first(&self) -> bool {
        let mut word = self.state.load(Ordering::Acquire);
        loop {
            if word & DONE_MASK != OPEN {
                return false;
            }
            if word & HAS_FIRST != 0 {
                return true;
            }
            match self
                .state
                .compare_exchange(word, word | HAS_FIRST, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// A plain child may have published itself in the first-child word (`HAS_FIRST`).
    #[inline]
    pub(super) fn has_first(&self) -> bool {
        self.state.load(Ordering::Relaxed) & HAS_FIRST != 0
    }

    /// For whoever has just marked this node done: closes its first-child word, if a child may
    /// have been published there, and takes that child (invariant 25). `HAS_FIRST` is set only
    /// on an open node, so the marker's own change of the word, which this load follows, shows
    /// whether it was ever set.
    #[inline]
    pub(super) fn close_first(&self) -> Option<Weak<Node>> {
        if !self.has_first() {
            return None;
        }
        self.first.close()
    }

    /// Takes the node's lock.
    #[inline(always)]
    pub(super) fn lock(&self) -> Guard<'_, Guarded> {
        self.state.lock()
    }

    /// Takes the node's lock to add to its dependents part and, in the same change of the
    /// word, sets `HAS_DEPENDENTS` if it is open: lock-free cancels are off for good
    /// (invariant 10). With `false` if the node is done (nothing may be added, invariant 3).
    #[inline(always)]
    pub(super) fn lock_for_dependents(&self) -> (Guard<'_, Guarded>, bool) {
        let (g, word) = self.state.lock_setting(|word| {
            if word & DONE_MASK == OPEN {
                HAS_DEPENDENTS
            } else {
                0
            }
        });
        (g, word & DONE_MASK == OPEN)
    }

    /// Marks the node done with `err`, under its lock `g` (invariant 2; the caller sets `cause`
    /// in the same critical section). `false` if it was done already. A node with dependents is
    /// marked by the unlock (`Guard::set_on_unlock`), with no write of its own: only lock holders
    /// mark it (invariant 10). Any other may meet a lock-free cancel (invariant 10), which does
    /// not wait for the lock: a compare-exchange, now.
    #[inline]
    pub(super) fn mark(&self, g: &mut Guard<'_, Guarded>, err: Error) -> bool {
        let mut word = g.word();
        if word & (DONE_MASK | HAS_DEPENDENTS) == HAS_DEPENDENTS {
            g.set_on_unlock(state_of(err));
            return true;
        }
        loop {
            if word & DONE_MASK != OPEN {
                return false;
            }
            match self
                .state
                .compare_exchange(word, word | state_of(err), Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now) => word = now,
            }
        }
    }

    /// Marks a node that was never given dependents done without taking its lock, with no cause
    /// (invariant 10), or, with `dropped` (only with `Canceled`), with the `HandleDropped`
    /// that `DROPPED` stands for (invariant 17).
    #[inline]
    pub(super) fn finish_lock_free(&self, err: Error, dropped: bool) -> LockFree {
        let word = self.state.load(Ordering::Acquire);
        if word & DONE_MASK != OPEN {
            return LockFree::WasDone;
        }
        if word & HAS_DEPENDENTS != 0 {
            return LockFree::HasDependents;
        }
        let done = if dropped {
            state_of(err) | DROPPED
        } else {
            state_of(err)
        };
        match self
            .state
            .compare_exchange(word, word | done, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => LockFree::Marked,
            Err(now) if now & DONE_MASK != OPEN => LockFree::WasDone,
            Err(_) => LockFree::HasDependents, // given dependents meanwhile
        }
    }

    pub(crate) fn cause(&self) -> Option<Cause> {
        let Outcome { err, cause } = self.outcome()?;
        Some(cause.map_or_else(|| err.as_cause(), |c| (*c).clone()))
    }

    /// `outcome`, with the open case (the usual one) answered inline.
    #[inline]
    pub(crate) fn outcome_if_done(&self) -> Option<Outcome> {
        if self.is_open() { None } else { self.outcome() }
    }

    /// The error and the given cause (if any) of a done node, read together.
    pub(crate) fn outcome(&self) -> Option<Outcome> {
        let word = self.state.load(Ordering::Acquire);
        let err = err_of(word)?;
        if word & DROPPED != 0 {
            // invariant 17: the drop of the last handle, marked without the lock; its cause is
            // made now, for whoever asks (no lock: nothing was written under it)
            return Some(Outcome {
                err,
                cause: Some(handle_dropped()),
            });
        }
        // invariant 2: `cause` was written before the state left OPEN, under this lock; a
        // lock-free cancel gives none (invariant 10)
        let cause = self.lock().cause();
        Some(Outcome { err, cause })
    }
}

/// The cause of a context canceled by the drop of its last handle (invariant 17): one shared
/// `Arc`, so that neither the drop nor a reader allocates.
pub(super) fn handle_dropped() -> SharedCause {
    static DROPPED: LazyLock<SharedCause> = LazyLock::new(|| Arc::new(HandleDropped::as_cause()));
    DROPPED.clone()
}
