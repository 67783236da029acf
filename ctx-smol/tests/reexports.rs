//! The adapter re-exports ctx-core's public API by name (no glob): each item below must be the
//! very same item as ctx-core's, so code can switch between `ctx_core::X` and `ctx_smol::X`.

use std::any::TypeId;

#[test]
fn types_are_ctx_core_types() {
    fn same<A: ?Sized + 'static, B: ?Sized + 'static>() -> bool {
        TypeId::of::<A>() == TypeId::of::<B>()
    }
    assert!(same::<ctx_smol::Ctx, ctx_core::Ctx>());
    assert!(same::<ctx_smol::Error, ctx_core::Error>());
    assert!(same::<ctx_smol::Cause, ctx_core::Cause>());
    assert!(same::<ctx_smol::CancelHandle, ctx_core::CancelHandle>());
    assert!(same::<ctx_smol::CancelCauseHandle, ctx_core::CancelCauseHandle>());
    assert!(same::<ctx_smol::AfterFunc, ctx_core::AfterFunc>());
    assert!(same::<ctx_smol::Done, ctx_core::Done>());
    assert!(same::<ctx_smol::Sleep, ctx_core::Sleep>());
    assert!(same::<
        ctx_smol::Run<std::future::Ready<()>>,
        ctx_core::Run<std::future::Ready<()>>,
    >());
    assert!(same::<ctx_smol::RunStream<Vec<u8>>, ctx_core::RunStream<Vec<u8>>>());
    assert!(same::<
        ctx_smol::RunTimeout<std::future::Ready<()>>,
        ctx_core::RunTimeout<std::future::Ready<()>>,
    >());
    assert!(same::<ctx_smol::HandleDropped, ctx_core::HandleDropped>());
    assert!(same::<ctx_smol::clock::SystemClock, ctx_core::clock::SystemClock>());
    assert!(same::<dyn ctx_smol::Clock, dyn ctx_core::Clock>());
    assert!(same::<dyn ctx_smol::Context, dyn ctx_core::Context>());
}
