//! [`spawn`]: an async-std task that stops when its context is done.

use std::future::Future;

use async_std::task::JoinHandle;
use ctx_core::{Ctx, Error};

/// Spawns `fut` as an async-std task ([`async_std::task::spawn`]), bound to `ctx`: the task
/// runs [`ctx.run(fut)`](Ctx::run), so it ends with `Ok(output)` if `fut` finishes first, or
/// with `Err(error)` as soon as `ctx` is done (and `fut` is dropped, on the executor). If `ctx`
/// is already done, the task ends with `Err` without polling `fut`.
///
/// The task holds only a [`Done`](ctx_core::Done) of `ctx`, not the context itself. As with
/// `async_std::task::spawn`, dropping the [`JoinHandle`] detaches the task: it keeps running
/// until `fut` finishes or `ctx` is done.
///
/// Same as `ctx_tokio::spawn`, on async-std.
///
/// # Panics
///
/// Never. async-std starts its executor threads on first use, inside or outside of
/// `async_std::task::block_on`.
///
/// # Examples
///
/// ```
/// use ctx_async_std::Error;
///
/// async_std::task::block_on(async {
///     let (ctx, cancel) = ctx_async_std::background().with_cancel();
///     let quick = ctx_async_std::spawn(&ctx, async { 1 + 1 });
///     assert_eq!(quick.await, Ok(2));
///     let stuck = ctx_async_std::spawn(&ctx, std::future::pending::<()>());
///     cancel.cancel();
///     assert_eq!(stuck.await, Err(Error::Canceled));
/// });
/// ```
pub fn spawn<F>(ctx: &Ctx, fut: F) -> JoinHandle<Result<F::Output, Error>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    async_std::task::spawn(ctx.run(fut))
}
