//! [`StateLock`]: a lock kept in the two high bits of a 32-bit word whose other bits are its
//! owner's (a cancel node's state word, `word.rs`), guarding a value of any type.
//!
//! Why not `std`'s mutex beside the word: taking it is one read-modify-write and the owner's
//! flag that says "something depends on me" (`HAS_DEPENDENTS`, invariant 10) was another; here
//! the compare-exchange that takes the lock sets the flag too ([`StateLock::lock_setting`]),
//! and a change of the word made under the lock is published by the unlock
//! ([`Guard::set_on_unlock`]) instead of by a write of its own. It also leaves the mutex's word
//! (its futex and poison flag) to the owner: the half of the word's eight bytes that the state
//! does not use holds the owner's counter ([`StateLock::spare`]).
//!
//! A thread that finds the lock held spins a little, then parks in `parking_lot_core`'s table,
//! keyed by the word's address (the word says so with `PARKED`), as `parking_lot`'s own mutex
//! does: the well-kept crate that exists for locks in a word of one's own. Under loom a
//! contended lock yields until it is free (loom models no parking).
//!
//! # Safety argument (this module alone)
//!
//! 1. `LOCKED` is set only by a compare-exchange in [`StateLock::lock_setting`] (and its slow
//!    path) that found it clear; whoever made that change owns the lock and holds the one
//!    [`Guard`] of it. It is cleared only by that guard's drop.
//! 2. No other write can change `LOCKED`: the word's other writers are [`StateLock::fetch_or`],
//!    which masks both lock bits out of what it sets, and [`StateLock::compare_exchange`], which
//!    writes the lock bits it expects, so it succeeds only if they are what it writes; `PARKED`
//!    is set and cleared only here. `with_mut` and `update_mut` need `&mut self`: no lock can
//!    be held then.
//! 3. So while a guard lives, no other guard of the same lock exists, and `data` is reached only
//!    through that guard (shared or unique, as the guard is borrowed) or through `&mut self`:
//!    never two `&mut T`, nor a `&mut T` beside a `&T`. The guard's fields are private, so no
//!    code outside can make one.
//! 4. A thread is parked only with the word's address as its key, and only while the word reads
//!    locked and `PARKED` (checked in `park`'s `validate`, under the table's lock); the callbacks
//!    passed to `parking_lot_core` neither panic nor call into it (its contract for `park` and
//!    `unpark_one`). An unlocker that saw `PARKED` unparks one thread after its unlock, and
//!    clears `PARKED` (in the callback, under the table's lock) when none is left: a parked
//!    thread is always woken by the unlock that follows its `validate`, which saw the lock held
//!    and `PARKED` set. The address is that of a word the caller borrows for the whole call.

#![allow(unsafe_code)]

#[cfg(not(loom))]
use std::cell::UnsafeCell;
#[cfg(not(loom))]
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

#[cfg(loom)]
use loom::cell::UnsafeCell;

use crate::loom::{AtomicU32, Ordering};

/// Held by the owner of the lock.
const LOCKED: u32 = 1 << 31;
/// A thread is (or is about to be) parked waiting for the lock.
const PARKED: u32 = 1 << 30;
/// The bits of the word that are the lock's; the rest are the owner's.
const LOCK_BITS: u32 = LOCKED | PARKED;

/// A 32-bit word of its owner's bits, with a lock in its two high bits that guards a `T`. See
/// the module doc.
pub(super) struct StateLock<T> {
    word: AtomicU32,
    /// Nothing of the lock's: a counter of the owner's, in the other half of the word's eight
    /// bytes.
    pub(super) spare: AtomicU32,
    data: UnsafeCell<T>,
}

// SAFETY: `data` is reached by one thread at a time (point 3), so sharing the lock across
// threads moves a `T` between them (`T: Send`) and never shares one (no `T: Sync` needed).
unsafe impl<T: Send> Sync for StateLock<T> {}

impl<T> StateLock<T> {
    /// `word`'s owner's bits (its lock bits are ignored), unlocked; `spare` and `data`.
    pub(super) fn new(word: u32, spare: u32, data: T) -> StateLock<T> {
        StateLock {
            word: AtomicU32::new(word & !LOCK_BITS),
            spare: AtomicU32::new(spare),
            data: UnsafeCell::new(data),
        }
    }

    /// The word, the lock's two bits included: test the owner's bits with a mask of them.
    #[inline(always)]
    pub(super) fn load(&self, order: Ordering) -> u32 {
        self.word.load(order)
    }

    /// Sets `bits` of the owner's (the lock's are masked out); returns the word before.
    #[inline]
    pub(super) fn fetch_or(&self, bits: u32, order: Ordering) -> u32 {
        self.word.fetch_or(bits & !LOCK_BITS, order)
    }

    /// Changes the word from `current` (as [`load`](Self::load) read it) to `new`'s owner's bits,
    /// with `current`'s lock bits, if it holds exactly `current`; else returns the word now. So
    /// it never changes the lock's bits (point 2), and it does not wait for the lock: a word
    /// changed by its owner under the lock changes nothing of the guard's but the owner's bits
    /// it did not set itself (the unlock keeps them).
    #[inline(always)]
    pub(super) fn compare_exchange(
        &self,
        current: u32,
        new: u32,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u32, u32> {
        let new = (new & !LOCK_BITS) | (current & LOCK_BITS);
        self.word.compare_exchange(current, new, success, failure)
    }

    /// Changes the owner's bits of a word nobody else can reach (`&mut self`: point 2).
    #[inline]
    pub(super) fn update_mut(&mut self, f: impl FnOnce(u32) -> u32) {
        #[cfg(not(loom))]
        {
            let w = self.word.get_mut();
            *w = f(*w) & !LOCK_BITS;
        }
        #[cfg(loom)]
        self.word.with_mut(|w| *w = f(*w) & !LOCK_BITS);
    }

    /// Runs `f` on the guarded value of a lock nobody else can reach (`&mut self`: no lock is
    /// held, point 2).
    #[inline]
    pub(super) fn with_mut<R>(&mut self, f: impl FnOnce(&mut T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.data.get_mut())
        }
        #[cfg(loom)]
        {
            // Whoever held the lock before let go of the owner with a release that the caller
            // acquired (the node's reference counts), which loom does not see (they are std's
            // atomics, `crate::loom`): an acquire of the word's latest value (a read-modify-write
            // reads no older one) tells loom what they ensure.
            self.word.fetch_or(0, Ordering::Acquire);
            // SAFETY: `&mut self`: no guard exists (point 3), and nothing else reaches `data`.
            self.data.with_mut(|p| f(unsafe { &mut *p }))
        }
    }

    /// Takes the lock.
    #[inline(always)]
    pub(super) fn lock(&self) -> Guard<'_, T> {
        self.lock_setting(|_| 0).0
    }

    /// Takes the lock and, in the same change of the word, sets the owner's bits that `set`
    /// returns for the owner's bits it found (asked again if the word changed meanwhile).
    /// Returns the guard and those bits, as they were just before.
    #[inline(always)]
    pub(super) fn lock_setting(&self, set: impl Fn(u32) -> u32) -> (Guard<'_, T>, u32) {
        #[cfg(all(test, not(loom)))]
        crate::loom::note_lock();
        let w = self.word.load(Ordering::Relaxed);
        if w & LOCKED == 0 {
            let new = w | LOCKED | (set(w & !LOCK_BITS) & !LOCK_BITS);
            if self
                .word
                .compare_exchange_weak(w, new, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                return (self.guard(new), w & !LOCK_BITS);
            }
        }
        self.lock_slow(&set)
    }

    /// The guard of a lock just taken, whose word now reads `word` (point 1).
    #[inline(always)]
    fn guard(&self, word: u32) -> Guard<'_, T> {
        Guard {
            lock: self,
            word,
            set: 0,
            #[cfg(not(loom))]
            data: PhantomData,
            #[cfg(loom)]
            data: self.data.get_mut(),
        }
    }

    #[cold]
    #[inline(never)]
    fn lock_slow(&self, set: &dyn Fn(u32) -> u32) -> (Guard<'_, T>, u32) {
        #[cfg(not(loom))]
        let mut spin = parking_lot_core::SpinWait::new();
        let mut w = self.word.load(Ordering::Relaxed);
        loop {
            if w & LOCKED == 0 {
                let new = w | LOCKED | (set(w & !LOCK_BITS) & !LOCK_BITS);
                match self
                    .word
                    .compare_exchange_weak(w, new, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => return (self.guard(new), w & !LOCK_BITS),
                    Err(now) => {
                        w = now;
                        continue;
                    }
                }
            }
            #[cfg(loom)]
            {
                loom::thread::yield_now();
                w = self.word.load(Ordering::Relaxed);
            }
            #[cfg(not(loom))]
            {
                // Held: spin a little while nobody is parked, then park.
                if w & PARKED == 0 && spin.spin() {
                    w = self.word.load(Ordering::Relaxed);
                    continue;
                }
                if w & PARKED == 0
                    && let Err(now) =
                        self.word
                            .compare_exchange_weak(w, w | PARKED, Ordering::Relaxed, Ordering::Relaxed)
                {
                    w = now;
                    continue;
                }
                let key = self.key();
                let validate = || self.word.load(Ordering::Relaxed) & LOCK_BITS == LOCK_BITS;
                // SAFETY: point 4 — our own word's address; `validate` is a load and a test, the
                // other callbacks do nothing: none panics or calls into `parking_lot_core`.
                unsafe {
                    parking_lot_core::park(
                        key,
                        validate,
                        || {},
                        |_, _| {},
                        parking_lot_core::DEFAULT_PARK_TOKEN,
                        None,
                    );
                }
                spin.reset();
                w = self.word.load(Ordering::Relaxed);
            }
        }
    }

    /// The key of this lock in `parking_lot_core`'s table: the word's address.
    #[cfg(not(loom))]
    #[inline]
    fn key(&self) -> usize {
        std::ptr::from_ref(&self.word) as usize
    }

    /// Releases the lock that `guard` holds, setting its `set` bits in the same change.
    #[inline(always)]
    fn unlock(&self, mut word: u32, set: u32) {
        // The word changes under the lock only by others' `fetch_or` and by `PARKED`: the first
        // try, with the word as the lock left it, is the usual one.
        loop {
            let new = (word | set) & !LOCKED;
            match self
                .word
                .compare_exchange_weak(word, new, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        #[cfg(not(loom))]
        if word & PARKED != 0 {
            self.unpark_one();
        }
    }

    #[cfg(not(loom))]
    #[cold]
    #[inline(never)]
    fn unpark_one(&self) {
        let key = self.key();
        let callback = |result: parking_lot_core::UnparkResult| {
            if !result.have_more_threads {
                // Under the table's lock: no thread parks on this key meanwhile (point 4).
                self.word.fetch_and(!PARKED, Ordering::Relaxed);
            }
            parking_lot_core::DEFAULT_UNPARK_TOKEN
        };
        // SAFETY: point 4 — our own word's address; the callback is one atomic operation: it
        // neither panics nor calls into `parking_lot_core`.
        unsafe {
            parking_lot_core::unpark_one(key, callback);
        }
    }
}

/// The lock of a [`StateLock`], held: the guarded value, and the owner's bits to set when it
/// is released ([`Guard::set_on_unlock`]).
pub(super) struct Guard<'a, T> {
    lock: &'a StateLock<T>,
    /// The whole word as this guard last knew it (its first guess at the unlock).
    word: u32,
    /// The owner's bits to set at the unlock.
    set: u32,
    /// `&mut T`'s `Send` and `Sync`: a guard lends the value as that would.
    #[cfg(not(loom))]
    data: PhantomData<&'a mut T>,
    #[cfg(loom)]
    data: loom::cell::MutPtr<T>,
}

impl<T> Guard<'_, T> {
    /// The word as it will be after the unlock if nobody else changes it meanwhile (the lock's
    /// bits included, as [`StateLock::load`]).
    #[inline]
    pub(super) fn word(&self) -> u32 {
        self.lock.word.load(Ordering::Relaxed) | self.set
    }

    /// Sets `bits` of the owner's when the lock is released, in the unlock's own change of the
    /// word: until then, other threads read the word without them.
    #[inline]
    pub(super) fn set_on_unlock(&mut self, bits: u32) {
        self.set |= bits & !LOCK_BITS;
    }
}

impl<T> Deref for Guard<'_, T> {
    type Target = T;

    #[inline(always)]
    fn deref(&self) -> &T {
        #[cfg(not(loom))]
        // SAFETY: this guard holds the lock (points 1 and 3): nothing else reaches `data`.
        unsafe {
            &*self.lock.data.get()
        }
        #[cfg(loom)]
        // SAFETY: as above.
        unsafe {
            self.data.deref()
        }
    }
}

impl<T> DerefMut for Guard<'_, T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(not(loom))]
        // SAFETY: this guard holds the lock, borrowed uniquely (points 1 and 3).
        unsafe {
            &mut *self.lock.data.get()
        }
        #[cfg(loom)]
        // SAFETY: as above.
        unsafe {
            self.data.deref()
        }
    }
}

impl<T> Drop for Guard<'_, T> {
    #[inline(always)]
    fn drop(&mut self) {
        self.lock.unlock(self.word, self.set);
    }
}

#[cfg(test)]
mod tests {
    use super::{LOCK_BITS, StateLock};
    use crate::loom::Ordering;

    const DONE: u32 = 1;
    const FLAG: u32 = 1 << 2;
    const HINT: u32 = 1 << 6;

    /// What `tree` does with the word: the lock taken with a flag set in the same change, a
    /// change published by the unlock, a compare-exchange and a `fetch_or` that do not wait.
    fn exercise(lock: &StateLock<u32>) {
        let (mut g, before) = lock.lock_setting(|w| if w & DONE == 0 { FLAG } else { 0 });
        assert_eq!(before & LOCK_BITS, 0);
        *g += 1;
        g.set_on_unlock(HINT);
        assert_eq!(g.word() & HINT, HINT);
        drop(g);
        let w = lock.load(Ordering::Relaxed);
        assert_eq!(w & HINT, HINT);
        if before & DONE == 0 {
            assert_eq!(w & FLAG, FLAG);
        }
    }

    #[cfg(not(loom))]
    #[test]
    fn a_guard_locks_out_the_others_and_publishes_its_bits() {
        let lock = StateLock::new(0, 7, 0u32);
        exercise(&lock);
        assert_eq!(lock.spare.load(Ordering::Relaxed), 7);
        // A compare-exchange keeps the lock's bits, whether held or not.
        let g = lock.lock();
        let w = lock.load(Ordering::Relaxed);
        assert_ne!(w & LOCK_BITS, 0);
        assert!(
            lock.compare_exchange(w, w | DONE, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        );
        assert_eq!(lock.load(Ordering::Relaxed) & LOCK_BITS, w & LOCK_BITS);
        // ... nor can it unlock, or `fetch_or` lock.
        assert!(
            lock.compare_exchange(w, 0, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
        );
        lock.fetch_or(u32::MAX, Ordering::Relaxed);
        drop(g);
        assert_eq!(lock.load(Ordering::Relaxed) & LOCK_BITS, 0);
        assert_eq!(lock.load(Ordering::Relaxed), !LOCK_BITS);
        // The flag is not set on a word that `lock_setting`'s closure says no to.
        let lock = StateLock::new(DONE, 0, 0u32);
        let (g, before) = lock.lock_setting(|w| if w & DONE == 0 { FLAG } else { 0 });
        assert_eq!(before, DONE);
        drop(g);
        assert_eq!(lock.load(Ordering::Relaxed), DONE);
    }

    /// Threads that find the lock held park and are woken, none lost: every increment counted,
    /// the lock free and nobody parked at the end.
    #[cfg(not(loom))]
    #[test]
    fn contended_lockers_park_and_all_get_through() {
        let threads = 4;
        let rounds = if cfg!(miri) { 50 } else { 20_000 };
        let lock = std::sync::Arc::new(StateLock::new(0, 0, 0u64));
        let (done, finished) = std::sync::mpsc::channel();
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let lock = lock.clone();
                let done = done.clone();
                std::thread::spawn(move || {
                    for i in 0..rounds {
                        let mut g = lock.lock();
                        *g += 1;
                        if i % 64 == 0 {
                            std::thread::yield_now(); // hold it a while: others park
                        }
                        drop(g);
                        lock.fetch_or(1 << t, Ordering::Relaxed);
                    }
                    let _ = done.send(());
                })
            })
            .collect();
        // A watchdog: a parked locker never woken fails the test instead of hanging it.
        for _ in 0..threads {
            finished
                .recv_timeout(std::time::Duration::from_secs(120))
                .expect("a locker never got the lock: a wake-up was lost");
        }
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(*lock.lock(), threads * rounds);
        assert_eq!(lock.load(Ordering::Relaxed), 0b1111);
    }

    /// Loom: two lockers and a lock-free writer. Every increment is seen, the bits set without
    /// the lock survive the unlocks, and the lock ends free.
    #[cfg(loom)]
    #[test]
    fn loom_state_lock_excludes_and_keeps_others_bits() {
        loom::model(|| {
            let lock = loom::sync::Arc::new(StateLock::new(0, 0, 0u32));
            let a = {
                let lock = lock.clone();
                loom::thread::spawn(move || exercise(&lock))
            };
            let b = {
                let lock = lock.clone();
                loom::thread::spawn(move || {
                    // A lock-free change: a compare-exchange from what it read, else a `fetch_or`.
                    let w = lock.load(Ordering::Acquire);
                    if lock
                        .compare_exchange(w, w | DONE, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        lock.fetch_or(DONE, Ordering::AcqRel);
                    }
                })
            };
            exercise(&lock);
            a.join().unwrap();
            b.join().unwrap();
            let w = lock.load(Ordering::Acquire);
            assert_eq!(w & LOCK_BITS, 0);
            assert_eq!(w & (DONE | HINT), DONE | HINT);
            assert_eq!(*lock.lock(), 2);
        });
    }
}
