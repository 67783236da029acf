//! The adapter re-exports ctx-core's public API by name (no glob): each item below must be the
//! very same item as ctx-core's, so code can switch between `ctx_core::X` and `ctx_async_std::X`.

use std::any::TypeId;

#[test]
fn types_are_ctx_core_types() {
    fn same<A: ?Sized + 'static, B: ?Sized + 'static>() -> bool {
        TypeId::of::<A>() == TypeId::of::<B>()
    }
    assert!(same::<ctx_async_std::Ctx, ctx_core::Ctx>());
    assert!(same::<ctx_async_std::Error, ctx_core::Error>());
    assert!(same::<ctx_async_std::Cause, ctx_core::Cause>());
    assert!(same::<ctx_async_std::CancelHandle, ctx_core::CancelHandle>());
    assert!(same::<
        ctx_async_std::CancelCauseHandle,
        ctx_core::CancelCauseHandle,
    >());
    assert!(same::<ctx_async_std::AfterFunc, ctx_core::AfterFunc>());
    assert!(same::<ctx_async_std::Done, ctx_core::Done>());
    assert!(same::<ctx_async_std::Sleep, ctx_core::Sleep>());
    assert!(same::<
        ctx_async_std::Run<std::future::Ready<()>>,
        ctx_core::Run<std::future::Ready<()>>,
    >());
    assert!(same::<
        ctx_async_std::RunStream<Vec<u8>>,
        ctx_core::RunStream<Vec<u8>>,
    >());
    assert!(same::<
        ctx_async_std::RunTimeout<std::future::Ready<()>>,
        ctx_core::RunTimeout<std::future::Ready<()>>,
    >());
    assert!(same::<ctx_async_std::HandleDropped, ctx_core::HandleDropped>());
    assert!(same::<
        ctx_async_std::clock::SystemClock,
        ctx_core::clock::SystemClock,
    >());
    assert!(same::<dyn ctx_async_std::Clock, dyn ctx_core::Clock>());
    assert!(same::<dyn ctx_async_std::Context, dyn ctx_core::Context>());
}
