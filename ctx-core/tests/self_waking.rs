//! Futures that wake themselves inside their own `poll` (as timers, and as the `done()` of a
//! wrapped custom context) on ctx-core's own clocks: no thread spins, every deadline and
//! cancel lands. Every wait is bounded: a spinning thread fails the test instead of hanging.
#![cfg(not(miri))] // the watcher thread and real timers outlive the test

use ctx_core::Ctx;
use ctx_core::clock::SystemClock;
use ctx_testkit::MockClock;
use ctx_testkit::conformance::{
    self_waking_foreign_done_does_not_spin, self_waking_timer_fires, self_waking_timer_forever_does_not_spin,
};

#[test]
fn a_self_waking_timer_fires_on_the_mock_clock() {
    let clock = MockClock::new();
    self_waking_timer_fires(clock.clone(), |d| clock.advance(d));
}

#[test]
fn a_self_waking_timer_fires_on_the_system_clock() {
    self_waking_timer_fires(SystemClock::default(), std::thread::sleep);
}

#[test]
fn a_timer_waking_itself_forever_spins_nobody_on_the_mock_clock() {
    let clock = MockClock::new();
    self_waking_timer_forever_does_not_spin(clock.clone(), |d| clock.advance(d));
}

#[test]
fn a_timer_waking_itself_forever_spins_nobody_on_the_system_clock() {
    self_waking_timer_forever_does_not_spin(SystemClock::default(), std::thread::sleep);
}

#[test]
fn a_self_waking_foreign_done_spins_nobody_on_the_mock_clock() {
    self_waking_foreign_done_does_not_spin(MockClock::new().background());
}

#[test]
fn a_self_waking_foreign_done_spins_nobody_on_the_system_clock() {
    self_waking_foreign_done_does_not_spin(Ctx::background());
}
