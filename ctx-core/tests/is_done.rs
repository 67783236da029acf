//! `is_done()` reads the same state word as `err()` without decoding an error: it answers
//! `err().is_some()` for every kind of context, open or done, and expires a passed deadline
//! that nobody noticed, as `err()` does.

use std::sync::Arc;
use std::time::Duration;

use ctx_core::{Ctx, Error};

mod common;
use common::StuckClock;

/// `is_done()` first (it may expire), then `err()`: they agree.
#[track_caller]
fn agrees(ctx: &Ctx, done: bool) {
    assert_eq!(ctx.is_done(), done, "{ctx:?}");
    assert_eq!(ctx.err().is_some(), done, "{ctx:?}");
}

#[test]
fn is_done_answers_as_err_for_every_kind_of_context() {
    let bg = Ctx::background();
    agrees(&bg, false);
    agrees(&Ctx::todo(), false);
    agrees(&bg.with_value(1u8), false);
    agrees(&bg.without_cancel(), false);

    let (open, _keep) = bg.with_cancel();
    agrees(&open, false);
    agrees(&open.with_value(1u8), false);
    agrees(&open.with_value(1u8).with_value(2u16), false);

    let (closed, cancel) = bg.with_cancel();
    let value = closed.with_value(1u8);
    let (child, _child_handle) = value.with_cancel();
    let detached = closed.without_cancel();
    cancel.cancel();
    agrees(&closed, true);
    agrees(&value, true);
    agrees(&child, true);
    agrees(&detached, false);
    agrees(&detached.with_value(3u32), false);
}

#[test]
fn is_done_expires_a_passed_deadline_nobody_noticed() {
    let clock = Arc::new(StuckClock::new());
    let root = Ctx::background_with_clock(clock.clone());
    let (timed, _cancel) = root.with_timeout(Duration::from_secs(1));
    let below = timed.with_value(1u8);
    agrees(&timed, false);
    agrees(&below, false);
    clock.advance(Duration::from_secs(2));
    // No timer fires on this clock: the read below expires the node itself.
    assert!(below.is_done(), "a value below a passed deadline");
    assert_eq!(timed.err(), Some(Error::DeadlineExceeded));

    let (idle, _handle) = root.with_idle_timeout(Duration::from_secs(1));
    agrees(&idle, false);
    clock.advance(Duration::from_secs(2));
    assert!(idle.is_done(), "an idle context whose timeout passed");
    assert_eq!(idle.err(), Some(Error::DeadlineExceeded));
}
