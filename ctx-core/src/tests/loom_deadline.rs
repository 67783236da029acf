//! Lazy deadline expiry (`err()` finding the deadline passed) racing an explicit cancel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

use crate::clock::Sleep;
use crate::{Clock, Ctx, Error};

/// A clock that jumps one hour ahead when told to; its timers never fire (nobody waits here).
#[derive(Debug)]
struct JumpClock {
    base: Instant,
    late: AtomicBool,
}

impl Clock for JumpClock {
    fn now(&self) -> Instant {
        if self.late.load(Ordering::SeqCst) {
            self.base + Duration::from_secs(3600)
        } else {
            self.base
        }
    }
    fn sleep_until(&self, _deadline: Instant) -> Sleep {
        Box::pin(std::future::pending())
    }
}

/// The deadline passed before anyone looked; then `err()` and `cancel()` race. Both the
/// context and its child end `DeadlineExceeded`, whoever wins.
#[test]
fn lazy_expiry_vs_cancel_both_see_deadline_exceeded() {
    loom::model(|| {
        let clock = Arc::new(JumpClock {
            base: Instant::now(),
            late: AtomicBool::new(false),
        });
        let root = Ctx::background_with_clock(clock.clone());
        let (ctx, cancel) = root.with_timeout(Duration::from_secs(1));
        let (child, _h) = ctx.with_cancel();
        clock.late.store(true, Ordering::SeqCst);
        let c = child.clone();
        let t = thread::spawn(move || c.err());
        cancel.cancel();
        let seen = t.join().unwrap();
        assert_eq!(
            seen,
            Some(Error::DeadlineExceeded),
            "child.err() on the racing thread"
        );
        assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
        assert_eq!(child.err(), Some(Error::DeadlineExceeded));
    });
}
