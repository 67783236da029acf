//! Grace and idle contexts leave nothing in their parent's slab, whichever way they end.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::Timer;
use crate::tree::child_count;
use crate::{Clock, Ctx, Error};

/// Time that stands still, and timers that never fire: no timer thread is started (Miri
/// reports a thread still running at exit).
#[derive(Debug)]
pub(super) struct StillClock(pub(super) Instant);

impl Clock for StillClock {
    fn now(&self) -> Instant {
        self.0
    }
    fn sleep_until(&self, _deadline: Instant) -> Timer {
        Box::pin(std::future::pending())
    }
}

fn root() -> Ctx {
    Ctx::background_with_clock(Arc::new(StillClock(Instant::now())))
}

fn children(ctx: &Ctx) -> usize {
    child_count(&ctx.node)
}

#[test]
fn a_dropped_or_canceled_grace_ctx_leaves_its_parent_empty() {
    let (soft, _s) = root().with_cancel();
    let (hard, h) = soft.with_grace(Duration::from_secs(30));
    assert_eq!(children(&soft), 1, "registered like a child");
    h.disarm();
    drop(hard);
    assert_eq!(children(&soft), 0);

    let (hard, h) = soft.with_grace(Duration::from_secs(30));
    h.cancel();
    assert_eq!(hard.err(), Some(Error::Canceled));
    assert_eq!(children(&soft), 0);
}

#[test]
fn a_dropped_or_canceled_idle_ctx_leaves_its_parent_empty() {
    let (parent, _p) = root().with_cancel();
    let (ctx, idle) = parent.with_idle_timeout(Duration::from_secs(30));
    assert_eq!(children(&parent), 1);
    idle.touch();
    idle.disarm();
    drop(ctx);
    assert_eq!(children(&parent), 0);

    let (ctx, idle) = parent.with_idle_timeout(Duration::from_secs(30));
    idle.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert_eq!(children(&parent), 0);
}
