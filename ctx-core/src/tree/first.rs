//! [`FirstChild`]: a cancel node's first plain child, kept in one atomic word outside the lock
//! (invariant 25), so that attaching and leaving take one compare-exchange each.
//!
//! The word is empty (null), holds the first [`Weak`] of a child (a raw pointer with its tag:
//! `arc.rs`, point 6, so it is odd), or is [`CLOSED`] (address 2), which the node's cancel
//! leaves for good. The child's slot records that raw pointer's address (`Slot::first`), which
//! no other child can have while this one lives: its `Weak` keeps the allocation.
//!
//! # Safety argument (this module alone)
//!
//! 1. A pointer is written into the word only by [`FirstChild::publish`], which takes a `Weak`
//!    by value and turns it into its raw pointer (`Weak::into_raw`): the word then owns that
//!    `Weak`'s count. Only a compare-exchange from null writes it, so nothing it owned is
//!    overwritten.
//! 2. A pointer leaves the word only by a read-modify-write that replaced it (null or
//!    `CLOSED` written in its place): `retract`, `close`, or `take_mut` (which has `&mut self`).
//!    Whoever made that change is the only one to get that pointer back, and makes it a `Weak`
//!    again (`Weak::from_raw`) exactly once. So each published `Weak` is rebuilt once, by one
//!    owner, and never while the word still holds it.
//! 3. A publish that fails gives the caller back the very pointer it made (never seen by
//!    anyone), rebuilt once. `Drop` takes what is left (point 2), so no count is leaked.
//! 4. Null and `CLOSED` are never rebuilt: every path compares with them first.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr;

use super::arc::Weak;
use super::word::Slot;
use crate::loom::{AtomicPtr, Ordering};

/// The word of a node that is done: nothing is published in it any more. No `Weak`'s pointer
/// (odd, point 6 of `arc.rs`) or null.
const CLOSED: usize = 2;

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
    /// if any.
    #[inline]
    pub(super) fn close(&self) -> Option<Weak<T>> {
        let raw = self
            .word
            .swap(ptr::without_provenance_mut(CLOSED), Ordering::AcqRel);
        if raw.is_null() || raw.addr() == CLOSED {
            return None;
        }
        // SAFETY: point 2: this swap took the pointer out of the word (point 4: not null or
        // `CLOSED`).
        Some(unsafe { Weak::from_raw(raw) })
    }

    /// Whether a child is published (a hint: it may leave at once).
    #[cfg(test)]
    pub(super) fn is_set(&self) -> bool {
        let raw = self.word.load(Ordering::Acquire);
        !raw.is_null() && raw.addr() != CLOSED
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
            return None;
        }
        // SAFETY: point 2: this swap took the pointer out of the word.
        Some(unsafe { Weak::from_raw(raw) })
    }
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
}
