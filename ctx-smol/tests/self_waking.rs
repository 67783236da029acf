//! Issue 10, point 1, on async-io's clock (smol's and async-std's): futures that wake
//! themselves inside their own `poll`, as timers and as a wrapped foreign `done()`, spin no
//! thread, and every deadline and cancel lands. Every wait is bounded.

use ctx_smol::AsyncIoClock;
use ctx_testkit::conformance::{
    self_waking_foreign_done_does_not_spin, self_waking_timer_fires, self_waking_timer_forever_does_not_spin,
};

#[test]
fn a_self_waking_timer_fires_on_async_io() {
    self_waking_timer_fires(AsyncIoClock::new(), std::thread::sleep);
}

#[test]
fn a_timer_waking_itself_forever_spins_nobody_on_async_io() {
    self_waking_timer_forever_does_not_spin(AsyncIoClock::new(), std::thread::sleep);
}

#[test]
fn a_self_waking_foreign_done_spins_nobody_on_async_io() {
    self_waking_foreign_done_does_not_spin(ctx_smol::background());
}
