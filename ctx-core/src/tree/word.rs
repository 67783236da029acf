//! The atomic words of a cancel node, with no knowledge of the node: its state word (open, or
//! done and how, plus flags), its slot in its canceler (`Slot`, `AtomicSlot`) and a merged
//! node's second slot (`SecondSlot`), and the word of a deadline that moves (`Moving`). The
//! `CancelNode` methods that read and change them are in `state.rs`.

use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use super::arc::Arc;
use crate::loom::{AtomicU64, AtomicUsize, Mutex, Ordering, lock};
use crate::{Cause, Error};

// ===== the state word =====

/// The two low bits of a cancel node's state word: open, or done and how.
pub(super) const OPEN: u32 = 0;
pub(super) const CANCELED: u32 = 1;
pub(super) const DEADLINE: u32 = 2;
pub(super) const DONE_MASK: u32 = 0b11;
/// Set (under the node's lock, never cleared) before the node first gets a `Dependents` part part:
/// from then on only a holder of the lock may mark it done (invariant 10).
pub(super) const HAS_DEPENDENTS: u32 = 1 << 2;
/// Set at creation: the node has a deadline or is a bridge, so an open state word alone does
/// not answer `err()`.
pub(super) const NEEDS_CHECK: u32 = 1 << 3;
/// Set at creation: named `WithDeadline` in `Display` (else `WithCancel`).
pub(super) const SHOWN_AS_DEADLINE: u32 = 1 << 4;
/// Set at creation on a child of a root with no deadline, or with one of its own that has not
/// passed (`CancelNode::new_standalone`): it has no second parent, bridge or moving deadline,
/// never attaches (so never has a slot) and is open. Never cleared. Without `HAS_DEPENDENTS` it
/// also has no dependents part: its drop has nothing to give back
/// (`CancelNode::has_nothing_to_release`).
pub(super) const STANDALONE: u32 = 1 << 5;
/// Set (by anyone, any time, never cleared) on a node with a deadline once the timer for that
/// deadline has been armed, or is being armed, on the node that owns it: `arm_timer` from a
/// node below stops climbing here (invariant 14). Only a hint about the owner's timer: a cancel
/// under the lock may overwrite the word of a node with dependents it marks done (`mark`), and a
/// done node arms nothing.
pub(super) const TIMED: u32 = 1 << 6;
/// Set at creation (with `NEEDS_CHECK`) on a cancel node below a bridge that a foreign `done()`
/// feeds from another thread, or below a moving deadline (directly, or through cancel nodes that
/// carry it too): `err()` polls that bridge or deadline before it trusts an open word
/// (invariants 16 and 18).
pub(super) const UNDER_FOREIGN: u32 = 1 << 7;
/// Set (never cleared) while the node is open, by a child that is about to publish itself in
/// the node's first-child word (`first.rs`, invariant 25); a compare-exchange, so never on a done
/// node. Whoever marks a node with it done closes that word afterwards and takes the child.
pub(super) const HAS_FIRST: u32 = 1 << 9;
/// Set with `CANCELED`, in the same change of the word, by a lock-free cancel for the drop of
/// the node's last handle (invariant 17): its cause is `HandleDropped`, made when it is asked
/// for (`outcome`). Never set on an open node, never cleared.
pub(super) const DROPPED: u32 = 1 << 8;

#[inline]
pub(super) fn state_of(err: Error) -> u32 {
    match err {
        Error::Canceled => CANCELED,
        Error::DeadlineExceeded => DEADLINE,
    }
}

#[inline]
pub(super) fn err_of(word: u32) -> Option<Error> {
    match word & DONE_MASK {
        OPEN => None,
        CANCELED => Some(Error::Canceled),
        _ => Some(Error::DeadlineExceeded),
    }
}

// ===== slots =====

/// A key in a cancel node's entries (a child's place in its canceler, a waiter's, an
/// after-func's), or the place of a canceler's first plain child (`first.rs`: the address of
/// the `Weak` it holds). Never zero, so `Option<Slot>` is one word and fits an atomic. A key is
/// even (`(key + 1) * 2`), a first child's place odd (a first `Weak`'s tag, `arc.rs` point 6).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Slot(NonZeroUsize);

impl Slot {
    /// The slot of the entries' key `key`.
    #[inline]
    pub(super) fn new(key: usize) -> Slot {
        const TWO: NonZeroUsize = NonZeroUsize::MIN.saturating_add(1);
        Slot(NonZeroUsize::MIN.saturating_add(key).saturating_mul(TWO))
    }

    /// The entries' key of a slot made by [`Slot::new`].
    #[inline]
    pub(super) fn key(self) -> usize {
        (self.0.get() >> 1) - 1
    }

    /// The slot of a first child whose `Weak`'s pointer is at `addr`: none unless `addr` is
    /// odd (a first `Weak`'s).
    #[inline]
    pub(super) fn first(addr: usize) -> Option<Slot> {
        if addr & 1 == 0 {
            return None;
        }
        NonZeroUsize::new(addr).map(Slot)
    }

    /// The address a first child's slot records (`Slot::first`); none for an entries' key.
    #[inline]
    pub(super) fn first_addr(self) -> Option<usize> {
        (self.0.get() & 1 == 1).then_some(self.0.get())
    }

    /// The raw word of an `Option<Slot>` (`0` is none), for an atomic.
    #[inline]
    fn into_raw(slot: Option<Slot>) -> usize {
        slot.map_or(0, |s| s.0.get())
    }

    #[inline]
    fn from_raw(raw: usize) -> Option<Slot> {
        NonZeroUsize::new(raw).map(Slot)
    }
}

/// An `Option<Slot>` in one atomic word.
pub(super) struct AtomicSlot(AtomicUsize);

impl AtomicSlot {
    pub(super) fn none() -> AtomicSlot {
        AtomicSlot(AtomicUsize::new(0))
    }

    /// Records the slot (invariant 4: under the canceler's lock, before the node is shared).
    #[inline]
    pub(super) fn set(&self, slot: Slot) {
        self.0.store(Slot::into_raw(Some(slot)), Ordering::Release);
    }

    /// No slot (a `Relaxed` load: for the owner of the node, or its one taker).
    #[inline]
    pub(super) fn is_none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }

    /// Takes the slot. Only its one taker calls this (invariant 4), so a load and a store do.
    #[inline]
    pub(super) fn take(&self) -> Option<Slot> {
        let raw = self.0.load(Ordering::Acquire);
        if raw != 0 {
            self.0.store(0, Ordering::Relaxed);
        }
        Slot::from_raw(raw)
    }
}

/// The second slot's states (invariant 9, `merge.rs`) as raw words of an `Option<Slot>`: none
/// is `0`, and "taken" is a word no slot comes near.
const NONE: usize = 0;
const GONE: usize = usize::MAX;

/// A merged node's second slot, in one atomic word: none (not registered with the second
/// canceler, yet or ever), a slot, or `GONE` (taken, by the cancel that marked the node done or
/// by its drop; never set again). See invariant 9 and `merge.rs`.
pub(super) struct SecondSlot(AtomicUsize);

impl SecondSlot {
    pub(super) fn none() -> SecondSlot {
        SecondSlot(AtomicUsize::new(NONE))
    }

    /// Records `slot` if the word is still none (under the second canceler's lock). `false` if
    /// it was taken meanwhile (`GONE`): the node is done or being dropped, and the caller removes
    /// the entry it has just inserted.
    #[inline]
    pub(super) fn set_if_none(&self, slot: Slot) -> bool {
        self.0
            .compare_exchange(
                NONE,
                Slot::into_raw(Some(slot)),
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
    }

    /// Takes the slot for good, leaving `GONE`: the slot, if one was recorded. Whoever gets it
    /// removes it from the second canceler.
    #[inline]
    pub(super) fn take(&self) -> Option<Slot> {
        match self.0.swap(GONE, Ordering::AcqRel) {
            GONE => None,
            raw => Slot::from_raw(raw),
        }
    }
}

// ===== moving deadlines =====

/// Which deadline moves, and by how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Span {
    /// `with_grace`: done this long after the parent is done.
    Grace(Duration),
    /// `with_idle_timeout`: done once this long passes with no `touch()`.
    Idle(Duration),
}

/// Set in the deadline word once its passing has been decided (invariant 18): never cleared,
/// and above every deadline, so `fetch_max` never moves a sealed word.
const SEALED: u64 = 1 << 63;
/// The word of "no deadline": the largest one that is not sealed.
const NEVER: u64 = SEALED - 1;

/// A deadline that moves (`with_grace`, `with_idle_timeout`: `moving.rs`), in a node's fixed
/// part (`Extra::Moving`).
pub(super) struct Moving {
    /// Set once at creation.
    span: Span,
    /// The clock's reading at creation: the word counts from here. Set once.
    base: Instant,
    /// The deadline, in nanoseconds after `base` (`NEVER`: none), plus `SEALED` once its
    /// passing is decided. Idle: raised by `touch` (`fetch_max`, no lock), sealed by the one
    /// who finds it passed (a compare-exchange: invariant 18). Grace: the parent's deadline
    /// plus the grace period until the parent is done, then stored once by `start_grace`
    /// (invariant 19).
    word: AtomicU64,
    /// Grace: the parent's error and cause, set once, by `start_grace`, before the word it
    /// stores; `None` until then. Idle: always `None`.
    pending: Mutex<Option<(Error, Option<Arc<Cause>>)>>,
}

impl Moving {
    pub(super) fn new(span: Span, base: Instant, deadline: Option<Instant>) -> Moving {
        let m = Moving {
            span,
            base,
            word: AtomicU64::new(NEVER),
            pending: Mutex::new(None),
        };
        m.word.store(m.encode(deadline), Ordering::Relaxed);
        m
    }

    /// The word of `deadline`: nanoseconds after `base` (an instant before it counts as
    /// `base`), `NEVER` for none or one too far away to count.
    #[inline]
    fn encode(&self, deadline: Option<Instant>) -> u64 {
        match deadline {
            None => NEVER,
            Some(d) => {
                let n = d.saturating_duration_since(self.base).as_nanos();
                u64::try_from(n).map_or(NEVER, |n| n.min(NEVER))
            }
        }
    }

    #[inline]
    fn decode(&self, word: u64) -> Option<Instant> {
        match word & !SEALED {
            NEVER => None,
            n => self.base.checked_add(Duration::from_nanos(n)),
        }
    }

    /// The deadline now (sealed or not).
    #[inline]
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.decode(self.word.load(Ordering::Acquire))
    }

    /// Moves the deadline to `deadline` if that is later and the word is not sealed. `true` if
    /// it moved. One `fetch_max`: no lock, no allocation (invariant 18).
    #[inline]
    pub(super) fn push(&self, deadline: Option<Instant>) -> bool {
        let w = self.encode(deadline);
        // A sealed word is above every `w`: it stays sealed.
        self.word.fetch_max(w, Ordering::AcqRel) < w
    }

    /// Decides whether the deadline has passed at `now`, sealing the word if it has. `true` if
    /// it is sealed (by this call or before): from then on no `push` moves it, and whoever
    /// sees it sealed may end the node (invariant 18).
    pub(super) fn seal_if_passed(&self, now: Instant) -> bool {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w & SEALED != 0 {
                return true;
            }
            match self.decode(w) {
                Some(d) if d <= now => {}
                _ => return false,
            }
            // Fails if a `push` came in between: look again at the later deadline.
            match self
                .word
                .compare_exchange_weak(w, w | SEALED, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(now_word) => w = now_word,
            }
        }
    }

    /// Which deadline moves, and by how much.
    #[inline]
    pub(super) fn span(&self) -> &Span {
        &self.span
    }

    /// Grace: records the parent's outcome, then stores `end`, the end of the period (invariant
    /// 19: `pending` is written before the word that says when the period ends).
    pub(super) fn start(&self, err: Error, cause: Option<Arc<Cause>>, end: Option<Instant>) {
        *lock(&self.pending) = Some((err, cause));
        self.word.store(self.encode(end), Ordering::Release);
    }

    /// A grace node's (not an idle node's).
    #[inline]
    pub(super) fn is_grace(&self) -> bool {
        matches!(self.span, Span::Grace(_))
    }

    /// Grace: the parent's outcome, once the grace period has started.
    pub(super) fn pending(&self) -> Option<(Error, Option<Arc<Cause>>)> {
        lock(&self.pending).clone()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// The second slot of invariant 9: set once from none, taken once for good; a set after the
    /// take fails (the attach then removes its own entry), and a second take gets nothing.
    #[test]
    fn a_second_slot_is_set_from_none_and_taken_once() {
        let slot = Slot::new(3);
        let s = SecondSlot::none();
        assert!(s.set_if_none(slot));
        assert!(!s.set_if_none(Slot::new(4)), "set twice");
        assert_eq!(s.take(), Some(slot));
        assert_eq!(s.take(), None);
        assert!(!s.set_if_none(slot), "set after the take");

        let never = SecondSlot::none();
        assert_eq!(never.take(), None);
        assert!(!never.set_if_none(slot), "set after a take of none");
    }

    /// A slot's key survives the trip through the raw word of an `AtomicSlot`, taken once.
    #[test]
    fn an_atomic_slot_gives_its_slot_to_one_taker() {
        let a = AtomicSlot::none();
        assert!(a.is_none());
        a.set(Slot::new(0));
        assert!(!a.is_none());
        assert_eq!(a.take().map(Slot::key), Some(0));
        assert_eq!(a.take(), None);
    }
}
