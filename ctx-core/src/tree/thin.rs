//! A header and a value of any type, shared, in one allocation behind one word: [`ThinArc`].
//!
//! A value node keeps its value this way (`node.rs`, `ValueNode`). `Arc<ValueNode<dyn Any>>`
//! would be one allocation too, but its pointer is two words: a `NodeRef` would grow by one,
//! and with it every node's `Parent`. Here the value's type is kept in a table the header
//! points at (`VTable`: its key, its name, where it lies, how to drop it), and the pointer is
//! one word, as `Arc<T>`'s.
//!
//! # Safety argument (this module alone)
//!
//! 1. The only way to make a `ThinArc<H>` is [`ThinArc::new`], which boxes an `Inner<H, T>`
//!    whose header's `vtable` is `Table::<H, T>::VTABLE`, and keeps the box's pointer cast to
//!    its first field (`#[repr(C)]`: at offset 0), so with provenance over the whole `Inner`.
//!    The fields are private; after that only the count is written, and the head through
//!    `get_mut` (point 3), never the pointer, the table or the value. So every
//!    `ThinArc` points at a live `Inner<H, T>` whose `T` is the one its table was made for.
//! 2. Each `ThinArc` owns one count of `count`: `clone` adds one (`Relaxed`, as `Arc`: the one
//!    it clones from keeps the allocation alive meanwhile), and `drop` takes one off
//!    (`Release`); the drop that takes the last one fences (`Acquire`, pairing with the other
//!    drops' `Release`) and frees the `Inner` through the table, as the type it was made as.
//!    There are no weak handles. So the allocation lives while any handle does.
//! 3. Every reference handed out (`&H`, `&T`, `&dyn Any`) borrows a handle, so it cannot
//!    outlive the count that handle owns (2). `get_mut` hands out `&mut H` only when the count
//!    is 1, read with `Acquire` through `&mut self`: this handle is the only one, and no other
//!    can be made from it while the `&mut` lives.
//! 4. `downcast_ref::<T>` casts to `T` only when the table's key is `TypeId::of::<T>()`: the
//!    value is a `T` (1), at the offset the table records.
//! 5. `H` and every value are `Send + Sync` (the bounds of `new`), so sharing a handle across
//!    threads shares nothing else.
//!
//! The count's protocol (2, 3) is modelled by `tests/loom_thin.rs` (clones dropped on several
//! threads, `get_mut` against a clone), and the unit tests below run under Miri.

#![allow(unsafe_code)]

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::mem;
use std::ops::Deref;
use std::ptr::NonNull;

use crate::loom::{AtomicUsize, Ordering, fence};

/// A shared `H` followed by a value whose type is erased, in one allocation (see the module's
/// doc for the argument that makes its `unsafe` sound).
pub(crate) struct ThinArc<H> {
    ptr: NonNull<Header<H>>,
    /// Owns an `H` (for the drop check); the value's type is in the table.
    _owns: PhantomData<H>,
}

/// What every allocation starts with, whatever the value's type.
#[repr(C)]
struct Header<H> {
    count: AtomicUsize,
    vtable: &'static VTable,
    head: H,
}

/// The allocation: the header, then the value (`#[repr(C)]`: the header at offset 0).
#[repr(C)]
struct Inner<H, T> {
    header: Header<H>,
    value: T,
}

/// What the value's type is, for code that does not know it (one per `(H, T)`, a constant).
struct VTable {
    /// The value's `TypeId` (a function: `TypeId::of` is not a constant at this crate's MSRV).
    key: fn() -> TypeId,
    /// The value's type name (for `Display`).
    name: fn() -> &'static str,
    /// Where the value lies, from the start of the allocation.
    offset: usize,
    /// The value as `dyn Any`.
    as_any: unsafe fn(NonNull<u8>) -> NonNull<dyn Any + Send + Sync>,
    /// Frees the allocation (its last handle is being dropped).
    free: unsafe fn(NonNull<u8>),
}

/// The table of an `Inner<H, T>`.
struct Table<H, T>(PhantomData<(H, T)>);

impl<H, T: Any + Send + Sync> Table<H, T> {
    const VTABLE: VTable = VTable {
        key: TypeId::of::<T>,
        name: std::any::type_name::<T>,
        offset: mem::offset_of!(Inner<H, T>, value),
        as_any: Self::as_any,
        free: Self::free,
    };

    /// # Safety
    /// `p` points at a live `Inner<H, T>` with provenance over all of it.
    unsafe fn as_any(p: NonNull<u8>) -> NonNull<dyn Any + Send + Sync> {
        let inner = p.cast::<Inner<H, T>>().as_ptr();
        // SAFETY: by the caller's promise, `inner` is live; this only computes a field's
        // address (no reference is made). Only `&` is ever made from it (point 3).
        let value: *const T = unsafe { &raw const (*inner).value };
        // SAFETY: a field's address within a live allocation is not null.
        unsafe { NonNull::new_unchecked(value.cast_mut() as *mut (dyn Any + Send + Sync)) }
    }

    /// # Safety
    /// `p` came from `Box::<Inner<H, T>>::into_raw`, and nothing uses it after this.
    unsafe fn free(p: NonNull<u8>) {
        // SAFETY: by the caller's promise.
        drop(unsafe { Box::from_raw(p.cast::<Inner<H, T>>().as_ptr()) });
    }
}

impl<H: Send + Sync> ThinArc<H> {
    /// `head` and `value` in one new allocation, with one handle.
    #[inline]
    pub(crate) fn new<T: Any + Send + Sync>(head: H, value: T) -> ThinArc<H> {
        let inner = Box::new(Inner {
            header: Header {
                count: AtomicUsize::new(1),
                vtable: &Table::<H, T>::VTABLE,
                head,
            },
            value,
        });
        // Point 1: the box's own pointer, cast to its first field.
        // SAFETY: a box's pointer is never null.
        let ptr = unsafe { NonNull::new_unchecked(Box::into_raw(inner)) }.cast::<Header<H>>();
        ThinArc {
            ptr,
            _owns: PhantomData,
        }
    }
}

impl<H> ThinArc<H> {
    #[inline]
    fn header(&self) -> &Header<H> {
        // SAFETY: points 1 and 2: live while this handle is.
        unsafe { self.ptr.as_ref() }
    }

    /// The value's key: the `TypeId` of its type.
    #[inline]
    pub(crate) fn key(&self) -> TypeId {
        (self.header().vtable.key)()
    }

    /// The value's type name.
    #[inline]
    pub(crate) fn type_name(&self) -> &'static str {
        (self.header().vtable.name)()
    }

    /// The value, if it is a `T`.
    #[inline]
    pub(crate) fn downcast_ref<T: Any>(&self) -> Option<&T> {
        let table = self.header().vtable;
        if (table.key)() != TypeId::of::<T>() {
            return None;
        }
        // SAFETY: point 4: the value is a `T`, at `offset` in the live allocation (points 1,
        // 2), borrowed for as long as `self` (point 3).
        Some(unsafe { &*self.ptr.cast::<u8>().as_ptr().add(table.offset).cast::<T>() })
    }

    /// The value, as `dyn Any`.
    #[inline]
    pub(crate) fn as_any(&self) -> &(dyn Any + Send + Sync) {
        // SAFETY: points 1 and 2 (the table is the value's, the allocation live), borrowed for
        // as long as `self` (point 3).
        unsafe { (self.header().vtable.as_any)(self.ptr.cast()).as_ref() }
    }

    /// How many handles there are (others may come or go meanwhile).
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.header().count.load(Ordering::Relaxed)
    }

    /// The header, mutably, if this is the only handle.
    #[inline]
    pub(crate) fn get_mut(&mut self) -> Option<&mut H> {
        if self.header().count.load(Ordering::Acquire) != 1 {
            return None;
        }
        // SAFETY: point 3: the only handle, borrowed mutably, so nobody else reaches the
        // header; the allocation is live (point 2).
        Some(unsafe { &mut (*self.ptr.as_ptr()).head })
    }

    /// Whether two handles share one allocation.
    #[inline]
    pub(crate) fn ptr_eq(a: &ThinArc<H>, b: &ThinArc<H>) -> bool {
        a.ptr == b.ptr
    }

    /// The allocation's address.
    #[inline]
    pub(crate) fn as_ptr(&self) -> *const () {
        self.ptr.as_ptr() as *const ()
    }
}

/// The bytes one allocation of a header `H` and a value `T` takes (for `node.rs`'s size test,
/// which runs without loom and `tracing`).
#[cfg(all(test, not(loom), not(feature = "tracing")))]
pub(crate) fn alloc_size<H, T>() -> usize {
    mem::size_of::<Inner<H, T>>()
}

impl<H> Deref for ThinArc<H> {
    type Target = H;
    #[inline]
    fn deref(&self) -> &H {
        &self.header().head
    }
}

impl<H> Clone for ThinArc<H> {
    #[inline]
    fn clone(&self) -> ThinArc<H> {
        // Point 2. Relaxed, as `Arc::clone`: this handle keeps the allocation alive meanwhile.
        let old = self.header().count.fetch_add(1, Ordering::Relaxed);
        // As `Arc`: abort before the count can wrap (it would take `isize::MAX` leaked handles).
        if old > isize::MAX as usize {
            std::process::abort();
        }
        ThinArc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<H> Drop for ThinArc<H> {
    #[inline]
    fn drop(&mut self) {
        // Point 2: the last handle frees, after the others' uses (Release) are seen (Acquire).
        if self.header().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let free = self.header().vtable.free;
        // SAFETY: point 1: `ptr` came from the box of the `Inner` this table was made for; this
        // was the last handle (point 2), so nothing uses the allocation after this.
        unsafe { free(self.ptr.cast()) }
    }
}

// SAFETY: point 5: a handle shares an `H` and a `Send + Sync` value, and its count is atomic.
unsafe impl<H: Send + Sync> Send for ThinArc<H> {}
// SAFETY: as `Send`.
unsafe impl<H: Send + Sync> Sync for ThinArc<H> {}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::ThinArc;

    /// Counts its drops.
    struct Counted(Arc<AtomicUsize>, u64);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn the_value_is_found_as_its_own_type_only_and_dropped_once_with_the_last_handle() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = ThinArc::new(7u32, Counted(drops.clone(), 42));
        let b = a.clone();
        assert!(ThinArc::ptr_eq(&a, &b));
        assert_eq!(*b, 7);
        assert_eq!(a.count(), 2);
        assert_eq!(a.downcast_ref::<Counted>().map(|c| c.1), Some(42));
        assert!(a.downcast_ref::<u64>().is_none());
        assert_eq!(a.key(), std::any::TypeId::of::<Counted>());
        assert!(a.type_name().ends_with("Counted"));
        assert!(a.as_any().downcast_ref::<Counted>().is_some());
        drop(a);
        assert_eq!(drops.load(Ordering::Relaxed), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn get_mut_only_for_the_only_handle() {
        let mut a = ThinArc::new(String::from("head"), ());
        let b = a.clone();
        assert!(a.get_mut().is_none());
        drop(b);
        a.get_mut().unwrap().push('!');
        assert_eq!(&*a, "head!");
    }

    #[test]
    fn values_of_any_alignment_and_size() {
        #[repr(align(64))]
        struct Wide([u8; 100]);
        let a = ThinArc::new(1u8, Wide([3; 100]));
        assert_eq!(a.downcast_ref::<Wide>().map(|w| w.0[99]), Some(3));
        assert_eq!((a.as_ptr() as usize) % 64, 0);
        let z = ThinArc::new((), ());
        assert!(z.downcast_ref::<()>().is_some());
    }

    #[test]
    fn handles_cross_threads() {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = ThinArc::new(1u64, Counted(drops.clone(), 5));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let a = a.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        let c = a.clone();
                        assert_eq!(c.downcast_ref::<Counted>().map(|c| c.1), Some(5));
                    }
                })
            })
            .collect();
        drop(a);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    }
}
