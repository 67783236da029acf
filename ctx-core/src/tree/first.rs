//! [`FirstChild`]: a cancel node's first plain child, kept in one atomic word outside the lock
//! (invariant 25), so that attaching and leaving take one compare-exchange each; once the node
//! is done, the same word keeps the wakers its cancel woke by reference (`Spent`, invariant 26).
//!
//! The word is empty (null), holds the first [`Weak`] of a child (a raw pointer with its tag:
//! `arc.rs`, point 6, so it is odd), is [`CLOSED`] (address 2), which the node's cancel leaves,
//! or holds a `Box<Spent>` (a pointer aligned to at least 4: even, and neither null nor
//! `CLOSED`). The
//! child's slot records the `Weak`'s address (`Slot::first`), which no other child can have
//! while this one lives: its `Weak` keeps the allocation.
//!
//! # Safety argument (this module alone)
//!
//! 1. A `Weak`'s pointer is written into the word only by [`FirstChild::publish`], which takes a
//!    `Weak` by value and turns it into its raw pointer (`Weak::into_raw`): the word then owns
//!    that `Weak`'s count. Only a compare-exchange from null writes it, so nothing it owned is
//!    overwritten.
//! 2. A `Weak`'s pointer leaves the word only by a read-modify-write that replaced it (null or
//!    `CLOSED` written in its place): `retract`, `close`, or `take_mut` (which has `&mut self`).
//!    Whoever made that change is the only one to get that pointer back, and makes it a `Weak`
//!    again (`Weak::from_raw`) exactly once. So each published `Weak` is rebuilt once, by one
//!    owner, and never while the word still holds it.
//! 3. A publish that fails gives the caller back the very pointer it made (never seen by
//!    anyone), rebuilt once. `Drop` takes what is left (point 2), so no count is leaked.
//! 4. Null and `CLOSED` are never rebuilt: every path compares with them first, and tells a
//!    `Weak`'s pointer (odd) from a `Spent`'s (even) before it rebuilds either.
//! 5. A `Spent`'s pointer is written only by [`FirstChild::keep_and_wake`], from a `Box` it
//!    takes by value (its one owner: so it is the one call that wakes that `Spent`), with a
//!    compare-exchange from null or `CLOSED` (nothing owned is overwritten). Every other
//!    exchange expects null, `CLOSED` or an odd address, except `close`'s swap,
//!    which puts a `Spent` it took out back (or, if another came in between, leaks it). Only
//!    `take_mut` (`&mut self`, no loan alive) frees one. So the `&Spent` that
//!    [`FirstChild::spent`] lends, for as long as `&self` lives, points at a live `Spent`.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr;

use super::arc::Weak;
use super::spent::Spent;
use super::word::Slot;
use crate::loom::{AtomicPtr, Ordering};

/// The word of a node that is done: nothing is published in it any more. No `Weak`'s pointer
/// (odd, point 6 of `arc.rs`), no `Spent`'s (aligned to at least 4) and not null.
const CLOSED: usize = 2;

/// What a word holds.
enum Held {
    /// Null or `CLOSED`.
    Nothing,
    /// A `Weak`'s pointer (odd).
    Weak,
    /// A `Spent`'s pointer (even, neither null nor `CLOSED`).
    Spent,
}

#[inline(always)]
fn held(raw: *mut ()) -> Held {
    if raw.addr() & 1 == 1 {
        Held::Weak
    } else if raw.is_null() || raw.addr() == CLOSED {
        Held::Nothing
    } else {
        Held::Spent
    }
}

/// A node's first plain child, lock-free (see the module doc).
pub(super) struct FirstChild<T> {
    word: AtomicPtr<()>,
    /// Owns the `Weak<T>` it holds (point 1).
    _owns: PhantomData<Weak<T>>,
}

impl<T> FirstChild<T> {
    pub(super) fn new() -> FirstChild<T> {
        FirstChild {
            word: AtomicPtr::new(ptr::null_mut()),
            _owns: PhantomData,
        }
    }

    /// Publishes `weak`, the first `Weak` of a child (`Arc::new_pair_and_weak`'s), if the word
    /// is empty, after telling `set_slot` the slot it will have (before anyone can reach the
    /// child through the word). Gives `weak` back if the word holds another child or is closed,
    /// or if `weak` is not a first `Weak` (only those have a slot here: `Slot::first`).
    #[inline]
    pub(super) fn publish(&self, weak: Weak<T>, set_slot: impl FnOnce(Slot)) -> Result<(), Weak<T>> {
        if !self.word.load(Ordering::Relaxed).is_null() {
            // Taken or closed: no compare-exchange bound to fail (every later child of a wide
            // node comes here). The exchange below decides when it is empty.
            return Err(weak);
        }
        let raw = Weak::into_raw(weak);
        let Some(slot) = Slot::first(raw.addr()) else {
            // SAFETY: point 3: the pointer just made, never published.
            return Err(unsafe { Weak::from_raw(raw) });
        };
        set_slot(slot);
        match self
            .word
            .compare_exchange(ptr::null_mut(), raw, Ordering::AcqRel, Ordering::Relaxed)
        {
            Ok(_) => Ok(()),
            // SAFETY: point 3: the pointer just made, never published.
            Err(_) => Err(unsafe { Weak::from_raw(raw) }),
        }
    }

    /// Takes back the `Weak` published for the child at `slot`, if it is still there: the child
    /// leaves. `None` if `slot` is not one of this word's, or if the node's cancel closed the
    /// word first (it took the `Weak`).
    #[inline]
    pub(super) fn retract(&self, slot: Slot) -> Option<Weak<T>> {
        let addr = slot.first_addr()?;
        // Compared by address only: the pointer written back out carries the provenance.
        let raw = self
            .word
            .compare_exchange(
                ptr::without_provenance_mut(addr),
                ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        // SAFETY: point 2: this exchange took the pointer out of the word.
        Some(unsafe { Weak::from_raw(raw) })
    }

    /// Closes the word for good (the node is done: invariant 25) and takes the child it held,
    /// if any. (A word that holds wakers keeps them: point 5.)
    #[inline]
    pub(super) fn close(&self) -> Option<Weak<T>> {
        let raw = self
            .word
            .swap(ptr::without_provenance_mut(CLOSED), Ordering::AcqRel);
        match held(raw) {
            Held::Nothing => None,
            // SAFETY: point 2: this swap took the pointer out of the word (point 4: odd, a
            // `Weak`'s).
            Held::Weak => Some(unsafe { Weak::from_raw(raw) }),
            Held::Spent => {
                self.put_back(raw);
                None
            }
        }
    }

    /// Puts back a `Spent` that `close` took out of the word (point 5). Never freed here: it may
    /// be lent (`spent`); if another was kept in between, this one is leaked. No walk comes
    /// here: a node's word is closed as it is marked, before any `Spent` is kept in it.
    #[cold]
    #[inline(never)]
    fn put_back(&self, raw: *mut ()) {
        let closed = ptr::without_provenance_mut(CLOSED);
        let _ = self
            .word
            .compare_exchange(closed, raw, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Keeps the wakers of a done node's waiters (invariant 26), for each `Done` to take its
    /// own ([`spent`](Self::spent)), then wakes them by reference. If the word holds a child or
    /// wakers already, wakes them all the same and drops them.
    pub(super) fn keep_and_wake(&self, spent: Box<Spent>) {
        let raw = Box::into_raw(spent);
        let mut now = self.word.load(Ordering::Relaxed);
        while now.is_null() || now.addr() == CLOSED {
            match self
                .word
                .compare_exchange_weak(now, raw.cast::<()>(), Ordering::AcqRel, Ordering::Relaxed)
            {
                // SAFETY: point 5: kept, so alive while `&self` lives; and this is its one
                // `Box`, just made by the caller and given here, so no other call wakes it.
                Ok(_) => return unsafe { (*raw).wake_all() },
                Err(seen) => now = seen,
            }
        }
        // SAFETY: point 5: the pointer just made, never published.
        let spent = unsafe { Box::from_raw(raw) };
        // SAFETY: its one `Box`, as above.
        unsafe { spent.wake_all() };
    }

    /// The wakers a cancel left here (invariant 26), if any.
    #[inline]
    pub(super) fn spent(&self) -> Option<&Spent> {
        let raw = self.word.load(Ordering::Acquire);
        match held(raw) {
            // SAFETY: point 5: a `Spent`'s pointer stays, and the `Spent` alive, while `&self`
            // lives; the acquire load sees it written whole (the keeping exchange releases).
            Held::Spent => Some(unsafe { &*raw.cast::<Spent>() }),
            _ => None,
        }
    }

    /// Whether a child is published (a hint: it may leave at once).
    #[cfg(test)]
    pub(super) fn is_set(&self) -> bool {
        matches!(held(self.word.load(Ordering::Acquire)), Held::Weak)
    }

    /// Takes the child of a node nobody else can reach (its drop).
    #[inline]
    pub(super) fn take_mut(&mut self) -> Option<Weak<T>> {
        // No read-modify-write: every node's drop comes here.
        #[cfg(not(loom))]
        let raw = std::mem::replace(self.word.get_mut(), ptr::null_mut());
        // Under loom, one that acquires: what the node's reference counts ensure, loom does not
        // see (they are std's atomics: `crate::loom`).
        #[cfg(loom)]
        let raw = self.word.swap(ptr::null_mut(), Ordering::Acquire);
        if raw.is_null() || raw.addr() == CLOSED {
            return None; // the usual drop
        }
        if raw.addr() & 1 == 0 {
            free_spent(raw);
            return None;
        }
        // SAFETY: point 2: this swap took the pointer out of the word (point 4: odd, a `Weak`'s).
        Some(unsafe { Weak::from_raw(raw) })
    }
}

/// Frees the `Spent` that `take_mut` took out of the word (point 5: `&mut self`, so none is
/// lent). Out of line: most nodes never hold one.
#[cold]
#[inline(never)]
fn free_spent(raw: *mut ()) {
    // SAFETY: point 5: the pointer came from `keep_and_wake`'s `Box`, and `take_mut`'s `&mut self`
    // ended every loan of it.
    drop(unsafe { Box::from_raw(raw.cast::<Spent>()) });
}

impl<T> Drop for FirstChild<T> {
    fn drop(&mut self) {
        drop(self.take_mut()); // point 3
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::FirstChild;
    use crate::tree::arc::Arc;

    /// The word's life: a first `Weak` published and retracted by its slot, a second one turned
    /// away, a closed word that takes the child and turns every later one away, a plain `Weak`
    /// turned away before it is published, and a word dropped with a child in it: every count
    /// comes back (under Miri: nothing leaked, nothing freed twice).
    #[test]
    fn publish_retract_close_and_drop_give_every_weak_back() {
        let (a, _a2, first) = Arc::new_pair_and_weak(1u64);
        let (b, _b2, other) = Arc::new_pair_and_weak(2u64);
        let word = FirstChild::new();
        let mut slot = None;
        assert!(word.publish(first, |s| slot = Some(s)).is_ok());
        let slot = slot.expect("the slot is told before the publish");
        assert!(slot.first_addr().is_some() && word.is_set());
        let other = word.publish(other, |_| {}).expect_err("the word holds a child");
        assert_eq!(Arc::weak_count(&b), 1, "given back whole");
        word.retract(slot).expect("still there").give_back(&a);
        assert_eq!(Arc::weak_count(&a), 0);
        assert!(word.retract(slot).is_none() && !word.is_set());

        let mut slot = None;
        assert!(word.publish(other, |s| slot = Some(s)).is_ok());
        let taken = word.close().expect("the child is taken as the word closes");
        assert!(
            word.retract(slot.unwrap()).is_none(),
            "closed: nothing to retract"
        );
        let downgraded = Arc::downgrade(&b);
        let downgraded = word
            .publish(downgraded, |_| unreachable!())
            .expect_err("not a first Weak");
        let (c, _c2, third) = Arc::new_pair_and_weak(3u64);
        let third = word.publish(third, |_| {}).expect_err("closed");
        assert!(word.close().is_none(), "closed once");
        taken.give_back(&b);
        drop(downgraded);
        assert_eq!(Arc::weak_count(&b), 0);

        let word = FirstChild::new();
        assert!(word.publish(third, |_| {}).is_ok());
        assert_eq!(Arc::weak_count(&c), 1);
        drop(word); // takes its child's `Weak` with it
        assert_eq!(Arc::weak_count(&c), 0);
    }

    /// A done node's word keeps its `Spent` for good (point 5) and wakes it once: a second
    /// one is woken and dropped, `close` and a publish leave the kept one as it is, `spent`
    /// lends it, and the drop frees it with the wakers left in it (under Miri: nothing leaked,
    /// nothing freed twice).
    #[test]
    fn a_spent_is_woken_and_stays_until_the_drop() {
        use crate::tests::counting::{counting, held, woken};
        use crate::tree::spent::Spent;

        let (count, waker) = counting();
        let word = FirstChild::<u64>::new();
        assert!(word.spent().is_none());
        assert!(word.close().is_none(), "closed, with nothing in it");
        let spent = Spent::new([Some(waker.clone()), None, Some(waker.clone())].into_iter());
        word.keep_and_wake(Box::new(spent));
        assert_eq!(
            (woken(&count), held(&count)),
            (2, 2),
            "kept, and woken by reference"
        );
        word.keep_and_wake(Box::new(Spent::new([Some(waker.clone())].into_iter())));
        assert_eq!(
            (woken(&count), held(&count)),
            (3, 2),
            "a second one: woken and dropped"
        );
        assert!(word.close().is_none() && !word.is_set(), "close leaves it");
        let (a, _a2, first) = Arc::new_pair_and_weak(1u64);
        let first = word
            .publish(first, |_| {})
            .expect_err("no child in a word that holds one");
        first.give_back(&a);
        let taken = word.spent().and_then(|s| s.take(2)).expect("the waker at key 2");
        assert!(
            word.spent().is_some_and(|s| s.take(2).is_none()),
            "the same one, taken once"
        );
        drop(taken);
        assert_eq!(held(&count), 1, "one left in the word");
        drop(word);
        assert_eq!(held(&count), 0, "freed with the word");

        let word = FirstChild::<u64>::new();
        word.keep_and_wake(Box::new(Spent::new([Some(waker.clone())].into_iter())));
        assert_eq!(
            (woken(&count), held(&count)),
            (4, 1),
            "an empty word keeps it too"
        );
        drop(word);
        assert_eq!(held(&count), 0);
    }
}
