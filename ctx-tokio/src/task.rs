//! [`spawn`]: a tokio task that stops when its context is done.

use std::future::Future;

use ctx_core::{Ctx, Error};
use tokio::task::JoinHandle;

/// Spawns `fut` on the current tokio runtime, bound to `ctx`: the task runs
/// [`ctx.run(fut)`](Ctx::run), so it ends with `Ok(output)` if `fut` finishes first, or with
/// `Err(error)` as soon as `ctx` is done (and `fut` is dropped, on the runtime).
///
/// The task holds only a [`Done`](ctx_core::Done) of `ctx`, not the context itself.
///
/// # Panics
///
/// When called outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// use ctx_tokio::Error;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (ctx, cancel) = ctx_tokio::background().with_cancel();
/// let quick = ctx_tokio::spawn(&ctx, async { 1 + 1 });
/// assert_eq!(quick.await.unwrap(), Ok(2));
/// let stuck = ctx_tokio::spawn(&ctx, std::future::pending::<()>());
/// cancel.cancel();
/// assert_eq!(stuck.await.unwrap(), Err(Error::Canceled));
/// # });
/// ```
#[track_caller]
pub fn spawn<F>(ctx: &Ctx, fut: F) -> JoinHandle<Result<F::Output, Error>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(ctx.run(fut))
}
