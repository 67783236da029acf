//! [`spawn`]: a task on smol's global executor that stops when its context is done.

use std::future::Future;

use ctx_core::{Ctx, Error};
use smol::Task;

/// Spawns `fut` on smol's global executor ([`smol::spawn`]), bound to `ctx`: the task runs
/// [`ctx.run(fut)`](Ctx::run), so it ends with `Ok(output)` if `fut` finishes first, or with
/// `Err(error)` as soon as `ctx` is done (and `fut` is dropped, on the executor). If `ctx` is
/// already done, the task ends with `Err` without polling `fut`.
///
/// The task holds only a [`Done`](ctx_core::Done) of `ctx`, not the context itself. As with
/// every smol [`Task`], dropping the handle cancels the task: `.await` it, or call
/// [`detach`](Task::detach) to let it run in the background (then `ctx` is how you stop it).
///
/// Same as `ctx_tokio::spawn`, on smol.
///
/// # Panics
///
/// Never. The global executor starts its threads on first use (`SMOL_THREADS`, default one),
/// inside or outside of `smol::block_on`.
///
/// # Examples
///
/// ```
/// use ctx_smol::Error;
///
/// smol::block_on(async {
///     let (ctx, cancel) = ctx_smol::background().with_cancel();
///     let quick = ctx_smol::spawn(&ctx, async { 1 + 1 });
///     assert_eq!(quick.await, Ok(2));
///     let stuck = ctx_smol::spawn(&ctx, std::future::pending::<()>());
///     cancel.cancel();
///     assert_eq!(stuck.await, Err(Error::Canceled));
/// });
/// ```
pub fn spawn<F>(ctx: &Ctx, fut: F) -> Task<Result<F::Output, Error>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    smol::spawn(ctx.run(fut))
}
