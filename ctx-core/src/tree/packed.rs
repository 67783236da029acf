//! One of nothing, three owners of one word each, or a `Waker`, in two words: [`Packed`].
//!
//! What a cancel node's lock guards is one of these (`node.rs`, `Guarded`: nothing, a first
//! child, the dependents part, a cause, or a first waiter). As an enum it would take three
//! words: a waker is two, and its one niche (a null vtable) cannot tell four other forms
//! apart. The node has room for two (`tests::sizes` in `node.rs`: 88 bytes). Here the second
//! word tells the form: a waker's vtable address, or one of the addresses 0 to 3, which no
//! vtable can have.
//!
//! # Safety argument (this module alone)
//!
//! 1. `tag` is `EMPTY`, `FORM_A`, `FORM_B` or `FORM_C` (the addresses 0, 1, 2 and 3), or the
//!    address of a `&'static RawWakerVTable`. A vtable is aligned to at least 4 (asserted at
//!    compile time: it holds function pointers) and not null, so its address is none of 0 to 3,
//!    and [`Packed::form`] tells the five apart.
//! 2. The fields are private, and only [`Packed::new`] (and the constant [`Packed::EMPTY`])
//!    writes them: for `A`, `B` or `C` it moves the owner into that field of `word` and sets the
//!    matching tag; for a waker it keeps the waker's data pointer in `word.data` and its vtable
//!    in `tag`, and forgets the waker (so its clone of the waker's data is now ours). Nothing
//!    else writes either field, except `mem::replace` of a whole `Packed` by another. So the
//!    tag always says which field of `word` holds a live value.
//! 3. Each value is read out once: [`Packed::into_unpacked`] takes `self` by value, wraps it in
//!    `ManuallyDrop` (its `Drop` never runs), and moves out the field the tag names — or
//!    rebuilds the waker from the very data pointer and vtable the forgotten waker had, which
//!    owns what it owned (the `RawWakerVTable` contract holds as it did for that waker).
//!    `Drop` and [`Packed::take`] go through it, after replacing `self` with `EMPTY`.
//! 4. The references handed out ([`Packed::b`], [`Packed::b_mut`], [`Packed::c`]) read the field
//!    the tag names, and borrow `self`: the value cannot be moved out or replaced while they
//!    live. A waker is only compared, by its two words, never lent.
//! 5. `Packed` owns one `A`, `B`, `C` or `Waker` and nothing else, so it is `Send` when all
//!    three are (a `Waker` is). It is not `Sync` (nothing needs it: a node keeps it under its
//!    lock).
//!
//! The unit tests below, which run under Miri with both borrow models, make, read, replace and
//! drop every form, and count that each owner and each waker clone is dropped once.

#![allow(unsafe_code)]

use std::mem::{self, ManuallyDrop};
use std::ptr;
use std::task::{RawWakerVTable, Waker};

/// What a [`Packed`] holds, by value.
pub(super) enum Unpacked<A, B, C> {
    Empty,
    A(A),
    B(B),
    C(C),
    Waker(Waker),
}

/// Which form a [`Packed`] holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Form {
    Empty,
    A,
    B,
    C,
    Waker,
}

/// An [`Unpacked`] in two words (see the module's doc for the argument that makes its `unsafe`
/// sound).
///
/// The tag comes first (`repr(C)`), where an enum's tag is: a node's fields keep the places
/// they had (measured: a cancel walk that reads the tag first is ~10% slower with it second).
#[repr(C)]
pub(super) struct Packed<A, B, C> {
    /// Which: one of the four small tags, or a waker's vtable (point 1).
    tag: *const RawWakerVTable,
    /// The `A`, `B` or `C`, or a waker's data pointer; nothing when empty (point 2).
    word: Word<A, B, C>,
}

/// The first word of a [`Packed`]: which field holds a value is its `tag`'s to say.
union Word<A, B, C> {
    none: (),
    a: ManuallyDrop<A>,
    b: ManuallyDrop<B>,
    c: ManuallyDrop<C>,
    data: *const (),
}

const EMPTY: usize = 0;
const FORM_A: usize = 1;
const FORM_B: usize = 2;
const FORM_C: usize = 3;

// Point 1: no vtable's address is one of the four tags.
const _: () = assert!(mem::align_of::<RawWakerVTable>() > FORM_C);

/// The tag of a form other than a waker: an address no vtable has (point 1).
const fn tag(form: usize) -> *const RawWakerVTable {
    ptr::without_provenance(form)
}

// SAFETY: a `Packed` owns one `A`, `B`, `C` or waker (`Send`) and nothing else (point 5); its
// raw pointers are that waker's, which is `Send`.
unsafe impl<A: Send, B: Send, C: Send> Send for Packed<A, B, C> {}

impl<A, B, C> Packed<A, B, C> {
    /// Holding nothing.
    pub(super) const EMPTY: Self = Packed {
        word: Word { none: () },
        tag: tag(EMPTY),
    };

    /// `value`, packed (the only constructor: point 2).
    #[inline]
    pub(super) fn new(value: Unpacked<A, B, C>) -> Self {
        match value {
            Unpacked::Empty => Self::EMPTY,
            Unpacked::A(a) => Packed {
                word: Word {
                    a: ManuallyDrop::new(a),
                },
                tag: tag(FORM_A),
            },
            Unpacked::B(b) => Packed {
                word: Word {
                    b: ManuallyDrop::new(b),
                },
                tag: tag(FORM_B),
            },
            Unpacked::C(c) => Packed {
                word: Word {
                    c: ManuallyDrop::new(c),
                },
                tag: tag(FORM_C),
            },
            Unpacked::Waker(waker) => {
                // Ours now: rebuilt once, by `into_unpacked` (point 3).
                let waker = ManuallyDrop::new(waker);
                Packed {
                    word: Word { data: waker.data() },
                    tag: waker.vtable(),
                }
            }
        }
    }

    /// Which form it holds.
    #[inline]
    pub(super) fn form(&self) -> Form {
        match self.tag.addr() {
            EMPTY => Form::Empty,
            FORM_A => Form::A,
            FORM_B => Form::B,
            FORM_C => Form::C,
            _ => Form::Waker,
        }
    }

    /// The value, by value.
    #[inline]
    pub(super) fn into_unpacked(self) -> Unpacked<A, B, C> {
        let this = ManuallyDrop::new(self);
        match this.form() {
            Form::Empty => Unpacked::Empty,
            // SAFETY (each arm): the tag names the field that holds a live value (point 2), read
            // out once: `this` is never used or dropped again (point 3).
            Form::A => Unpacked::A(ManuallyDrop::into_inner(unsafe { ptr::read(&this.word.a) })),
            Form::B => Unpacked::B(ManuallyDrop::into_inner(unsafe { ptr::read(&this.word.b) })),
            Form::C => Unpacked::C(ManuallyDrop::into_inner(unsafe { ptr::read(&this.word.c) })),
            Form::Waker => {
                // SAFETY: the tag is a waker's vtable and `data` that waker's data pointer, kept
                // by `new` from a waker it forgot (points 1 and 2); the rebuilt waker takes the
                // forgotten one's place, once (point 3).
                Unpacked::Waker(unsafe {
                    let vtable: &'static RawWakerVTable = &*this.tag;
                    Waker::new(this.word.data, vtable)
                })
            }
        }
    }

    /// The value, leaving nothing in its place.
    #[inline]
    pub(super) fn take(&mut self) -> Unpacked<A, B, C> {
        mem::replace(self, Self::EMPTY).into_unpacked()
    }

    /// Puts `value` in place of the old one, which it returns.
    #[inline]
    pub(super) fn replace(&mut self, value: Unpacked<A, B, C>) -> Unpacked<A, B, C> {
        mem::replace(self, Packed::new(value)).into_unpacked()
    }

    /// The `B`, if it holds one.
    #[inline]
    pub(super) fn b(&self) -> Option<&B> {
        // SAFETY: the tag says `b` holds a live value (point 2); the reference borrows `self`
        // (point 4).
        (self.form() == Form::B).then(|| unsafe { &*self.word.b })
    }

    /// The `B`, mutably, if it holds one.
    #[inline]
    pub(super) fn b_mut(&mut self) -> Option<&mut B> {
        // SAFETY: as `b`; the `&mut` borrows `self` mutably (point 4).
        (self.form() == Form::B).then(|| unsafe { &mut *self.word.b })
    }

    /// The `C`, if it holds one.
    #[inline]
    pub(super) fn c(&self) -> Option<&C> {
        // SAFETY: as `b`.
        (self.form() == Form::C).then(|| unsafe { &*self.word.c })
    }

    /// Whether it holds a waker that wakes the same task as `waker` (`Waker::will_wake`: the
    /// same data pointer and vtable).
    #[inline]
    pub(super) fn holds_waker_like(&self, waker: &Waker) -> bool {
        // SAFETY: `data` is read only when the tag is a waker's (point 2): a raw pointer,
        // compared, not followed.
        self.form() == Form::Waker
            && ptr::eq(self.tag, waker.vtable())
            && unsafe { self.word.data } == waker.data()
    }
}

impl<A, B, C> Drop for Packed<A, B, C> {
    #[inline]
    fn drop(&mut self) {
        if self.form() != Form::Empty {
            drop(self.take());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Weak};
    use std::task::{Wake, Waker};

    use super::{Form, Packed, Unpacked};

    type P = Packed<Weak<u8>, Box<u32>, Arc<String>>;

    /// A waker that counts its wakes; its clones are counted by its `Arc`.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn two_words() {
        assert_eq!(size_of::<P>(), 2 * size_of::<usize>());
    }

    #[test]
    fn every_form_round_trips() {
        let strong = Arc::new(7u8);
        let cause = Arc::new(String::from("why"));
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());

        let mut p = P::EMPTY;
        assert_eq!(p.form(), Form::Empty);
        assert!(p.b().is_none() && p.c().is_none());

        assert!(matches!(
            p.replace(Unpacked::A(Arc::downgrade(&strong))),
            Unpacked::Empty
        ));
        assert_eq!(p.form(), Form::A);
        assert!(p.b().is_none() && p.c().is_none());
        assert_eq!(Arc::weak_count(&strong), 1);

        let Unpacked::A(weak) = p.replace(Unpacked::B(Box::new(5))) else {
            panic!("not the A");
        };
        assert_eq!(weak.upgrade().as_deref(), Some(&7));
        drop(weak);
        assert_eq!(Arc::weak_count(&strong), 0);
        **p.b_mut().expect("a B") += 1;
        assert_eq!(p.b().map(|b| **b), Some(6));
        assert!(p.c().is_none());

        let Unpacked::B(b) = p.replace(Unpacked::C(cause.clone())) else {
            panic!("not the B");
        };
        assert_eq!(*b, 6);
        assert_eq!(p.c().map(|c| c.as_str()), Some("why"));
        assert_eq!(Arc::strong_count(&cause), 2);

        // `will_wake` is best-effort (Miri, for one, gives a vtable many addresses): the packed
        // clone answers as the clone itself does.
        let clone = waker.clone();
        let like = clone.will_wake(&waker);
        let Unpacked::C(c) = p.replace(Unpacked::Waker(clone)) else {
            panic!("not the C");
        };
        drop(c);
        assert_eq!(Arc::strong_count(&cause), 1);
        assert_eq!(p.form(), Form::Waker);
        assert_eq!(p.holds_waker_like(&waker), like);
        assert!(cfg!(miri) || like, "outside Miri a clone wakes the same task");
        assert!(!p.holds_waker_like(Waker::noop()));
        assert!(p.b().is_none() && p.c().is_none());
        assert_eq!(Arc::strong_count(&count), 3); // ours, `waker`, the packed clone

        let Unpacked::Waker(back) = p.take() else {
            panic!("not the waker");
        };
        assert_eq!(p.form(), Form::Empty);
        assert_eq!(back.will_wake(&waker), like);
        back.wake(); // consumes the packed clone
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&count), 2);
    }

    #[test]
    fn drop_releases_what_it_holds() {
        let strong = Arc::new(1u8);
        drop(P::new(Unpacked::A(Arc::downgrade(&strong))));
        assert_eq!(Arc::weak_count(&strong), 0);

        drop(P::new(Unpacked::B(Box::new(9)))); // Miri reports a leak if not freed

        let cause = Arc::new(String::new());
        drop(P::new(Unpacked::C(cause.clone())));
        assert_eq!(Arc::strong_count(&cause), 1);

        let count = Arc::new(Count(AtomicUsize::new(0)));
        drop(P::new(Unpacked::Waker(Waker::from(count.clone()))));
        assert_eq!(Arc::strong_count(&count), 1);
        assert_eq!(count.0.load(Ordering::Relaxed), 0, "dropped, not woken");

        drop(P::EMPTY);
    }

    /// A `Packed` moves to another thread with what it holds.
    #[test]
    fn sent_to_another_thread() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let p = P::new(Unpacked::Waker(Waker::from(count.clone())));
        std::thread::spawn(move || {
            if let Unpacked::Waker(w) = p.into_unpacked() {
                w.wake();
            }
        })
        .join()
        .expect("the thread ends");
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        assert_eq!(Arc::strong_count(&count), 1);
    }
}
