//! A cancel that finds six waiters or more in a node wakes them by reference and keeps their
//! wakers in the node for their `Done`s (invariant 26 of `tree`): each `Done` lets go of its own
//! when it answers or is dropped, one that lets go while the cancel is still waking leaves it to
//! the cancel, and whatever is left goes with the node. These count every clone of the wakers.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use crate::{Ctx, Done, Error};

/// A waker that counts its wakes and, when woken, drops the `Done`s in `victims` (a task whose
/// wake-up ends other waits at once, on the canceling thread).
struct Count {
    woken: AtomicUsize,
    victims: Mutex<Vec<Done>>,
}

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.fetch_add(1, Ordering::Relaxed);
        drop(std::mem::take(&mut *self.victims.lock().unwrap()));
    }
}

fn counting() -> (Arc<Count>, Waker) {
    let count = Arc::new(Count {
        woken: AtomicUsize::new(0),
        victims: Mutex::new(Vec::new()),
    });
    let waker = Waker::from(count.clone());
    (count, waker)
}

fn woken(count: &Count) -> usize {
    count.woken.load(Ordering::Relaxed)
}

/// The waker clones alive besides `count` itself and the test's `waker`.
fn held(count: &Arc<Count>) -> usize {
    Arc::strong_count(count) - 2
}

fn poll(done: &mut Done, waker: &Waker) -> Poll<Error> {
    Pin::new(done).poll(&mut Context::from_waker(waker))
}

/// `n` `Done`s of `ctx`, each polled once with `waker`.
fn waiting(ctx: &Ctx, waker: &Waker, n: usize) -> Vec<Done> {
    (0..n)
        .map(|_| {
            let mut done = ctx.done();
            assert!(poll(&mut done, waker).is_pending());
            done
        })
        .collect()
}

#[test]
fn each_done_lets_go_of_its_own_waker_when_it_answers_or_is_dropped() {
    let (ctx, cancel) = Ctx::background().with_cancel();
    let (count, waker) = counting();
    let mut dones = waiting(&ctx, &waker, 100);
    assert_eq!(held(&count), 100);
    cancel.cancel();
    assert_eq!(woken(&count), 100, "every waiter woken");
    assert_eq!(
        held(&count),
        100,
        "woken by reference: the node keeps them for their `Done`s"
    );
    for done in &mut dones[..50] {
        assert_eq!(poll(done, &waker), Poll::Ready(Error::Canceled));
    }
    assert_eq!(held(&count), 50, "an answer lets go of its waker");
    dones.truncate(75);
    assert_eq!(held(&count), 25, "so does a drop");
    drop(dones);
    assert_eq!(held(&count), 0);
    assert_eq!(woken(&count), 100, "and nobody is woken twice");
}

#[test]
fn a_done_dropped_while_the_cancel_wakes_leaves_its_waker_to_the_cancel() {
    for n in [2, 31, 32, 33, 100] {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let (count, waker) = counting();
        let (trigger, trigger_waker) = counting();
        let (victims, victim_waker) = counting();
        // The first waiter's wake drops every other `Done` of `victims`, on the canceling
        // thread, while the cancel is waking: some before it passed them, some after.
        let mut first = ctx.done();
        assert!(poll(&mut first, &trigger_waker).is_pending());
        *trigger.victims.lock().unwrap() = waiting(&ctx, &victim_waker, n);
        let others = waiting(&ctx, &waker, 3);
        cancel.cancel();
        assert_eq!(woken(&trigger), 1, "n = {n}");
        assert!(woken(&victims) <= n, "n = {n}: none woken twice");
        assert_eq!(woken(&count), 3, "n = {n}: the rest are woken all the same");
        assert_eq!(
            held(&victims),
            0,
            "n = {n}: the cancel let go of the victims' wakers"
        );
        drop((first, others));
        assert_eq!(held(&trigger) + held(&count), 0, "n = {n}");
        drop((ctx, cancel));
    }
}

#[test]
fn a_waker_that_polls_its_own_done_as_it_is_woken_is_let_go_once() {
    /// A waker whose wake polls the `Done` that registered it (a task run inline).
    struct Inline {
        woken: AtomicUsize,
        done: Mutex<Option<Done>>,
        seen: Mutex<Option<Poll<Error>>>,
    }
    impl Wake for Inline {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }
        fn wake_by_ref(self: &Arc<Self>) {
            self.woken.fetch_add(1, Ordering::Relaxed);
            if let Some(mut done) = self.done.lock().unwrap().take() {
                let waker = Waker::from(self.clone());
                *self.seen.lock().unwrap() = Some(poll(&mut done, &waker));
            }
        }
    }
    let (ctx, cancel) = Ctx::background().with_cancel();
    let inline = Arc::new(Inline {
        woken: AtomicUsize::new(0),
        done: Mutex::new(None),
        seen: Mutex::new(None),
    });
    let (count, waker) = counting();
    let _others = waiting(&ctx, &waker, 6);
    let inline_waker = Waker::from(inline.clone());
    let mut done = ctx.done();
    assert!(poll(&mut done, &inline_waker).is_pending());
    *inline.done.lock().unwrap() = Some(done);
    drop(inline_waker);
    cancel.cancel();
    assert_eq!(inline.woken.load(Ordering::Relaxed), 1);
    assert_eq!(*inline.seen.lock().unwrap(), Some(Poll::Ready(Error::Canceled)));
    assert_eq!(Arc::strong_count(&inline), 1, "its waker let go of, once");
    assert_eq!(woken(&count), 6);
}

#[test]
fn waiters_below_the_top_and_after_funcs_beside_them() {
    let (parent, cancel) = Ctx::background().with_cancel();
    let (child, _child_cancel) = parent.with_cancel();
    let (count, waker) = counting();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    let _stop = child.after_func(move || {
        r.fetch_add(1, Ordering::Relaxed);
    });
    let mut dones = waiting(&child, &waker, 6);
    dones.extend(waiting(&parent, &waker, 7));
    cancel.cancel();
    assert_eq!(woken(&count), 13);
    assert_eq!(ran.load(Ordering::Relaxed), 1, "the after-func ran");
    assert_eq!(held(&count), 13, "both nodes keep their wakers for their `Done`s");
    drop(dones);
    assert_eq!(held(&count), 0);
}

/// The threshold (`walk.rs`, `BY_REFERENCE`): five waiters are woken by value, their wakers let
/// go of by the cancel; six are kept in the node, whose `Done`s hold it beyond its context and
/// let go of them when they are dropped.
#[test]
fn five_waiters_are_woken_by_value_six_are_kept_for_their_dones() {
    for (n, kept) in [(5, 0), (6, 6)] {
        let (ctx, cancel) = Ctx::background().with_cancel();
        let (count, waker) = counting();
        let dones = waiting(&ctx, &waker, n);
        cancel.cancel();
        drop((ctx, cancel));
        assert_eq!((woken(&count), held(&count)), (n, kept), "n = {n}");
        drop(dones);
        assert_eq!(held(&count), 0, "n = {n}");
    }
}
