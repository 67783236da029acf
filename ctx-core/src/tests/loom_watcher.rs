//! The watch protocol (watcher.rs): wakes racing each other and `cancel`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use loom::sync::Mutex;
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use crate::watcher::Watcher;

#[derive(Clone, Default)]
struct Shared {
    ready: Arc<AtomicBool>,
    waker: Arc<Mutex<Option<Waker>>>,
    polling: Arc<AtomicBool>,
    completed: Arc<AtomicUsize>,
}

/// Ready once `ready` is set; asserts it is never polled by two threads at once.
struct Probe(Shared);

impl Future for Probe {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let s = &self.0;
        assert!(!s.polling.swap(true, Ordering::SeqCst), "polled concurrently");
        *s.waker.lock().unwrap() = Some(cx.waker().clone());
        let out = if s.ready.load(Ordering::SeqCst) {
            s.completed.fetch_add(1, Ordering::SeqCst);
            Poll::Ready(())
        } else {
            Poll::Pending
        };
        s.polling.store(false, Ordering::SeqCst);
        out
    }
}

fn fire(s: &Shared) {
    s.ready.store(true, Ordering::SeqCst);
    let w = s.waker.lock().unwrap().clone();
    if let Some(w) = w {
        w.wake();
    }
}

/// Invariant 2 of watcher.rs: two wakes racing each other (and the first poll's re-arm) never
/// poll concurrently, and the future completes exactly once.
#[test]
fn racing_wakes_complete_exactly_once() {
    loom::model(|| {
        let s = Shared::default();
        let _watch = Watcher::start(true, Probe(s.clone()));
        let s2 = s.clone();
        let t = thread::spawn(move || fire(&s2));
        fire(&s);
        t.join().unwrap();
        assert_eq!(s.completed.load(Ordering::SeqCst), 1);
    });
}

/// Invariant 3: a cancel racing a wake leaves the future run at most once, and dropped.
#[test]
fn cancel_vs_wake_completes_at_most_once() {
    loom::model(|| {
        let s = Shared::default();
        let watch = Watcher::start(true, Probe(s.clone()));
        let s2 = s.clone();
        let t = thread::spawn(move || fire(&s2));
        watch.cancel();
        t.join().unwrap();
        assert!(s.completed.load(Ordering::SeqCst) <= 1);
        // Canceled: a later wake does nothing.
        fire(&s);
        assert!(s.completed.load(Ordering::SeqCst) <= 1);
    });
}

/// Wakes itself during its first poll (as tokio's `Sleep` does out of budget), then is ready
/// once `ready` is set.
struct SelfWake(Shared, bool);

impl Future for SelfWake {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.1 {
            self.1 = true;
            cx.waker().wake_by_ref();
        }
        Pin::new(&mut Probe(self.0.clone())).poll(cx)
    }
}

/// Invariant 4: a wake from inside the poll, racing a wake from another thread, hands the
/// watch on without a concurrent poll or a lost wake-up, and the future completes once.
#[test]
fn a_self_wake_racing_another_wake_completes_exactly_once() {
    loom::model(|| {
        let s = Shared::default();
        let _watch = Watcher::start(true, SelfWake(s.clone(), false));
        let s2 = s.clone();
        let t = thread::spawn(move || fire(&s2));
        t.join().unwrap();
        assert_eq!(s.completed.load(Ordering::SeqCst), 1);
    });
}

/// Once `ready` is set, its first poll wakes itself and stays pending (as tokio's `Sleep` out
/// of budget); the next one completes.
struct WakesWhenReady(Shared, bool);

impl Future for WakesWhenReady {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.1 && self.0.ready.load(Ordering::SeqCst) {
            self.1 = true;
            *self.0.waker.lock().unwrap() = Some(cx.waker().clone());
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        Pin::new(&mut Probe(self.0.clone())).poll(cx)
    }
}

/// Invariants 3 and 4: a cancel racing a poll that wakes itself (and the hand-over of the next
/// poll) is never overwritten: the future completes at most once and is dropped, and a later
/// wake does nothing.
#[test]
fn cancel_vs_self_wake_completes_at_most_once() {
    loom::model(|| {
        let s = Shared::default();
        let watch = Watcher::start(true, WakesWhenReady(s.clone(), false));
        let s2 = s.clone();
        let t = thread::spawn(move || fire(&s2));
        watch.cancel();
        t.join().unwrap();
        assert!(s.completed.load(Ordering::SeqCst) <= 1);
        fire(&s);
        assert!(s.completed.load(Ordering::SeqCst) <= 1);
    });
}
