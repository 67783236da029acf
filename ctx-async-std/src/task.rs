//! [`spawn`] and [`spawn_try`]: an async-std task that stops when its context is done.

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

/// [`spawn`] of a fallible future, with its two errors in one: the task's `Err(e)`, or the
/// context's [`Error`] converted by `E::from` (as `?` would), so awaiting the handle gives
/// `Result<T, E>` instead of `Result<Result<T, E>, Error>`.
///
/// For an `E` that keeps the context's error when it converts it (`std::io::Error`:
/// `Interrupted` or `TimedOut` with the `Error` as its source; `anyhow::Error`, which
/// downcasts to it; your own error with a variant for it), nothing is lost, and
/// `e.downcast_ref::<Error>()` (or a match) still tells a timeout from the task's own failure.
///
/// Same as `ctx_tokio::spawn_try`, on async-std.
///
/// # Panics
///
/// Never, as [`spawn`].
///
/// # Examples
///
/// ```
/// use std::io;
/// use ctx_async_std::Error;
///
/// async_std::task::block_on(async {
///     let (ctx, cancel) = ctx_async_std::background().with_cancel();
///     let parsed = ctx_async_std::spawn_try(&ctx, async { "7".parse::<u8>().map_err(io::Error::other) });
///     assert_eq!(parsed.await.unwrap(), 7); // not `Ok(Ok(7))`
///     let stuck = ctx_async_std::spawn_try(&ctx, std::future::pending::<io::Result<()>>());
///     cancel.cancel();
///     let err = stuck.await.unwrap_err();
///     assert_eq!(err.kind(), io::ErrorKind::Interrupted);
///     assert_eq!(err.get_ref().unwrap().downcast_ref::<Error>(), Some(&Error::Canceled));
/// });
/// ```
pub fn spawn_try<F, T, E>(ctx: &Ctx, fut: F) -> JoinHandle<Result<T, E>>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let run = ctx.run(fut);
    async_std::task::spawn(async move { run.await.unwrap_or_else(|e| Err(E::from(e))) })
}
