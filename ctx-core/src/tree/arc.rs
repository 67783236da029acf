//! The engine's own `Arc` and `Weak`: std's, with fewer atomic read-modify-writes.
//!
//! Every cancel node is shared this way (`Arc<Node>`). On this machine an uncontended atomic
//! read-modify-write costs as much as the rest of a `with_cancel`'s instructions together
//! (benches/NOTES.md), and `std::sync::Arc` makes two that a node does not need:
//!
//! * **The handle's count.** A `with_cancel*`, `with_deadline*` or `with_timeout*` hands out the
//!   node twice (the `Ctx` and its handle). [`Arc::new_pair`] makes both owners at once, with the
//!   count written as 2 before the node is shared: std's `Arc::new` then `clone` adds the second
//!   with a `fetch_add`.
//!   A node that will register with its parent (which holds it weakly) is born with that
//!   `Weak` counted too ([`Arc::new_pair_and_weak`]), where `Arc::downgrade` would add it.
//! * **The last drop's weak count.** All strong owners together hold one weak count, which std
//!   gives back with a `fetch_sub` after the value is dropped. Here both counts share one word,
//!   so the write that takes the strong count to 0 also tells whether that weak count is alone:
//!   then no `Weak` exists and none can be made any more (point 4 below), and the allocation is
//!   freed without another write (if a `Weak` was left, the last owner loads the word again
//!   after the value's drop, which may have let one go).
//! * **A walk's `Weak` made an `Arc`.** A cancel walk takes the `Weak`s its node kept of its
//!   children and needs each child strongly: [`Weak::into_arc`] turns a weak count into a strong
//!   one in one compare-exchange of the shared word, where `upgrade` and the `Weak`'s drop make
//!   two read-modify-writes.
//! * **The registration's `Weak` given back by an owner.** A child leaving its parent takes back
//!   the `Weak` the parent kept of it (the one it was born with), while the child's owner holds
//!   it strongly. [`Weak::give_back`] records in the allocation that the count is settled, with
//!   a plain store, and the last owner takes it off with its own (point 6), where the `Weak`'s
//!   drop would write the shared word.
//!
//! The API is the part of std's the engine uses, with std's meaning.
//!
//! # Safety argument (this module alone)
//!
//! 1. The only way to make an `Arc` is [`Arc::new`], [`Arc::new_pair`] or
//!    [`Arc::new_pair_and_weak`], which box an `Inner` with `strong` equal to the number of
//!    `Arc`s returned and `weak` equal to 1 (the weak count all strong owners share) plus the
//!    number of `Weak`s returned, and keep the box's pointer; or [`Weak::into_arc`] (point 2).
//!    `strong` and `weak` are the two halves of one atomic word, `counts`. The fields of `Arc`,
//!    `Weak` and `Inner` are private; after that only the counts are written, and the value is
//!    dropped once (point 3). A `Weak` is made only there, by [`Arc::downgrade`] or by cloning
//!    one, or is the dangling [`Weak::new`], which points at nothing and is never followed.
//! 2. Each `Arc` owns one count of `strong`, each non-dangling `Weak` one of `weak`; while
//!    `strong > 0`, the strong owners together own one more of `weak`. A count is added only
//!    by an owner (`clone`, `downgrade`: `Relaxed`, as std: the owner keeps the allocation alive
//!    meanwhile), or, for `strong`, by [`Weak::upgrade`] with a compare-exchange that never
//!    moves it from 0, or by [`Weak::into_arc`], whose compare-exchange (never from 0 either)
//!    moves the `Weak`'s own weak count to `strong` in the same write (the `Weak` is then
//!    forgotten: its count is the new `Arc`'s). Counts are given back with `Release`; whoever
//!    gives back the last fences with `Acquire` first, so every other owner's use happens
//!    before what follows. Neither half can spill into the other: a count past 2^31 aborts the
//!    process (`check_count`), as std's does past `isize::MAX`.
//! 3. The `Arc` that takes `strong` from 1 to 0 (its drop, or [`Arc::try_unwrap`], which moves
//!    the value out instead) is the only one to touch the value from then on: no `Arc` is left,
//!    and none can be made (point 2: `upgrade` and `into_arc` never move `strong` from 0). It
//!    drops the value in place, then gives back the strong owners' weak count (point 4). A
//!    `Weak` reads only the counts, through a reference to that field alone (never to the
//!    `Inner` or the value), so a value being dropped is never borrowed by one.
//! 4. Once `strong` is 0, `weak` only goes down: a `Weak` is made only from an `Arc` (none left)
//!    or from another `Weak` (point 1). So if the write that took `strong` to 0 found `weak` at
//!    1, that count was the strong owners' own and no `Weak` existed, nor can one come: the last
//!    `Arc` frees the allocation after the value's drop without writing (`drop_alone`). Else it
//!    loads the word after the value's drop: `weak == 1` (`Acquire`, pairing with the `Release`
//!    of every `Weak`'s drop) means the same; otherwise it takes its count off as any `Weak`'s
//!    drop does, and whoever takes the last one frees.
//! 5. References handed out (`&T` by `Deref`) borrow an `Arc`, so they cannot outlive the count
//!    it owns (2); `T` is shared across threads only if `T: Send + Sync` (the bounds of `Send`
//!    and `Sync`, as std's).
//! 6. The `Weak` that [`Arc::new_pair_and_weak`] returns is the allocation's *first*: its
//!    pointer carries [`FIRST`] in its low bit (an `Inner`'s address is a multiple of 8, and
//!    [`DANGLING`] is never tagged), which every use masks off. No other `Weak` carries it (a
//!    clone does not, `downgrade` does not, `into_arc` consumes it), so at most one first
//!    `Weak` exists per allocation, ever. [`Weak::give_back`] consumes it, given an `Arc` of
//!    the same allocation, without writing `counts`: it stores `settled = true` (`Release`)
//!    and forgets itself, so its count stays in `weak` and belongs from then on to the strong
//!    owners, with their own (point 2): they give back `1 + settled` counts where they gave
//!    back 1. `settled` is written once (one first `Weak`), while a strong owner lives (the
//!    `Arc` it was given is borrowed for the call, and released after it); the owner that takes
//!    `strong` to 0 fences with `Acquire` after every other owner's `Release` (point 2), so it
//!    reads the store, or made it itself. So `weak` counts every `Weak` left and the strong
//!    owners' share, as before, and point 4 holds with `1 + settled` for 1.
//! 7. [`Weak::give_back_dropped`] does the same for the value's own drop: given a `&mut T` at
//!    the very address of the value the first `Weak` points at (`T` not zero-sized: a
//!    zero-sized value's address proves nothing). A `&mut` to the value in an `Inner` exists
//!    only where the owner that took `strong` to 0 drops it in place (`drop_slow`; nothing here
//!    lends one otherwise, and an `Arc` lends only `&T`): that owner, on this thread, reads
//!    `settled` after the drop (`release_shared_weak`).
//! 8. [`Weak::into_raw`] forgets a `Weak` and returns its pointer, tag and all: the count it
//!    owned goes with the pointer, to whoever holds it (`first.rs` keeps one in an atomic word).
//!    [`Weak::from_raw`] is `unsafe`, and its contract is that the pointer came from `into_raw`
//!    and is made a `Weak` again once: so the count is owned by exactly one `Weak` again, as
//!    before the pair.
//!
//! The unit tests below run under Miri (stacked and tree borrows; its data-race detector and
//! weak-memory emulation on the threaded ones). Loom does not model these counts, as it did not
//! model std's: the process-wide roots are statics whose counts would outlive loom's executions.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ops::Deref;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering, fence};

/// A shared `T`, freed with its last owner (see the module's doc for the argument that makes
/// its `unsafe` sound).
pub(crate) struct Arc<T> {
    ptr: NonNull<Inner<T>>,
    /// Owns a `T` (for the drop check).
    _owns: PhantomData<Inner<T>>,
}

/// A non-owning handle to what an [`Arc`] shares: [`upgrade`](Weak::upgrade) gives an `Arc`
/// while one is left.
pub(crate) struct Weak<T> {
    /// An `Inner<T>`, or [`DANGLING`] for [`Weak::new`] (point 1).
    ptr: NonNull<Inner<T>>,
}

/// The allocation: the counts first (`repr(C)`, as std's), then the value.
#[repr(C)]
struct Inner<T> {
    /// Both counts in one word: `strong` in the high half (units of [`STRONG`]), `weak` in the
    /// low half (units of [`WEAK`]), so that one read-modify-write can move a count from one to
    /// the other ([`Weak::into_arc`]) and the last owner's own write tells it whether any
    /// `Weak` is left.
    counts: AtomicU64,
    /// Whether the first `Weak`'s count is the strong owners' now (point 6): set once, by
    /// [`Weak::give_back`].
    settled: AtomicU64,
    value: T,
}

impl<T> Inner<T> {
    /// The weak counts that the strong owners give back together (point 6): their shared one,
    /// and the first `Weak`'s once it was given back to them.
    #[inline(always)]
    fn owners_weak(&self) -> u64 {
        WEAK * (1 + self.settled.load(Ordering::Acquire))
    }
}

/// One strong count.
const STRONG: u64 = 1 << 32;
/// One weak count.
const WEAK: u64 = 1;

/// The strong count of a counts word.
#[inline(always)]
fn strong_of(counts: u64) -> u64 {
    counts >> 32
}

/// The weak count of a counts word.
#[inline(always)]
fn weak_of(counts: u64) -> u64 {
    counts & (STRONG - 1)
}

/// The address of [`Weak::new`]: no `Inner` is there (an allocation never ends at the last
/// address), and it is never followed.
const DANGLING: usize = usize::MAX;

/// The low bit of a first `Weak`'s pointer (point 6).
const FIRST: usize = 1;

/// Past this, a half could spill into the other; it would take 2^31 owners (or `Weak`s) of one
/// value at once, 16 GiB of them at the least, or as many leaked: the process aborts first, as
/// std's `Arc` does past `isize::MAX`.
const MAX_COUNT: u64 = i32::MAX as u64;

/// Aborts if a count that was `old` before one more was added has passed [`MAX_COUNT`].
#[inline(always)]
fn check_count(old: u64) {
    if old > MAX_COUNT {
        std::process::abort();
    }
}

// SAFETY: point 5: an `Arc` shares a `T` and counts it atomically, as std's `Arc`.
unsafe impl<T: Send + Sync> Send for Arc<T> {}
// SAFETY: as `Send`.
unsafe impl<T: Send + Sync> Sync for Arc<T> {}
// SAFETY: a `Weak` touches only the atomic counts, and gives an `Arc` (see above).
unsafe impl<T: Send + Sync> Send for Weak<T> {}
// SAFETY: as `Send`.
unsafe impl<T: Send + Sync> Sync for Weak<T> {}

impl<T> Arc<T> {
    /// `value`, shared, with one owner.
    #[inline]
    pub(crate) fn new(value: T) -> Arc<T> {
        Arc::from_inner(Self::alloc(value, 1, 0))
    }

    /// `value`, shared, with two owners from the start: no read-modify-write for the second.
    #[inline]
    pub(crate) fn new_pair(value: T) -> (Arc<T>, Arc<T>) {
        let ptr = Self::alloc(value, 2, 0);
        (Arc::from_inner(ptr), Arc::from_inner(ptr))
    }

    /// [`new_pair`](Arc::new_pair) and a [`Weak`], all three counted from the start: no
    /// read-modify-write for any of them (a cancel node that will register with its parent,
    /// which holds it weakly). The `Weak` is the allocation's first: an owner may take it back
    /// with [`Weak::give_back`].
    #[inline]
    pub(crate) fn new_pair_and_weak(value: T) -> (Arc<T>, Arc<T>, Weak<T>) {
        let ptr = Self::alloc(value, 2, 1);
        // Point 6: the only first `Weak` of this allocation.
        let first = Weak {
            ptr: ptr.map_addr(|a| a | FIRST),
        };
        (Arc::from_inner(ptr), Arc::from_inner(ptr), first)
    }

    /// Point 1: a boxed `Inner` with `strong` owners, and `weak_handles` `Weak`s besides the
    /// weak count the strong owners share.
    #[inline]
    fn alloc(value: T, strong: usize, weak_handles: usize) -> NonNull<Inner<T>> {
        let inner = Box::write(
            Box::new_uninit(),
            Inner {
                counts: AtomicU64::new(strong as u64 * STRONG + (1 + weak_handles as u64) * WEAK),
                settled: AtomicU64::new(0),
                value,
            },
        );
        // SAFETY: a box's pointer is never null.
        unsafe { NonNull::new_unchecked(Box::into_raw(inner)) }
    }

    #[inline]
    fn from_inner(ptr: NonNull<Inner<T>>) -> Arc<T> {
        Arc {
            ptr,
            _owns: PhantomData,
        }
    }

    #[inline]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: point 2: this `Arc` owns a count of `strong`, so the `Inner` and its value
        // are live while it is.
        unsafe { self.ptr.as_ref() }
    }

    /// A [`Weak`] to the same value.
    #[inline]
    pub(crate) fn downgrade(this: &Arc<T>) -> Weak<T> {
        // Point 2: added by an owner (this `Arc`).
        check_count(weak_of(this.inner().counts.fetch_add(WEAK, Ordering::Relaxed)));
        Weak { ptr: this.ptr }
    }

    /// Whether the two share one value.
    #[inline]
    pub(crate) fn ptr_eq(a: &Arc<T>, b: &Arc<T>) -> bool {
        a.ptr == b.ptr
    }

    /// The value's address.
    #[inline]
    pub(crate) fn as_ptr(this: &Arc<T>) -> *const T {
        &raw const this.inner().value
    }

    /// How many `Arc`s share the value (others may come or go meanwhile).
    #[inline]
    pub(crate) fn strong_count(this: &Arc<T>) -> usize {
        strong_of(this.inner().counts.load(Ordering::Acquire)) as usize
    }

    /// How many `Weak`s point at the value (others may come or go meanwhile).
    #[inline]
    pub(crate) fn weak_count(this: &Arc<T>) -> usize {
        // The strong owners' share is not a `Weak` (points 2 and 6); while `this` lives it is
        // there, so this never underflows. `settled` first: once set it stays, and the count it
        // covers stays in `weak` while `this` lives.
        let inner = this.inner();
        let owners = inner.owners_weak();
        (weak_of(inner.counts.load(Ordering::Acquire)) - owners) as usize
    }

    /// The value, if this is its only `Arc`; otherwise `this` back.
    pub(crate) fn try_unwrap(this: Arc<T>) -> Result<T, Arc<T>> {
        // `strong` from 1 to 0, whatever `weak` is (a `Weak` may come or go meanwhile).
        if this
            .inner()
            .counts
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (strong_of(n) == 1).then(|| n - STRONG)
            })
            .is_err()
        {
            return Err(this);
        }
        // Point 2: the other owners' uses (their `Release` drops) happen before this.
        fence(Ordering::Acquire);
        let this = ManuallyDrop::new(this);
        // SAFETY: point 3: `strong` went from 1 to 0 here, so nobody else touches the value;
        // it is read out once, and `this` is never dropped.
        let value = unsafe { ptr::read(&raw const (*this.ptr.as_ptr()).value) };
        // SAFETY: point 3: the strong owners' weak count is given back once, by the one that
        // took `strong` to 0, with the value gone.
        unsafe { release_shared_weak(this.ptr) };
        Ok(value)
    }

    /// The last owner's drop: the value, then the strong owners' weak count (point 3).
    #[inline(never)]
    fn drop_slow(&mut self) {
        // SAFETY: point 3: `strong` went from 1 to 0 in `drop`, so nobody else touches the
        // value; it is dropped once, in place, through the box's own pointer.
        unsafe { ptr::drop_in_place(&raw mut (*self.ptr.as_ptr()).value) };
        // SAFETY: point 3, as in `try_unwrap`.
        unsafe { release_shared_weak(self.ptr) };
    }

    /// The last owner's drop when its own write found no `Weak` (point 4): the value, then the
    /// allocation.
    #[inline(never)]
    fn drop_alone(&mut self) {
        // SAFETY: point 3, as in `drop_slow`.
        unsafe { ptr::drop_in_place(&raw mut (*self.ptr.as_ptr()).value) };
        // SAFETY: point 4: the write that took `strong` to 0 found `weak` at the strong owners'
        // own share (point 6): no `Weak` existed then, and none can be made since (no `Arc` is
        // left to make one from, and no `Weak` to clone). `ptr` came from a `Box<Inner<T>>` (point 1),
        // its value is gone, and `ManuallyDrop` frees the box without dropping it again.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr().cast::<ManuallyDrop<Inner<T>>>()) });
    }
}

/// Gives back the weak count the strong owners shared, freeing the allocation if it was the
/// last (point 4).
///
/// # Safety
/// Called once per allocation, by the owner that took `strong` to 0, after the value was
/// dropped or moved out; `ptr` is not used after.
#[inline]
unsafe fn release_shared_weak<T>(ptr: NonNull<Inner<T>>) {
    // SAFETY: the allocation is live: our weak count is still in it. Only the field is
    // borrowed, never the value (point 3).
    let counts = unsafe { &(*ptr.as_ptr()).counts };
    // SAFETY: as `counts`; `settled` is only read here.
    let settled = unsafe { &(*ptr.as_ptr()).settled };
    // Point 6: the caller took `strong` to 0 after an `Acquire` fence, so it reads whatever
    // owner settled the first `Weak`.
    let ours = WEAK * (1 + settled.load(Ordering::Acquire));
    // Point 4: `strong` is 0, so `weak` only goes down; `ours` means it is ours alone, and no
    // `Weak` can touch the allocation any more (Acquire: after their last uses).
    if counts.load(Ordering::Acquire) != ours {
        // A `Weak` is left: ours go as a `Weak`'s would.
        if counts.fetch_sub(ours, Ordering::Release) != ours {
            return;
        }
        fence(Ordering::Acquire);
    }
    // SAFETY: point 1: `ptr` came from a `Box<Inner<T>>`; its value is gone (the caller's
    // promise), and `ManuallyDrop` (same layout) frees the box without dropping it again.
    // Nothing can use the allocation after this (point 4).
    drop(unsafe { Box::from_raw(ptr.as_ptr().cast::<ManuallyDrop<Inner<T>>>()) });
}

/// What the allocator is asked for per `Arc<T>`: the counts, `settled`, then the value (for
/// `node.rs`'s layout test).
#[cfg(all(test, not(loom), not(feature = "tracing")))]
pub(super) const fn alloc_size<T>() -> usize {
    mem::size_of::<Inner<T>>()
}

impl<T> Deref for Arc<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Clone for Arc<T> {
    #[inline]
    fn clone(&self) -> Arc<T> {
        // Point 2: added by an owner (`self`).
        check_count(strong_of(
            self.inner().counts.fetch_add(STRONG, Ordering::Relaxed),
        ));
        Arc::from_inner(self.ptr)
    }
}

impl<T> Drop for Arc<T> {
    #[inline]
    fn drop(&mut self) {
        // Point 2. `strong` is the high half: it was 1 exactly when the word was below two
        // strong counts.
        let old = self.inner().counts.fetch_sub(STRONG, Ordering::Release);
        if old >= 2 * STRONG {
            return;
        }
        fence(Ordering::Acquire);
        // Point 4: the same write tells whether a `Weak` is left (point 6: the owners' share
        // read after the fence).
        if old == STRONG + self.inner().owners_weak() {
            self.drop_alone();
        } else {
            self.drop_slow();
        }
    }
}

impl<T> Weak<T> {
    /// A `Weak` to nothing: [`upgrade`](Weak::upgrade) always gives `None`.
    #[inline]
    pub(crate) const fn new() -> Weak<T> {
        Weak {
            // SAFETY: not zero. Never followed (point 1).
            ptr: unsafe { NonNull::new_unchecked(ptr::without_provenance_mut(DANGLING)) },
        }
    }

    /// The `Inner` of a non-dangling `Weak`, its tag masked off (point 6).
    #[inline(always)]
    fn inner_ptr(&self) -> Option<NonNull<Inner<T>>> {
        if self.ptr.as_ptr().addr() == DANGLING {
            return None;
        }
        NonNull::new(self.ptr.as_ptr().map_addr(|a| a & !FIRST))
    }

    /// The `Inner` of a non-dangling `Weak` and its counts: a reference to that field alone
    /// (point 3).
    #[inline]
    fn counts(&self) -> Option<(NonNull<Inner<T>>, &AtomicU64)> {
        let p = self.inner_ptr()?;
        // SAFETY: point 2: this `Weak` owns a count of `weak`, so the allocation is live while
        // it is; only the counts field is borrowed (the value may be being dropped).
        Some((p, unsafe { &(*p.as_ptr()).counts }))
    }

    /// Gives this `Weak` back to `owner`, an owner of the same value: if it is the first `Weak`
    /// (the one [`Arc::new_pair_and_weak`] made), its count becomes the strong owners' with a
    /// plain store, and the last of them takes it off with its own write (point 6); any other
    /// is dropped as usual.
    #[inline]
    pub(crate) fn give_back(self, owner: &Arc<T>) {
        if self.ptr.as_ptr().addr() != owner.ptr.as_ptr().addr() | FIRST {
            return; // not the first `Weak` of `owner`'s value: dropped here
        }
        // Point 6: the first `Weak` (one per allocation), given to an owner that lives for this
        // call. Its count stays in `weak`, the owners' from now on.
        owner.inner().settled.store(1, Ordering::Release);
        mem::forget(self);
    }

    /// [`give_back`](Weak::give_back) to the value being dropped: `value` is the value this
    /// `Weak` points at, mid-drop (its last owner's `drop_in_place`), the only `&mut` to it
    /// there can be (point 7); any other `value`, or a `Weak` that is not the first, and it is
    /// dropped as usual.
    #[inline]
    pub(crate) fn give_back_dropped(self, value: &mut T) {
        let Some(p) = self.inner_ptr() else {
            return;
        };
        // A zero-sized `T` has no address of its own to prove anything with.
        if self.ptr.as_ptr().addr() & FIRST == 0 || mem::size_of::<T>() == 0 || !ptr::eq(value, value_addr(p))
        {
            return; // dropped here
        }
        // SAFETY: point 2: this `Weak` owns a count, so the allocation is live; only the
        // `settled` field is borrowed.
        let settled = unsafe { &(*p.as_ptr()).settled };
        // Point 7: the dropping owner reads it after `value`'s drop, on this thread.
        settled.store(1, Ordering::Release);
        mem::forget(self);
    }

    /// An `Arc` to the value, if one is left.
    #[inline]
    pub(crate) fn upgrade(&self) -> Option<Arc<T>> {
        let (ptr, counts) = self.counts()?;
        // Point 2: never moves `strong` from 0 (Acquire on success: after the value was made).
        counts
            .fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
                if strong_of(n) == 0 {
                    return None;
                }
                check_count(strong_of(n));
                Some(n + STRONG)
            })
            .ok()?;
        Some(Arc::from_inner(ptr))
    }

    /// This `Weak` made an `Arc`, if one is left: its weak count becomes a strong one in one
    /// read-modify-write, where `upgrade` and the `Weak`'s drop make two (a cancel walk taking
    /// the children it found). `None` if the value is gone (the `Weak` dropped as usual).
    #[inline]
    pub(crate) fn into_arc(self) -> Option<Arc<T>> {
        let (ptr, counts) = self.counts()?;
        // Point 2: never moves `strong` from 0 (Acquire on success: after the value was made).
        // The weak count this `Weak` owned is the strong one the `Arc` owns now; `weak` stays
        // at 1 at least (the strong owners' own, since `strong` was not 0).
        let moved = counts.fetch_update(Ordering::Acquire, Ordering::Relaxed, |n| {
            if strong_of(n) == 0 {
                return None;
            }
            check_count(strong_of(n));
            Some(n + STRONG - WEAK)
        });
        if moved.is_err() {
            return None; // `self` drops here, giving its weak count back
        }
        mem::forget(self);
        Some(Arc::from_inner(ptr))
    }
}

impl<T> Weak<T> {
    /// The `Weak` as a raw pointer, its tag kept (point 6), its count with it: for a word that
    /// holds a `Weak` (`first.rs`). [`from_raw`](Weak::from_raw) makes it a `Weak` again.
    #[inline(always)]
    pub(crate) fn into_raw(self) -> *mut () {
        let raw = self.ptr.as_ptr().cast::<()>();
        mem::forget(self);
        raw
    }

    /// The `Weak` that [`into_raw`](Weak::into_raw) made `raw` of.
    ///
    /// # Safety
    ///
    /// `raw` comes from `into_raw` of a `Weak<T>`, and is made a `Weak` again only this once:
    /// the count it carries is the new `Weak`'s (point 2).
    #[inline(always)]
    pub(crate) unsafe fn from_raw(raw: *mut ()) -> Weak<T> {
        // SAFETY: by the caller's promise, `into_raw` made `raw` from a `NonNull`.
        Weak {
            ptr: unsafe { NonNull::new_unchecked(raw.cast::<Inner<T>>()) },
        }
    }
}

/// The address of the value in the allocation at `p`, for comparing only (no reference made).
#[inline(always)]
fn value_addr<T>(p: NonNull<Inner<T>>) -> *const T {
    // A place projection of a pointer to a live allocation (the caller's `Weak` keeps it):
    // no reference is made, so the value may be mid-drop.
    // SAFETY: `p` points into a live allocation (the caller holds a count of it).
    unsafe { &raw const (*p.as_ptr()).value }
}

impl<T> Clone for Weak<T> {
    #[inline]
    fn clone(&self) -> Weak<T> {
        if let Some((_, counts)) = self.counts() {
            // Point 2: added by an owner (`self`).
            check_count(weak_of(counts.fetch_add(WEAK, Ordering::Relaxed)));
        }
        // Untagged: a clone is never the first `Weak` (point 6).
        Weak {
            ptr: self.inner_ptr().unwrap_or(self.ptr),
        }
    }
}

impl<T> Drop for Weak<T> {
    #[inline]
    fn drop(&mut self) {
        let Some((ptr, counts)) = self.counts() else {
            return;
        };
        // Point 2, and point 4: whoever takes the last weak count frees (with `weak` at 0,
        // `strong` is 0 too: the word is 0).
        if counts.fetch_sub(WEAK, Ordering::Release) != WEAK {
            return;
        }
        fence(Ordering::Acquire);
        // SAFETY: point 1: `ptr` came from a `Box<Inner<T>>`. `weak` was 0 after our
        // `fetch_sub`, so `strong` is 0 too (its owners share a weak count while it is not),
        // the value was dropped or moved out by the owner that took `strong` to 0 (point 3),
        // and nothing else can reach the allocation.
        drop(unsafe { Box::from_raw(ptr.as_ptr().cast::<ManuallyDrop<Inner<T>>>()) });
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{Arc, Weak};

    /// Counts its drops in a counter it holds by std's `Arc`.
    #[derive(Debug)]
    struct Counted(std::sync::Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn counted() -> (Counted, std::sync::Arc<AtomicUsize>) {
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        (Counted(drops.clone()), drops)
    }

    #[test]
    fn the_value_is_dropped_once_with_the_last_owner() {
        let (value, drops) = counted();
        let a = Arc::new(value);
        let b = a.clone();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(Arc::strong_count(&a), 2);
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_pair_starts_with_two_owners() {
        let (value, drops) = counted();
        let (a, b) = Arc::new_pair(value);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(Arc::strong_count(&a), 2);
        assert_eq!(Arc::weak_count(&a), 0);
        drop(b);
        assert_eq!(Arc::strong_count(&a), 1);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_pair_and_weak_starts_with_all_three_counted() {
        let (value, drops) = counted();
        let (a, b, w) = Arc::new_pair_and_weak(value);
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((Arc::strong_count(&a), Arc::weak_count(&a)), (2, 1));
        assert!(Arc::ptr_eq(&w.upgrade().expect("owners are left"), &a));
        drop((a, b));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert!(w.upgrade().is_none());
        drop(w); // the last count: frees (Miri reports a leak otherwise)
        // The `Weak` dropped first: the last owner frees without writing.
        let (value, drops) = counted();
        let (a, b, w) = Arc::new_pair_and_weak(value);
        drop(w);
        assert_eq!(Arc::weak_count(&a), 0);
        drop((b, a));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_weak_upgrades_while_an_owner_is_left_and_keeps_only_the_memory() {
        let (value, drops) = counted();
        let a = Arc::new(value);
        let w = Arc::downgrade(&a);
        let w2 = w.clone();
        assert_eq!(Arc::weak_count(&a), 2);
        let b = w.upgrade().expect("an owner is left");
        assert_eq!(Arc::strong_count(&a), 2);
        drop((a, b));
        // The value went with its last owner, whatever `Weak`s are left.
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert!(w.upgrade().is_none());
        drop(w);
        assert!(w2.upgrade().is_none());
        drop(w2); // frees the allocation (Miri reports a leak otherwise)
    }

    #[test]
    fn the_last_weak_may_outlive_or_precede_the_last_owner() {
        // The `Weak` first: the last owner frees without writing the weak count.
        let (value, drops) = counted();
        let a = Arc::new(value);
        drop(Arc::downgrade(&a));
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // The owner first: the last `Weak` frees.
        let (value, drops) = counted();
        let a = Arc::new(value);
        let w = Arc::downgrade(&a);
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(w);
    }

    #[test]
    fn a_dangling_weak_never_upgrades() {
        let w: Weak<u64> = Weak::new();
        assert!(w.upgrade().is_none());
        let w2 = w.clone();
        assert!(w2.upgrade().is_none());
    }

    #[test]
    fn try_unwrap_moves_the_value_out_of_the_only_owner() {
        let (value, drops) = counted();
        let a = Arc::new(value);
        let b = a.clone();
        let a = Arc::try_unwrap(a).expect_err("two owners");
        drop(b);
        let w = Arc::downgrade(&a);
        let Ok(value) = Arc::try_unwrap(a) else {
            panic!("the only owner")
        };
        assert!(w.upgrade().is_none(), "no owner after the value left");
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(value);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        drop(w);
        // And with no `Weak` left, the allocation goes at once.
        let (value, drops) = counted();
        assert!(Arc::try_unwrap(Arc::new(value)).is_ok(), "the only owner");
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn owners_and_weaks_dropped_on_several_threads_free_once() {
        for round in 0..20 {
            let (value, drops) = counted();
            let a = Arc::new(value);
            let threads: Vec<_> = (0..3)
                .map(|i| {
                    let a = a.clone();
                    let w = Arc::downgrade(&a);
                    std::thread::spawn(move || {
                        // Each thread ends with its owner or its weak last, by turns.
                        if (i + round) % 2 == 0 {
                            let up = w.upgrade();
                            drop(a);
                            drop(up);
                            drop(w);
                        } else {
                            drop(a);
                            let up = w.upgrade();
                            drop(w);
                            drop(up);
                        }
                    })
                })
                .collect();
            let w = Arc::downgrade(&a);
            drop(a);
            for t in threads {
                t.join().unwrap();
            }
            assert!(w.upgrade().is_none());
            drop(w);
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
    }

    #[test]
    fn a_weak_upgrading_while_the_last_owner_drops_gets_it_or_nothing() {
        for _ in 0..50 {
            let (value, drops) = counted();
            let a = Arc::new(value);
            let w = Arc::downgrade(&a);
            let t = std::thread::spawn(move || {
                let up = w.upgrade();
                let got = up.is_some();
                drop(up);
                drop(w);
                got
            });
            drop(a);
            let _ = t.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
    }

    /// A `Weak` through `into_raw` and `from_raw` (point 8) is the same `Weak`: its count, and
    /// the first one's tag, which `give_back` still recognizes.
    #[test]
    fn a_weak_made_raw_and_back_keeps_its_count_and_tag() {
        let (value, drops) = counted();
        let (a, b, first) = Arc::new_pair_and_weak(value);
        let raw = first.into_raw();
        assert_eq!(
            raw.addr() & super::FIRST,
            super::FIRST,
            "the tag goes with the pointer"
        );
        assert_eq!(Arc::weak_count(&a), 1, "the count stays, owned by the pointer");
        // SAFETY: `raw` came from `into_raw`, made a `Weak` again once.
        let first = unsafe { Weak::<Counted>::from_raw(raw) };
        first.give_back(&a);
        assert_eq!(Arc::weak_count(&a), 0);
        drop((a, b));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // A plain `Weak` too: it still upgrades, and frees nothing twice.
        let (value, drops) = counted();
        let a = Arc::new(value);
        // SAFETY: as above.
        let w = unsafe { Weak::<Counted>::from_raw(Arc::downgrade(&a).into_raw()) };
        assert!(w.upgrade().is_some());
        drop(a);
        assert!(w.upgrade().is_none());
        drop(w);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    /// `into_arc` moves the `Weak`'s count to the strong half: the counts read as if it had
    /// upgraded and dropped; of a value gone, it gives its weak count back.
    #[test]
    fn into_arc_turns_a_weak_count_into_a_strong_one() {
        let (value, drops) = counted();
        let (a, b, w) = Arc::new_pair_and_weak(value);
        assert_eq!((Arc::strong_count(&a), Arc::weak_count(&a)), (2, 1));
        let c = w.into_arc().expect("an owner is left");
        assert!(Arc::ptr_eq(&a, &c));
        assert_eq!((Arc::strong_count(&a), Arc::weak_count(&a)), (3, 0));
        drop((a, b, c));
        assert_eq!(drops.load(Ordering::Relaxed), 1);

        let a = Arc::new(counted().0);
        let w = Arc::downgrade(&a);
        let kept = w.clone();
        drop(a);
        assert!(w.into_arc().is_none());
        assert!(kept.upgrade().is_none());
        assert!(Weak::<u8>::new().into_arc().is_none());
    }

    /// The last owner whose write finds a `Weak` left frees nothing; the `Weak` frees last. And
    /// one that finds none frees at once (Miri reports a leak or a double free otherwise).
    #[test]
    fn the_last_owners_write_tells_whether_a_weak_is_left() {
        let (value, drops) = counted();
        let a = Arc::new(value);
        let w = Arc::downgrade(&a);
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        assert!(w.upgrade().is_none());
        drop(w);
        let (a, b) = Arc::new_pair(counted().0);
        drop(a);
        drop(b);
    }

    /// The first `Weak` given back to an owner: no `Weak` is counted any more, the last owner
    /// frees at once (Miri reports a leak or a double free otherwise), and a clone of it, or a
    /// `Weak` of another value, is only dropped.
    #[test]
    fn the_first_weak_given_back_is_the_owners_count() {
        let (value, drops) = counted();
        let (a, b, w) = Arc::new_pair_and_weak(value);
        let kept = w.clone();
        assert_eq!(Arc::weak_count(&a), 2);
        kept.give_back(&a); // not the first: dropped
        assert_eq!(Arc::weak_count(&a), 1);
        assert_eq!(a.inner().settled.load(Ordering::Relaxed), 0);
        let other = Arc::new(0u8);
        let (c, d, w2) = Arc::new_pair_and_weak(counted().0);
        w2.give_back(&c); // settled on `c`'s value, not `a`'s
        assert_eq!(Arc::weak_count(&c), 0);
        drop((c, d, other));
        w.give_back(&a);
        assert_eq!((Arc::strong_count(&a), Arc::weak_count(&a)), (2, 0));
        // No write to the counts: the `Weak`'s count is still in the word, the owners' now.
        assert_eq!(a.inner().settled.load(Ordering::Relaxed), 1);
        assert_eq!(super::weak_of(a.inner().counts.load(Ordering::Relaxed)), 2);
        drop(b);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 1);

        // A `Weak` left besides: the last `Weak` frees, after the owners gave back both.
        let (a, b, w) = Arc::new_pair_and_weak(counted().0);
        let late = Arc::downgrade(&a);
        w.give_back(&b);
        drop((a, b));
        assert!(late.upgrade().is_none());
        drop(late);
        // And a first `Weak` given to an owner of another value is only dropped.
        let (a, b, w) = Arc::new_pair_and_weak(counted().0);
        let stranger = Arc::new(counted().0);
        w.give_back(&stranger);
        assert_eq!(Arc::weak_count(&a), 0);
        assert_eq!(stranger.inner().settled.load(Ordering::Relaxed), 0);
        assert_eq!(a.inner().settled.load(Ordering::Relaxed), 0);
        drop((a, b, stranger));
    }

    /// A value whose drop takes back its first `Weak` (as a dying node takes its entry back
    /// from its parent): the allocation is freed once, by the drop's own owner (Miri reports a
    /// leak or a double free otherwise); another value's first `Weak` is only dropped.
    #[test]
    fn the_first_weak_given_back_to_its_value_mid_drop() {
        struct Holder {
            weak: std::sync::Mutex<Option<Weak<Holder>>>,
            drops: std::sync::Arc<AtomicUsize>,
        }
        impl Drop for Holder {
            fn drop(&mut self) {
                self.drops.fetch_add(1, Ordering::Relaxed);
                let weak = self.weak.get_mut().unwrap().take();
                if let Some(w) = weak {
                    w.give_back_dropped(self);
                }
            }
        }
        let drops = std::sync::Arc::new(AtomicUsize::new(0));
        let holder = || Holder {
            weak: std::sync::Mutex::new(None),
            drops: drops.clone(),
        };
        // Its own first `Weak`.
        let (a, b, w) = Arc::new_pair_and_weak(holder());
        *a.weak.lock().unwrap() = Some(w);
        assert_eq!(Arc::weak_count(&a), 1);
        drop((a, b));
        assert_eq!(drops.load(Ordering::Relaxed), 1);
        // Another value's first `Weak`: dropped, and that value's last owner frees alone.
        let (x, y, wx) = Arc::new_pair_and_weak(holder());
        let (a, b, w) = Arc::new_pair_and_weak(holder());
        *a.weak.lock().unwrap() = Some(wx);
        drop((a, b, w));
        assert_eq!(drops.load(Ordering::Relaxed), 2);
        assert_eq!(Arc::weak_count(&x), 0);
        drop((x, y));
        assert_eq!(drops.load(Ordering::Relaxed), 3);
    }

    /// The first `Weak` given back on one thread while the owners drop on others: freed once.
    #[test]
    fn the_first_weak_given_back_while_owners_drop_elsewhere() {
        for _ in 0..if cfg!(miri) { 8 } else { 200 } {
            let (value, drops) = counted();
            let (a, b, w) = Arc::new_pair_and_weak(value);
            let t = std::thread::spawn(move || drop(b));
            w.give_back(&a);
            drop(a);
            t.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
    }

    /// Owners made by `into_arc` on several threads while the others drop: the value is dropped
    /// once and the allocation freed once.
    #[test]
    fn into_arc_racing_the_last_owners_gets_it_or_nothing() {
        for _ in 0..if cfg!(miri) { 8 } else { 200 } {
            let (value, drops) = counted();
            let (a, b, w) = Arc::new_pair_and_weak(value);
            let t = std::thread::spawn(move || w.into_arc().is_some());
            drop(a);
            drop(b);
            let _ = t.join().unwrap();
            assert_eq!(drops.load(Ordering::Relaxed), 1);
        }
    }
}
