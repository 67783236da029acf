//! Invariant 26: a cancel that wakes a node's waiters by reference keeps their wakers in the
//! node for their `Done`s. Raced against a `Done` that answers (taking its waker) or is dropped:
//! every waiter is woken, no waker is moved while the cancel borrows it, and every clone is
//! released once everything is dropped.

use std::sync::Arc;
use std::task::Poll;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use super::loom_wake::{Flag, poll_once};
use crate::{Ctx, Error};

#[test]
fn cancel_waking_by_reference_vs_a_done_answering_or_dropped() {
    for drop_it in [false, true] {
        loom::model(move || {
            let (ctx, cancel) = Ctx::background().with_cancel();
            let a = Arc::new(Flag(AtomicUsize::new(0)));
            let b = Arc::new(Flag(AtomicUsize::new(0)));
            // Six waiters: the fewest a cancel wakes by reference (`walk.rs`, `BY_REFERENCE`).
            let mut done_a = ctx.done();
            let mut done_b = ctx.done();
            let mut rest: Vec<_> = (0..4).map(|_| ctx.done()).collect();
            assert_eq!(poll_once(&mut done_a, &a), Poll::Pending);
            for done in &mut rest {
                assert_eq!(poll_once(done, &a), Poll::Pending);
            }
            assert_eq!(poll_once(&mut done_b, &b), Poll::Pending);
            let b2 = b.clone();
            let t = thread::spawn(move || {
                if drop_it {
                    drop(done_b);
                    None
                } else {
                    let seen = poll_once(&mut done_b, &b2);
                    Some((seen, done_b))
                }
            });
            cancel.cancel();
            let polled = t.join().unwrap();
            assert_eq!(
                a.0.load(Ordering::SeqCst),
                5,
                "the other waiters are woken once each"
            );
            assert!(b.0.load(Ordering::SeqCst) <= 1);
            if let Some((seen, mut done_b)) = polled {
                if seen == Poll::Pending {
                    assert_eq!(b.0.load(Ordering::SeqCst), 1, "a pending waiter is woken");
                }
                assert_eq!(poll_once(&mut done_b, &b), Poll::Ready(Error::Canceled));
            }
            assert_eq!(poll_once(&mut done_a, &a), Poll::Ready(Error::Canceled));
            drop((done_a, rest));
            drop((ctx, cancel));
            assert_eq!(Arc::strong_count(&a), 1, "every clone of a's waker released");
            assert_eq!(Arc::strong_count(&b), 1, "every clone of b's waker released");
        });
    }
}
