//! A dropped grace or idle context releases every timer and registration it took: live nodes
//! and armed timers come back to where they were (as `leaks.rs` checks for the other kinds).
//! The counters are process-wide, so the tests run one at a time (`SERIAL`).

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use ctx_core::test_util::live_nodes;
use ctx_testkit::MockClock;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

const ROUNDS: usize = if cfg!(miri) { 10 } else { 10_000 };

#[test]
fn dropped_idle_contexts_release_their_node_timer_and_slot() {
    let _serial = serial();
    let clock = MockClock::new();
    let (parent, _p) = clock.background().with_cancel();
    let base = live_nodes();
    for i in 0..ROUNDS {
        let (ctx, idle) = parent.with_idle_timeout(Duration::from_secs(60));
        let (_child, _c) = ctx.with_cancel();
        idle.touch();
        if i % 2 == 0 {
            idle.disarm(); // dropped without ever being canceled
        }
    }
    assert_eq!(live_nodes(), base);
    assert_eq!(clock.pending_timers(), 0, "every idle timer released");
    let (_held, _h) = parent.with_cancel();
    assert_eq!(live_nodes(), base + 1);
}

#[test]
fn dropped_grace_contexts_release_their_node_timer_and_slot() {
    let _serial = serial();
    let clock = MockClock::new();
    let base = live_nodes();
    for i in 0..ROUNDS {
        let (soft, stop) = clock.background().with_cancel();
        let (hard, cancel) = soft.with_grace(Duration::from_secs(30));
        let (_child, _c) = hard.with_cancel();
        if i % 2 == 0 {
            stop.cancel(); // the grace timer is armed, then dropped with the node
        } else {
            cancel.disarm(); // never started: only its slot in `soft`
            drop(stop);
        }
        drop(soft);
    }
    assert_eq!(live_nodes(), base);
    assert_eq!(clock.pending_timers(), 0, "every grace timer released");
}

#[test]
fn a_dropped_grace_context_leaves_its_live_parent_as_it_was() {
    let _serial = serial();
    let clock = MockClock::new();
    let (soft, _stop) = clock.background().with_timeout(Duration::from_secs(60));
    let base = live_nodes();
    for _ in 0..ROUNDS {
        let (hard, _cancel) = soft.with_grace(Duration::from_secs(30));
        drop(hard);
    }
    assert_eq!(live_nodes(), base);
    // `soft`'s own deadline timer (armed by the first `with_grace`) is the only one.
    assert_eq!(clock.pending_timers(), 1);
}
