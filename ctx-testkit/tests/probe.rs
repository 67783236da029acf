//! `Probe`: the poll helpers fail loudly when the future does not do what was asserted.

use std::task::Poll;

use ctx_testkit::Probe;

#[test]
#[should_panic(expected = "expected the future to be pending")]
fn assert_pending_panics_on_a_ready_future() {
    Probe::new(async {}).assert_pending();
}

#[test]
#[should_panic(expected = "expected the future to be ready")]
fn assert_ready_panics_on_a_pending_future() {
    Probe::new(std::future::pending::<()>()).assert_ready();
}

#[test]
#[should_panic(expected = "woken 2 time(s), it was woken 1")]
fn assert_woken_panics_on_a_wrong_count() {
    let p = Probe::new(std::future::pending::<()>());
    p.waker().wake();
    p.assert_woken(2);
}

#[test]
#[should_panic(expected = "polled after its future completed")]
fn polling_after_completion_panics() {
    let mut p = Probe::new(async { 1 });
    assert_eq!(p.poll(), Poll::Ready(1));
    let _ = p.poll();
}

#[test]
fn wakers_held_counts_clones_kept_by_the_future() {
    let mut p = Probe::new(futures::future::poll_fn(|cx| {
        std::mem::forget(cx.waker().clone()); // a leak the probe must see
        Poll::<()>::Pending
    }));
    p.assert_pending();
    p.drop_future();
    assert_eq!(p.wakers_held(), 1);
}
