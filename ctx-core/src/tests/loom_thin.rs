//! `tree/thin.rs`: the count of a `ThinArc` (a value node's allocation). Clones dropped on
//! several threads free the allocation once, after every other handle is gone; `get_mut`
//! answers only for the last handle; and a value ctx shared across threads is read and
//! freed the same way through the public API.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loom::thread;

use crate::Ctx;
use crate::tree::ThinArc;

/// Counts its drops; checks on drop that it is dropped whole (its field intact).
struct Counted(Arc<AtomicUsize>, u64);

impl Drop for Counted {
    fn drop(&mut self) {
        assert_eq!(self.1, 42, "a value dropped twice or torn");
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Three handles dropped at once (two threads and the main one): exactly one frees, and only
/// after the others' reads.
#[test]
fn thin_clones_dropped_on_threads_free_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let a = ThinArc::new(7u32, Counted(drops.clone(), 42));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let b = a.clone();
                thread::spawn(move || {
                    assert_eq!(*b, 7);
                    assert_eq!(b.downcast_ref::<Counted>().map(|c| c.1), Some(42));
                })
            })
            .collect();
        drop(a);
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}

/// `get_mut` races a clone being dropped on another thread: it answers `Some` only once that
/// drop is done, and then the header is this thread's alone.
#[test]
fn thin_get_mut_only_after_the_other_handle_is_gone() {
    loom::model(|| {
        let mut a = ThinArc::new(0u64, ());
        let b = a.clone();
        let t = thread::spawn(move || {
            assert_eq!(*b, 0);
            drop(b);
        });
        // Before the other drop is seen, `None`; after it, this handle alone.
        let early = a.get_mut().map(|head| *head = 1).is_some();
        if early {
            assert_eq!(a.count(), 1);
        }
        t.join().unwrap();
        *a.get_mut().expect("the only handle once the other is joined") += 10;
        assert_eq!(*a, if early { 11 } else { 10 });
    });
}

/// Through the API: a value ctx and its child, read and dropped on two threads; the value is
/// dropped once, when the last of them goes.
#[test]
fn thin_value_ctx_shared_across_threads_is_freed_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let ctx = Ctx::background().with_value(Counted(drops.clone(), 42));
        let child = ctx.with_value(1u8);
        let t = thread::spawn(move || {
            assert_eq!(child.value::<Counted>().map(|c| c.1), Some(42));
            assert_eq!(child.value::<u8>(), Some(&1));
        });
        assert!(ctx.value::<u8>().is_none());
        drop(ctx);
        t.join().unwrap();
        assert_eq!(drops.load(Ordering::Relaxed), 1);
    });
}
