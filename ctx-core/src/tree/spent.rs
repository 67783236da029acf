//! [`Spent`]: the wakers of a done node's waiters, kept in the node by the cancel that wakes
//! them by reference, for each waiter to take and drop itself, on its own thread (invariant 26).
//!
//! A cancel that wakes many waiters by value makes two atomic read-modify-writes of each
//! waker's own (its wake and its drop) on the canceling thread; by reference, one. The node
//! keeps the wakers first (its first-child word, closed, holds the `Spent`: `first.rs`), then
//! the cancel wakes them in key order ([`Spent::wake_all`]), and says how far it has got
//! (`passed`) every [`BATCH`] places. A `Done` that answers or is dropped takes its own waker
//! ([`Spent::take`]: one compare-exchange of its place's flag, and the waker's drop) once the cancel has
//! passed its key; one that comes earlier marks its place `LEFT`, and the cancel drops that
//! waker when it has passed the batch (or, if the two miss each other, the node's drop does).
//! So the usual waker is dropped by its own task, and none outlives its node.
//!
//! # Safety argument (this module alone)
//!
//! A place's flag is `EMPTY` (no waker), `FULL`, `LEFT` (a waker its `Done` let go of before
//! `passed` reached it) or `TAKEN` (moved out: final).
//!
//! 1. Every place is written once, by [`Spent::new`], before the `Spent` exists. So whoever can
//!    reach a `Spent` (a `&Spent`, from any thread: `Sync` below) sees every place written.
//! 2. A waker is moved out only by whoever changes its flag from `FULL` or `LEFT` to `TAKEN`
//!    with a read-modify-write (`take`'s compare-exchange, `wake_all`'s sweep), or by `Drop`,
//!    which has `&mut self` and skips `TAKEN`. `TAKEN` never changes. So each waker is moved
//!    out once, by one thread.
//! 3. `wake_all` runs at most once per `Spent` (its contract: it is `unsafe`). It borrows the
//!    waker at key `k` (to wake it) only before it stores a `passed` above `k` (release), and
//!    only while the flag is not `TAKEN`. `take` moves a waker out (point 2) only after it loaded a
//!    `passed` above its key (acquire): after the borrow. Below that, `take` only marks the
//!    place `LEFT` (a compare-exchange from `FULL`), which moves nothing; the sweep that follows
//!    the store moves a `LEFT` waker on `wake_all`'s own thread, after its own borrow. So no
//!    waker is moved while it is borrowed.
//! 4. `Sync`: through `&Spent` a waker is only borrowed by `wake_all` and moved by whoever wins
//!    its flag (points 2 and 3); `Waker` is `Send + Sync`.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Waker;

use crate::loom::{AtomicU8, AtomicUsize, Ordering};

/// No waker at this key (a free place, or an after-func's).
const EMPTY: u8 = 0;
/// A waker nobody has taken.
const FULL: u8 = 1;
/// A waker its `Done` let go of before the cancel passed it: the cancel's sweep (or the
/// node's drop) drops it.
const LEFT: u8 = 2;
/// Moved out. Final.
const TAKEN: u8 = 3;

/// How many places `wake_all` wakes between two stores of `passed`: a `Done` woken early in a
/// batch leaves its waker to the sweep, one woken later takes it itself.
const BATCH: usize = 32;

/// The wakers of a done node's waiters, at the keys they registered them under (see the module
/// doc).
pub(super) struct Spent {
    places: Vec<Place>,
    /// Every place below it has been woken (or skipped): its waker is its `Done`'s to take.
    passed: AtomicUsize,
}

/// A place: 24 bytes, those of a slab's place, so that [`Spent::new`] is made in the slab's own
/// allocation (`Vec`'s in-place `collect`; `node.rs` checks the sizes).
struct Place {
    waker: Cell,
    state: AtomicU8,
}

// SAFETY: point 4 of the module doc.
unsafe impl Sync for Spent {}

impl Spent {
    /// The places of `wakers`, in key order (`None`: no waiter at that key), none woken yet.
    pub(super) fn new(wakers: impl Iterator<Item = Option<Waker>>) -> Spent {
        Spent {
            places: wakers
                .map(|w| match w {
                    Some(w) => Place {
                        waker: Cell::new(MaybeUninit::new(w)),
                        state: AtomicU8::new(FULL),
                    },
                    None => Place {
                        waker: Cell::new(MaybeUninit::uninit()),
                        state: AtomicU8::new(EMPTY),
                    },
                })
                .collect(),
            passed: AtomicUsize::new(0),
        }
    }

    /// Wakes every waker by reference, in key order, saying how far it has got every [`BATCH`]
    /// places. A panicking waker (an executor's bug) is contained: the others are woken all
    /// the same.
    ///
    /// # Safety
    ///
    /// At most once per `Spent` (point 3): whoever made it and gave it away calls this once.
    pub(super) unsafe fn wake_all(&self) {
        for (b, batch) in self.places.chunks(BATCH).enumerate() {
            for place in batch {
                if matches!(place.state.load(Ordering::Relaxed), FULL | LEFT) {
                    // SAFETY: point 3: `passed` is not above this key yet, and the flag was
                    // not `TAKEN`, so nobody moves the waker while it is borrowed.
                    unsafe { place.waker.wake_by_ref() };
                }
            }
            self.passed.store(b * BATCH + batch.len(), Ordering::Release);
            for place in batch {
                if place.state.load(Ordering::Relaxed) == LEFT
                    && place
                        .state
                        .compare_exchange(LEFT, TAKEN, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    // SAFETY: point 2: this exchange moved the flag to `TAKEN`.
                    drop(unsafe { place.waker.read() });
                }
            }
        }
    }

    /// The waker at `key`, for its `Done` to drop, if the cancel has passed it; else marks it
    /// `LEFT`, for the cancel to drop. Each waker comes out once.
    #[inline]
    pub(super) fn take(&self, key: usize) -> Option<Waker> {
        let place = self.places.get(key)?;
        if self.passed.load(Ordering::Acquire) <= key {
            // Still to be woken, or being woken: the cancel drops it (point 3).
            let _ = place
                .state
                .compare_exchange(FULL, LEFT, Ordering::Release, Ordering::Relaxed);
            return None;
        }
        if place
            .state
            .compare_exchange(FULL, TAKEN, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return None; // none here, or moved out already (a `LEFT` one is the sweep's)
        }
        // SAFETY: point 2: this exchange moved the flag from `FULL` to `TAKEN`; point 3: the cancel's
        // borrow is over (the acquire load of `passed` above).
        Some(unsafe { place.waker.read() })
    }

    /// How many wakers nobody has taken (tests).
    #[cfg(all(test, not(loom)))]
    pub(super) fn left(&self) -> usize {
        self.places
            .iter()
            .filter(|p| matches!(p.state.load(Ordering::Relaxed), FULL | LEFT))
            .count()
    }
}

impl Spent {
    /// Where the places live (`node.rs`'s tests).
    #[cfg(all(test, not(loom), not(feature = "tracing")))]
    pub(super) fn places_addr(&self) -> usize {
        self.places.as_ptr().addr()
    }
}

/// A place's size and alignment (`node.rs` checks them against a slab's place).
#[cfg(all(test, not(loom), not(feature = "tracing")))]
pub(super) const PLACE_LAYOUT: (usize, usize) = (size_of::<Place>(), align_of::<Place>());

impl Drop for Spent {
    fn drop(&mut self) {
        for place in &mut self.places {
            if matches!(place.state.load(Ordering::Relaxed), FULL | LEFT) {
                // SAFETY: point 2: `&mut self`, and the flag is not `TAKEN`.
                drop(unsafe { place.waker.read() });
            }
        }
    }
}

/// A place's waker, read once (`loom`'s cell under loom, which checks that no two reads race).
#[cfg(not(loom))]
struct Cell(std::cell::UnsafeCell<MaybeUninit<Waker>>);

#[cfg(loom)]
struct Cell(loom::cell::UnsafeCell<MaybeUninit<Waker>>);

impl Cell {
    fn new(w: MaybeUninit<Waker>) -> Cell {
        #[cfg(not(loom))]
        return Cell(std::cell::UnsafeCell::new(w));
        #[cfg(loom)]
        return Cell(loom::cell::UnsafeCell::new(w));
    }

    /// Moves the waker out.
    ///
    /// # Safety
    ///
    /// The cell holds a waker that nobody else moves out or borrows, now or later.
    unsafe fn read(&self) -> Waker {
        #[cfg(not(loom))]
        // SAFETY: the caller's.
        return unsafe { (*self.0.get()).assume_init_read() };
        #[cfg(loom)]
        // SAFETY: the caller's.
        return self.0.with_mut(|p| unsafe { (*p).assume_init_read() });
    }

    /// Wakes the waker by reference.
    ///
    /// # Safety
    ///
    /// The cell holds a waker that nobody moves out until this returns.
    unsafe fn wake_by_ref(&self) {
        let wake = |w: &Waker| {
            let _ = catch_unwind(AssertUnwindSafe(|| w.wake_by_ref()));
        };
        #[cfg(not(loom))]
        // SAFETY: the caller's.
        wake(unsafe { (*self.0.get()).assume_init_ref() });
        #[cfg(loom)]
        // SAFETY: the caller's.
        self.0.with(|p| wake(unsafe { (*p).assume_init_ref() }));
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use super::Spent;
    use crate::tests::counting::{counting, held, woken};

    /// Each waker is woken once by reference, then taken once, by its key; one never taken,
    /// and none at a free key, are dropped with the `Spent` (under Miri: nothing leaked,
    /// nothing dropped twice).
    #[test]
    fn each_waker_is_woken_then_taken_once_and_the_rest_dropped_with_it() {
        let (count, waker) = counting();
        let places = vec![
            Some(waker.clone()),
            None,
            Some(waker.clone()),
            Some(waker.clone()),
        ];
        let spent = Spent::new(places.into_iter());
        assert_eq!((held(&count), spent.left(), woken(&count)), (3, 3, 0));
        // SAFETY: once.
        unsafe { spent.wake_all() };
        assert_eq!(
            (held(&count), woken(&count)),
            (3, 3),
            "woken by reference, all kept"
        );
        let w = spent.take(0).expect("a waker at key 0");
        assert!(spent.take(0).is_none(), "taken once");
        assert!(spent.take(1).is_none(), "nothing at a free key");
        assert!(spent.take(9).is_none(), "nor past the end");
        drop(w);
        assert_eq!((held(&count), spent.left()), (2, 2));
        drop(spent);
        assert_eq!(held(&count), 0, "the two left were dropped with it");
    }

    /// A waker let go of before the cancel passed it is dropped by the cancel's sweep, after
    /// it is woken; none is dropped twice.
    #[test]
    fn a_waker_let_go_early_is_dropped_by_the_sweep() {
        let (count, waker) = counting();
        let n = 2 * super::BATCH + 3;
        let spent = Spent::new((0..n).map(|_| Some(waker.clone())));
        assert!(
            spent.take(5).is_none() && spent.take(n - 1).is_none(),
            "not passed: left"
        );
        assert_eq!((held(&count), spent.left()), (n, n));
        // SAFETY: once.
        unsafe { spent.wake_all() };
        assert_eq!(woken(&count), n);
        assert_eq!(held(&count), n - 2, "the two left were dropped by the sweep");
        assert!(spent.take(5).is_none(), "and are not taken again");
        assert!(spent.take(6).is_some());
        drop(spent);
        assert_eq!(held(&count), 0);
    }

    /// A cancel waking while two threads take every key: each waker comes out exactly once,
    /// by a taker, the sweep or the drop, and every one is woken.
    #[test]
    fn racing_takers_and_the_cancel_move_each_waker_once() {
        let (count, waker) = counting();
        let n = if cfg!(miri) { 40 } else { 1000 };
        let spent = Spent::new((0..n).map(|_| Some(waker.clone())));
        std::thread::scope(|s| {
            // SAFETY: once.
            s.spawn(|| unsafe { spent.wake_all() });
            s.spawn(|| (0..n).for_each(|k| drop(spent.take(k))));
            s.spawn(|| (0..n).rev().for_each(|k| drop(spent.take(k))));
        });
        assert_eq!(woken(&count), n);
        assert_eq!(held(&count), spent.left());
        drop(spent);
        assert_eq!(held(&count), 0);
    }

    /// A panicking waker does not keep the others asleep (contained where panics unwind).
    #[test]
    #[cfg(panic = "unwind")]
    fn a_panicking_waker_is_contained() {
        struct Boom;
        impl Wake for Boom {
            fn wake(self: Arc<Self>) {
                panic!("a waker that panics");
            }
        }
        let (count, waker) = counting();
        let boom = Waker::from(Arc::new(Boom));
        let spent = Spent::new([Some(boom), Some(waker.clone())].into_iter());
        // SAFETY: once.
        unsafe { spent.wake_all() };
        assert_eq!(woken(&count), 1);
        drop(spent);
        assert_eq!(held(&count), 0);
    }
}

/// Loom: the cancel's waking against a taker of each key and the drop (points 2 and 3).
#[cfg(all(test, loom))]
mod loom_tests {
    use std::sync::Arc;
    use std::task::{Wake, Waker};

    use loom::sync::atomic::{AtomicUsize, Ordering};
    use loom::thread;

    use super::Spent;

    struct Flag(AtomicUsize);

    impl Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn loom_spent_wake_all_vs_take() {
        loom::model(|| {
            let a = Arc::new(Flag(AtomicUsize::new(0)));
            let b = Arc::new(Flag(AtomicUsize::new(0)));
            let wakers = [Waker::from(a.clone()), Waker::from(b.clone())];
            let spent = Arc::new(Spent::new(wakers.into_iter().map(Some)));
            let s2 = spent.clone();
            let t = thread::spawn(move || {
                drop(s2.take(1));
                drop(s2.take(0));
            });
            // SAFETY: once.
            unsafe { spent.wake_all() };
            t.join().unwrap();
            assert_eq!(a.0.load(Ordering::SeqCst), 1);
            assert_eq!(b.0.load(Ordering::SeqCst), 1);
            drop(spent);
            assert_eq!(Arc::strong_count(&a), 1, "each waker moved out once");
            assert_eq!(Arc::strong_count(&b), 1);
        });
    }
}
