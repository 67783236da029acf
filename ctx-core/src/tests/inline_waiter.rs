//! A node's first waiter is kept inline until anything else depends on the node (invariant 23
//! of `tree`); it keeps key 0 when it moves into the dependents part, so its `Done` finds it
//! wherever it lives, and a cancel wakes it in either place.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use super::counting::{counting, held, woken};
use super::moving::StillClock;
use crate::tree::has_dependents_part;
use crate::{Ctx, Done, Error};

fn poll(done: &mut Done, waker: &Waker) -> Poll<Error> {
    Pin::new(done).poll(&mut Context::from_waker(waker))
}

#[test]
fn inline_first_waiter_needs_no_dependents_part_and_is_woken_by_a_cancel() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (count, waker) = counting();
    let mut done = ctx.done();
    assert!(poll(&mut done, &waker).is_pending());
    assert!(!has_dependents_part(&ctx.node), "one waiter, kept inline");
    assert_eq!(held(&count), 1);
    // A re-poll with a waker that wakes the same task keeps the one it holds.
    assert!(poll(&mut done, &waker.clone()).is_pending());
    assert_eq!(held(&count), 1);
    cancel.cancel();
    assert_eq!(woken(&count), 1, "the cancel woke it");
    assert_eq!(held(&count), 0, "and let it go");
    assert_eq!(poll(&mut done, &waker), Poll::Ready(Error::Canceled));
}

#[test]
fn inline_waiter_leaves_nothing_behind_and_the_next_one_is_inline_too() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (count, waker) = counting();
    for _ in 0..3 {
        let mut done = ctx.done();
        assert!(poll(&mut done, &waker).is_pending());
        assert_eq!(held(&count), 1);
        drop(done);
        assert_eq!(held(&count), 0, "the drop took its waker back");
        assert!(!has_dependents_part(&ctx.node), "nothing was allocated");
    }
    cancel.cancel();
    assert_eq!(woken(&count), 0, "nobody was waiting");
}

#[test]
fn inline_waiter_is_replaced_by_a_waker_of_another_task() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (first, first_waker) = counting();
    let (second, second_waker) = counting();
    let mut done = ctx.done();
    assert!(poll(&mut done, &first_waker).is_pending());
    assert!(poll(&mut done, &second_waker).is_pending()); // the task moved
    assert_eq!(held(&first), 0, "the old waker was let go");
    assert_eq!(held(&second), 1);
    assert!(!has_dependents_part(&ctx.node));
    cancel.cancel();
    assert_eq!((woken(&first), woken(&second)), (0, 1));
}

/// Whatever comes second — a waiter, an after-func, a child under the lock — the first waiter
/// moves to key 0 of the entries: a cancel still wakes it, and its `Done`, dropped first,
/// removes itself and no one else. (A first plain child goes to the node's first-child word and
/// moves nothing, invariant 25: the word is filled first, so that the child here registers
/// under the lock.)
#[test]
fn inline_waiter_moves_to_key_0_when_anything_else_comes() {
    for second in ["waiter", "after-func", "child"] {
        for drop_first in [false, true] {
            let (ctx, cancel) = Ctx::background().with_cancel();
            let _occupier = ctx.with_cancel();
            let (first, first_waker) = counting();
            let (other, other_waker) = counting();
            let mut done = ctx.done();
            assert!(poll(&mut done, &first_waker).is_pending());
            let mut other_done = ctx.done();
            let ran = Arc::new(AtomicUsize::new(0));
            let (_stop, child) = match second {
                "waiter" => {
                    assert!(poll(&mut other_done, &other_waker).is_pending());
                    (None, None)
                }
                "after-func" => {
                    let ran = ran.clone();
                    let stop = ctx.after_func(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                    });
                    (Some(stop), None)
                }
                _ => (None, Some(ctx.with_cancel())),
            };
            assert!(has_dependents_part(&ctx.node), "{second}: the part was made");
            // Re-polled from its new place: the same task, nothing cloned.
            assert!(poll(&mut done, &first_waker).is_pending());
            assert_eq!(held(&first), 1, "{second}");
            let mut done = Some(done);
            if drop_first {
                drop(done.take());
                assert_eq!(held(&first), 0, "{second}: it removed itself from key 0");
            }
            cancel.cancel();
            let expect_first = usize::from(!drop_first);
            assert_eq!(
                woken(&first),
                expect_first,
                "{second}, dropped first: {drop_first}"
            );
            // Woken by value: a node keeps its wakers for their `Done`s only with six waiters
            // or more (invariant 26).
            assert_eq!(held(&first), 0, "{second}");
            if let Some(done) = &mut done {
                assert_eq!(poll(done, &first_waker), Poll::Ready(Error::Canceled));
            }
            assert_eq!(held(&first), 0, "{second}");
            let expect_other = usize::from(second == "waiter");
            assert_eq!(woken(&other), expect_other, "{second}: the other waiter");
            drop(other_done);
            assert_eq!(
                held(&other),
                0,
                "{second}: the other waiter's `Done` let go of it"
            );
            assert_eq!(
                ran.load(Ordering::Relaxed),
                usize::from(second == "after-func"),
                "{second}: the after-func"
            );
            if let Some((child, _)) = &child {
                assert_eq!(child.err(), Some(Error::Canceled));
            }
        }
    }
}

#[test]
fn inline_waiter_of_a_parent_is_woken_by_its_parents_cancel_with_the_cause() {
    let (parent, cancel) = Ctx::background().with_cancel_cause();
    let (child, _h) = parent.with_cancel();
    let (count, waker) = counting();
    let mut done = child.done();
    assert!(poll(&mut done, &waker).is_pending());
    assert!(
        !has_dependents_part(&child.node),
        "the child's one waiter is inline"
    );
    cancel.cancel(std::io::Error::other("stop"));
    assert_eq!(woken(&count), 1);
    assert_eq!(held(&count), 0);
    assert_eq!(poll(&mut done, &waker), Poll::Ready(Error::Canceled));
    assert_eq!(child.cause().expect("a cause").to_string(), "stop");
}

#[test]
fn waiters_of_a_deadline_node_go_to_its_dependents_part() {
    let root = Ctx::background_with_clock(Arc::new(StillClock(Instant::now())));
    let (ctx, cancel) = root.with_timeout(Duration::from_secs(3600));
    let (count, waker) = counting();
    let mut done = ctx.done();
    assert!(poll(&mut done, &waker).is_pending());
    assert!(has_dependents_part(&ctx.node), "where the timer request is kept");
    cancel.cancel();
    assert_eq!(woken(&count), 1);
    assert_eq!(poll(&mut done, &waker), Poll::Ready(Error::Canceled));
}
