//! The auto traits users rely on, pinned at compile time: a change that loses one fails to
//! build this file.

use ctx_core::{AfterFunc, CancelCauseHandle, CancelHandle, Ctx, Done, Error, Run, RunStream, Sleep};

fn send_sync_static<T: Send + Sync + 'static>() {}
fn send_static<T: Send + 'static>() {}
fn unpin<T: Unpin>() {}
fn clone<T: Clone>() {}

#[test]
fn handles_and_futures_are_send_sync_and_static() {
    send_sync_static::<Ctx>();
    send_sync_static::<Done>();
    send_sync_static::<CancelHandle>();
    send_sync_static::<CancelCauseHandle>();
    send_sync_static::<AfterFunc>();
    send_sync_static::<Sleep>();
    send_sync_static::<Error>();
    send_static::<Run<std::future::Ready<u8>>>();
    send_static::<RunStream<futures::stream::Empty<u8>>>();
    unpin::<Done>();
    unpin::<Sleep>();
    clone::<Ctx>();
    clone::<CancelHandle>();
    clone::<CancelCauseHandle>();
}

/// A `Ctx` may cross `catch_unwind` without `AssertUnwindSafe` (issue 10): a panic never leaves
/// a context half-changed.
#[test]
fn ctx_is_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<Ctx>();
    unwind_safe::<CancelHandle>();
    unwind_safe::<CancelCauseHandle>();
    unwind_safe::<AfterFunc>();
    let (ctx, cancel) = Ctx::background().with_cancel();
    let caught = std::panic::catch_unwind(|| {
        cancel.cancel();
        ctx.err()
    });
    assert_eq!(caught.ok().flatten(), Some(Error::Canceled));
}

#[test]
fn error_is_copy_eq_and_a_std_error() {
    fn check<T: Copy + Eq + std::error::Error + Send + Sync + 'static>() {}
    check::<Error>();
    assert_eq!(Error::Canceled.to_string(), "context canceled");
    assert_eq!(Error::DeadlineExceeded.to_string(), "context deadline exceeded");
}

#[test]
fn context_trait_is_object_safe() {
    let boxed: Box<dyn ctx_core::Context> = Box::new(Ctx::background());
    assert_eq!(boxed.err(), None);
}
