//! Helpers shared by ctx-core's test files (`mod common;` in each).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use ctx_core::Clock;
use ctx_core::clock::Timer;

/// A clock whose time moves only when told ([`advance`](StuckClock::advance)) and whose timers
/// never fire: a deadline on it ends only when a read of the context notices it (lazy expiry).
#[derive(Debug)]
pub(crate) struct StuckClock(Mutex<Instant>);

impl StuckClock {
    /// A clock stuck at the current instant.
    pub(crate) fn new() -> StuckClock {
        StuckClock(Mutex::new(Instant::now()))
    }

    /// Moves the time forward by `d`; fires nothing.
    pub(crate) fn advance(&self, d: Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl Clock for StuckClock {
    fn now(&self) -> Instant {
        *self.0.lock().unwrap()
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}
