//! [`spawn`]: a tokio task that stops when its context is done, and its [`JoinHandle`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ctx_core::{Ctx, Error};

/// Spawns `fut` on the current tokio runtime, bound to `ctx`: the task runs
/// [`ctx.run(fut)`](Ctx::run), so it ends with `Ok(output)` if `fut` finishes first, or with
/// `Err(error)` as soon as `ctx` is done (and `fut` is dropped, on the runtime).
///
/// The task holds only a [`Done`](ctx_core::Done) of `ctx`, not the context itself. Awaiting
/// the [`JoinHandle`] gives that `Result<F::Output, Error>` itself, with no `JoinError` layer
/// around it (as `ctx_smol::spawn` and `ctx_async_std::spawn` do): a panic of the task is
/// resumed in the awaiting task, and a task aborted or stopped by the runtime's shutdown is
/// `Err(Error::Canceled)`. [`JoinHandle::into_inner`] gives tokio's own handle, with its
/// `JoinError`, to code that must tell these apart.
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
/// assert_eq!(quick.await, Ok(2));
/// let stuck = ctx_tokio::spawn(&ctx, std::future::pending::<()>());
/// cancel.cancel();
/// assert_eq!(stuck.await, Err(Error::Canceled));
/// # });
/// ```
#[track_caller]
pub fn spawn<F>(ctx: &Ctx, fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    JoinHandle {
        inner: tokio::spawn(ctx.run(fut)),
    }
}

// ===== JoinHandle =====

/// The handle of a task started by [`spawn`]: a future of the task's
/// `Result<T, `[`Error`]`>`.
///
/// * `Ok(output)`: the task's future finished first; `Err(error)`: its context was done first.
/// * A panic of the task is resumed where the handle is awaited (smol's and async-std's handles
///   do the same).
/// * A task [`abort`](JoinHandle::abort)ed, or dropped by the runtime's shutdown before it
///   ended, is `Err(Error::Canceled)`.
///
/// Dropping the handle detaches the task, as with tokio's: it runs until its future finishes
/// or its context is done. [`into_inner`](JoinHandle::into_inner) gives tokio's handle back.
///
/// # Examples
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let ctx = ctx_tokio::background();
/// let task: ctx_tokio::JoinHandle<u32> = ctx_tokio::spawn(&ctx, async { 7 });
/// assert_eq!(task.await, Ok(7));
/// # });
/// ```
#[must_use = "dropping a JoinHandle detaches the task; `.await` it for its output"]
pub struct JoinHandle<T> {
    inner: tokio::task::JoinHandle<Result<T, Error>>,
}

impl<T> JoinHandle<T> {
    /// Aborts the task (tokio's `JoinHandle::abort`): its future is dropped at its next
    /// yield, and awaiting the handle gives `Err(Error::Canceled)` unless it had ended first.
    /// Canceling its context does the same, for every task of that context.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_tokio::Error;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let task = ctx_tokio::spawn(&ctx_tokio::background(), std::future::pending::<()>());
    /// task.abort();
    /// assert_eq!(task.await, Err(Error::Canceled));
    /// # });
    /// ```
    pub fn abort(&self) {
        self.inner.abort();
    }

    /// Whether the task has ended (its output, or its panic, is ready).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let task = ctx_tokio::spawn(&ctx_tokio::background(), std::future::pending::<()>());
    /// assert!(!task.is_finished());
    /// # });
    /// ```
    pub fn is_finished(&self) -> bool {
        self.inner.is_finished()
    }

    /// Tokio's own handle of the task, whose output keeps the `JoinError` (a panic's payload,
    /// or whether the task was aborted) apart from the task's `Result`.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let task = ctx_tokio::spawn(&ctx_tokio::background(), async { 7 });
    /// let joined: Result<Result<u32, ctx_tokio::Error>, tokio::task::JoinError> =
    ///     task.into_inner().await;
    /// assert_eq!(joined.unwrap(), Ok(7));
    /// # });
    /// ```
    pub fn into_inner(self) -> tokio::task::JoinHandle<Result<T, Error>> {
        self.inner
    }
}

impl<T> Future for JoinHandle<T> {
    type Output = Result<T, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(Pin::new(&mut self.inner).poll(cx)) {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Aborted, or dropped by the runtime's shutdown: the task was canceled.
            Err(_) => Err(Error::Canceled),
        })
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.inner.is_finished())
            .finish()
    }
}
