//! Grace and idle contexts leave nothing in their parent's slab, whichever way they end.

use std::time::Duration;

use crate::tree::child_count;
use crate::{Ctx, Error};

fn children(ctx: &Ctx) -> usize {
    child_count(&ctx.node)
}

#[test]
fn a_dropped_or_canceled_grace_ctx_leaves_its_parent_empty() {
    let (soft, _s) = Ctx::background().with_cancel();
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
    let (parent, _p) = Ctx::background().with_cancel();
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
