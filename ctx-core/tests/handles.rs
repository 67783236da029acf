//! What `CancelHandle` and `CancelCauseHandle` share: clones count, the last drop cancels,
//! `disarm` gives one clone up, an armed clone keeps its context's node (and so what the node
//! holds) alive until it is dropped or disarmed, and `Debug` names the type and whether it is
//! armed.

use std::sync::Arc;

use ctx_core::{CancelCauseHandle, CancelHandle, Ctx, Error, HandleDropped};

/// Both handle types, through one interface, so each test runs against both.
trait Handle: Clone + std::fmt::Debug {
    const NAME: &'static str;
    fn make_under(parent: &Ctx) -> (Ctx, Self);
    fn disarm(self);
    fn cancel_now(&self);
    fn make() -> (Ctx, Self) {
        Self::make_under(&Ctx::background())
    }
}

impl Handle for CancelHandle {
    const NAME: &'static str = "CancelHandle";
    fn make_under(parent: &Ctx) -> (Ctx, Self) {
        parent.with_cancel()
    }
    fn disarm(self) {
        CancelHandle::disarm(self)
    }
    fn cancel_now(&self) {
        self.cancel()
    }
}

impl Handle for CancelCauseHandle {
    const NAME: &'static str = "CancelCauseHandle";
    fn make_under(parent: &Ctx) -> (Ctx, Self) {
        parent.with_cancel_cause()
    }
    fn disarm(self) {
        CancelCauseHandle::disarm(self)
    }
    fn cancel_now(&self) {
        self.cancel_without_cause()
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
    assert!(cause.is::<HandleDropped>(), "{}: {cause:?}", H::NAME);
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

/// What the handle's node holds, seen from outside: the node holds its parent, a value node
/// holding `token`. `token`'s count is 2 while the node lives, 1 once it is freed.
fn held(token: &Arc<()>) -> bool {
    Arc::strong_count(token) > 1
}

fn armed_clone_keeps_the_node_until_dropped_or_disarmed<H: Handle>() {
    let name = H::NAME;
    let under = |token: &Arc<()>| H::make_under(&Ctx::background().with_value(token.clone()));

    // Every `Ctx` clone gone: the armed handles keep the node, the last drop frees it.
    let token = Arc::new(());
    let (ctx, a) = under(&token);
    let b = a.clone();
    drop(ctx);
    assert!(held(&token), "{name}: armed clones keep the node");
    assert_eq!(format!("{b:?}"), format!("{name} {{ armed: true }}"));
    drop(a);
    assert!(held(&token), "{name}: one armed clone left");
    drop(b);
    assert!(!held(&token), "{name}: the last drop frees the node");

    // Disarming gives the node up as well.
    let token = Arc::new(());
    let (ctx, a) = under(&token);
    let b = a.clone();
    drop(ctx);
    a.disarm();
    assert!(held(&token), "{name}: one armed clone left");
    b.disarm();
    assert!(!held(&token), "{name}: disarming the last clone frees the node");

    // Canceled, the node is still held by the handles until they go (a done node's handles
    // skip the clone count, not the reference).
    let token = Arc::new(());
    let (ctx, a) = under(&token);
    let b = a.clone();
    a.cancel_now();
    assert_eq!(ctx.err(), Some(Error::Canceled), "{name}");
    drop(ctx);
    assert!(held(&token), "{name}: a and b are armed");
    drop(a);
    assert!(held(&token), "{name}: b is armed");
    b.disarm();
    assert!(!held(&token), "{name}: freed by the last disarm");

    // A handle dropped while its `Ctx` lives leaves the node to the `Ctx`.
    let token = Arc::new(());
    let (ctx, a) = under(&token);
    drop(a);
    assert_eq!(ctx.err(), Some(Error::Canceled), "{name}");
    assert!(held(&token), "{name}: the ctx holds it");
    drop(ctx);
    assert!(!held(&token), "{name}: nothing holds it any more");
}

#[test]
fn cancel_handle() {
    last_drop_cancels::<CancelHandle>();
    disarm_gives_one_clone_up::<CancelHandle>();
    debug_shows_name_and_armed::<CancelHandle>();
    armed_clone_keeps_the_node_until_dropped_or_disarmed::<CancelHandle>();
}

#[test]
fn cancel_cause_handle() {
    last_drop_cancels::<CancelCauseHandle>();
    disarm_gives_one_clone_up::<CancelCauseHandle>();
    debug_shows_name_and_armed::<CancelCauseHandle>();
    armed_clone_keeps_the_node_until_dropped_or_disarmed::<CancelCauseHandle>();
}
