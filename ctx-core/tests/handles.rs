//! What `CancelHandle` and `CancelCauseHandle` share: clones count, the last drop cancels,
//! `disarm` gives one clone up, and `Debug` names the type and whether it is armed.

use ctx_core::{CancelCauseHandle, CancelHandle, Ctx, Error};

/// Both handle types, through one interface, so each test runs against both.
trait Handle: Clone + std::fmt::Debug {
    const NAME: &'static str;
    fn make() -> (Ctx, Self);
    fn disarm(self);
}

impl Handle for CancelHandle {
    const NAME: &'static str = "CancelHandle";
    fn make() -> (Ctx, Self) {
        Ctx::background().with_cancel()
    }
    fn disarm(self) {
        CancelHandle::disarm(self)
    }
}

impl Handle for CancelCauseHandle {
    const NAME: &'static str = "CancelCauseHandle";
    fn make() -> (Ctx, Self) {
        Ctx::background().with_cancel_cause()
    }
    fn disarm(self) {
        CancelCauseHandle::disarm(self)
    }
}

fn last_drop_cancels<H: Handle>() {
    let (ctx, a) = H::make();
    let b = a.clone();
    let c = b.clone();
    drop(a);
    drop(c);
    assert_eq!(ctx.err(), None, "{}: a clone is still alive", H::NAME);
    drop(b);
    assert_eq!(ctx.err(), Some(Error::Canceled), "{}", H::NAME);
    let cause = ctx.cause().unwrap();
    assert_eq!(
        cause.downcast_ref::<Error>(),
        Some(&Error::Canceled),
        "{}",
        H::NAME
    );
}

fn disarm_gives_one_clone_up<H: Handle>() {
    let (ctx, a) = H::make();
    let b = a.clone();
    a.disarm();
    assert_eq!(ctx.err(), None, "{}: disarm does not cancel", H::NAME);
    drop(b);
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "{}: b was the last one",
        H::NAME
    );

    let (ctx, a) = H::make();
    let b = a.clone();
    a.disarm();
    b.disarm();
    assert_eq!(ctx.err(), None, "{}: every clone disarmed", H::NAME);
}

fn debug_shows_name_and_armed<H: Handle>() {
    let (_ctx, a) = H::make();
    assert_eq!(format!("{a:?}"), format!("{} {{ armed: true }}", H::NAME));
    assert_eq!(format!("{:?}", a.clone()), format!("{a:?}"));
}

fn clone_of_a_freed_context_is_disarmed<H: Handle>() {
    let (ctx, a) = H::make();
    drop(ctx);
    let b = a.clone();
    assert_eq!(format!("{b:?}"), format!("{} {{ armed: false }}", H::NAME));
}

#[test]
fn cancel_handle() {
    last_drop_cancels::<CancelHandle>();
    disarm_gives_one_clone_up::<CancelHandle>();
    debug_shows_name_and_armed::<CancelHandle>();
    clone_of_a_freed_context_is_disarmed::<CancelHandle>();
}

#[test]
fn cancel_cause_handle() {
    last_drop_cancels::<CancelCauseHandle>();
    disarm_gives_one_clone_up::<CancelCauseHandle>();
    debug_shows_name_and_armed::<CancelCauseHandle>();
    clone_of_a_freed_context_is_disarmed::<CancelCauseHandle>();
}
