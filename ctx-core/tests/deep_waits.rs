//! Waiting on every node of a deep chain under one deadline costs linear work in all: the
//! climb from a waited-on node to the deadline's owner (where the one timer is armed) stops
//! at the first node already known to be covered. Counted with the `test-util` counter (this
//! file is its own test binary and its tests run one after another, so nothing else counts).

use std::sync::Mutex;
use std::task::Context as TaskContext;
use std::time::Duration;

use ctx_core::test_util::{deadline_owner_steps, timers_armed};
use ctx_core::{Ctx, Error};
use ctx_testkit::MockClock;
use futures::task::noop_waker_ref;

/// The counters are process-wide: one test at a time.
static ALONE: Mutex<()> = Mutex::new(());

const DEPTH: usize = if cfg!(miri) { 40 } else { 5_000 };

/// A chain of `DEPTH` `with_cancel` nodes under a 1 h timeout on `clock`.
fn chain(clock: &MockClock) -> (Vec<Ctx>, Vec<ctx_core::CancelHandle>) {
    let (top, h) = clock.background().with_timeout(Duration::from_secs(3600));
    let mut ctxs = vec![top];
    let mut handles = vec![h];
    for _ in 0..DEPTH {
        let (c, h) = ctxs.last().unwrap().with_cancel();
        ctxs.push(c);
        handles.push(h);
    }
    (ctxs, handles)
}

/// Polls `done()` of each context in `order` once, then fires the deadline and checks that
/// every wait ended with it, with one timer armed and linear climbing.
fn wait_on_each(order: impl Fn(&[Ctx]) -> Vec<&Ctx>) {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let clock = MockClock::new();
    let (ctxs, _handles) = chain(&clock);
    let (steps, timers) = (deadline_owner_steps(), timers_armed());
    let mut cx = TaskContext::from_waker(noop_waker_ref());
    let mut dones: Vec<_> = order(&ctxs).into_iter().map(|c| Box::pin(c.done())).collect();
    for d in &mut dones {
        assert!(d.as_mut().poll(&mut cx).is_pending());
    }
    let climbed = deadline_owner_steps() - steps;
    assert_eq!(timers_armed() - timers, 1, "one timer for the whole chain");
    assert!(
        climbed <= 2 * (DEPTH + 1),
        "climbed {climbed} nodes for {} waits: not linear",
        DEPTH + 1
    );
    clock.advance(Duration::from_secs(3600));
    for d in &mut dones {
        assert_eq!(
            d.as_mut().poll(&mut cx),
            std::task::Poll::Ready(Error::DeadlineExceeded)
        );
    }
}

#[test]
fn waiting_top_down_climbs_linearly() {
    wait_on_each(|c| c.iter().collect());
}

#[test]
fn waiting_bottom_up_climbs_linearly() {
    wait_on_each(|c| c.iter().rev().collect());
}

#[test]
fn after_funcs_on_every_node_climb_linearly() {
    let _alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
    let clock = MockClock::new();
    let (ctxs, _handles) = chain(&clock);
    let steps = deadline_owner_steps();
    let ran = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let _stops: Vec<_> = ctxs
        .iter()
        .map(|c| {
            let ran = ran.clone();
            c.after_func(move || {
                ran.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            })
        })
        .collect();
    let climbed = deadline_owner_steps() - steps;
    assert!(climbed <= 2 * (DEPTH + 1), "climbed {climbed}: not linear");
    clock.advance(Duration::from_secs(3600));
    assert_eq!(ran.load(std::sync::atomic::Ordering::Relaxed), DEPTH + 1);
}
