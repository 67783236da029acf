//! The auto traits and trait bounds users rely on, pinned at compile time: `const` items, so a
//! change that loses one fails to build this file (there is nothing to run). Runtime behaviour
//! (Display strings, `is_timeout`, what `err()` answers) is the conformance suite's.

use std::panic::{RefUnwindSafe, UnwindSafe};

use ctx_core::{
    AfterFunc, CancelCauseHandle, CancelHandle, Context, Ctx, Done, Error, Run, RunStream, Sleep,
};

/// Handles and futures are `Send + Sync + 'static` (the futures of `run` and `run_stream`:
/// `Send + 'static` when theirs are), `Done` and `Sleep` are `Unpin`, `Ctx` and the handles are
/// `Clone`.
const _: () = {
    const fn send_sync_static<T: Send + Sync + 'static>() {}
    const fn send_static<T: Send + 'static>() {}
    const fn unpin<T: Unpin>() {}
    const fn clone<T: Clone>() {}

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
};

/// `ctx_is_unwind_safe`: a `Ctx` and its handles may cross `catch_unwind` without
/// `AssertUnwindSafe` (issue 10): a panic never leaves a context half-changed.
const _: () = {
    const fn unwind_safe<T: UnwindSafe + RefUnwindSafe>() {}

    unwind_safe::<Ctx>();
    unwind_safe::<CancelHandle>();
    unwind_safe::<CancelCauseHandle>();
    unwind_safe::<AfterFunc>();
};

/// The same, as users write it: a closure that borrows both, with no `AssertUnwindSafe`.
const _: fn(&Ctx, &CancelHandle) = |ctx, cancel| {
    let _ = std::panic::catch_unwind(|| {
        cancel.cancel();
        ctx.err()
    });
};

/// `Error` is `Copy + Eq + std::error::Error + Send + Sync + 'static`.
const _: () = {
    const fn error<T: Copy + Eq + std::error::Error + Send + Sync + 'static>() {}
    error::<Error>()
};

/// `Error` has exactly the two variants and is not `#[non_exhaustive]`: a match on both needs
/// no wildcard.
const _: fn(Error) -> bool = |e| match e {
    Error::Canceled => false,
    Error::DeadlineExceeded => true,
};

/// `Context` is object safe, `Ctx` is one, and a `Box<dyn Context>` answers its methods.
const _: fn(Ctx) -> Option<Error> = |ctx| {
    let boxed: Box<dyn Context> = Box::new(ctx);
    boxed.err()
};
