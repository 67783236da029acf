//! [`assert_reexports!`](crate::assert_reexports): an adapter's re-exports of ctx-core's API,
//! checked at compile time.

/// Asserts at compile time that the crate (or module) `$adapter` re-exports ctx-core's public
/// API: each of `Ctx`, `Error`, `Cause`, `CancelHandle`, `CancelCauseHandle`, `AfterFunc`,
/// `Done`, `Sleep`, `IdleHandle`, `Run`, `RunStream`, `RunTimeout`, `HandleDropped`,
/// `clock::SystemClock`, `Clock` and `Context` must be the very same item as ctx-core's, so
/// that code can switch between `ctx_core::X` and `adapter::X`. A missing or different item
/// fails the build; there is nothing to run.
///
/// # Examples
///
/// In an adapter crate's `tests/reexports.rs`:
///
/// ```
/// # use ctx_core as ctx_tokio;
/// ctx_testkit::assert_reexports!(ctx_tokio);
/// # fn main() {}
/// ```
///
/// A type of the same name that is not ctx-core's fails to build:
///
/// ```compile_fail,E0277
/// mod adapter {
///     pub use ctx_core::*;
///     pub struct Ctx; // shadows the glob: not ctx-core's `Ctx`
/// }
/// ctx_testkit::assert_reexports!(adapter);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! assert_reexports {
    ($adapter:ident) => {
        const _: () = {
            use $crate::__private::ctx_core as origin;
            trait Same<T: ?Sized> {}
            impl<T: ?Sized> Same<T> for T {}
            /// Compiles only when `A` and `B` are the same type.
            const fn same<A: ?Sized + Same<B>, B: ?Sized>() {}

            same::<$adapter::Ctx, origin::Ctx>();
            same::<$adapter::Error, origin::Error>();
            same::<$adapter::Cause, origin::Cause>();
            same::<$adapter::CancelHandle, origin::CancelHandle>();
            same::<$adapter::CancelCauseHandle, origin::CancelCauseHandle>();
            same::<$adapter::AfterFunc, origin::AfterFunc>();
            same::<$adapter::Done, origin::Done>();
            same::<$adapter::Sleep, origin::Sleep>();
            same::<$adapter::IdleHandle, origin::IdleHandle>();
            same::<$adapter::Run<::std::future::Ready<()>>, origin::Run<::std::future::Ready<()>>>();
            same::<$adapter::RunStream<::std::vec::Vec<u8>>, origin::RunStream<::std::vec::Vec<u8>>>();
            same::<
                $adapter::RunTimeout<::std::future::Ready<()>>,
                origin::RunTimeout<::std::future::Ready<()>>,
            >();
            same::<$adapter::HandleDropped, origin::HandleDropped>();
            same::<$adapter::clock::SystemClock, origin::clock::SystemClock>();
            same::<dyn $adapter::Clock, dyn origin::Clock>();
            same::<dyn $adapter::Context, dyn origin::Context>();
        };
    };
}
