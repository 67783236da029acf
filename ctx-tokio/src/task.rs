//! [`spawn`] and [`spawn_try`]: a tokio task that stops when its context is done, and its
//! [`JoinHandle`].

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

/// [`spawn`] of a fallible future, with its two errors in one: the task's `Err(e)`, or the
/// context's [`Error`] converted by `E::from` (as `?` would), so awaiting the handle gives
/// `Result<T, E>` instead of `Result<Result<T, E>, Error>`.
///
/// For an `E` that keeps the context's error when it converts it (`std::io::Error`:
/// `Interrupted` or `TimedOut` with the `Error` as its source; `anyhow::Error`, which
/// downcasts to it; your own error with a variant for it), nothing is lost, and
/// `e.downcast_ref::<Error>()` (or a match) still tells a timeout from the task's own failure.
/// A task aborted or dropped by the runtime's shutdown is `Err(E::from(Error::Canceled))`; a
/// panic is resumed, as with [`spawn`].
///
/// # Panics
///
/// When called outside a tokio runtime, as `tokio::spawn` does.
///
/// # Examples
///
/// ```
/// use std::io;
/// use ctx_tokio::Error;
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (ctx, cancel) = ctx_tokio::background().with_cancel();
/// let parsed = ctx_tokio::spawn_try(&ctx, async { "7".parse::<u8>().map_err(io::Error::other) });
/// assert_eq!(parsed.await.unwrap(), 7); // not `Ok(Ok(7))`
/// let stuck = ctx_tokio::spawn_try(&ctx, std::future::pending::<io::Result<()>>());
/// cancel.cancel();
/// let err = stuck.await.unwrap_err();
/// assert_eq!(err.kind(), io::ErrorKind::Interrupted);
/// assert_eq!(err.get_ref().unwrap().downcast_ref::<Error>(), Some(&Error::Canceled));
/// # });
/// ```
#[track_caller]
pub fn spawn_try<F, T, E>(ctx: &Ctx, fut: F) -> JoinHandle<T, E>
where
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let run = ctx.run(fut);
    JoinHandle {
        inner: tokio::spawn(async move { run.await.unwrap_or_else(|e| Err(E::from(e))) }),
    }
}

// ===== JoinHandle =====

/// The handle of a task started by [`spawn`] (or [`spawn_try`]): a future of the task's
/// `Result<T, E>`, where `E` is [`Error`] (or the fallible future's own error type).
///
/// * `Ok(output)`: the task's future finished first; `Err(error)`: its context was done first
///   (with `spawn_try`, also: the future failed).
/// * A panic of the task is resumed where the handle is awaited (smol's and async-std's handles
///   do the same).
/// * A task [`abort`](JoinHandle::abort)ed, or dropped by the runtime's shutdown before it
///   ended, is `Err(Error::Canceled)` (`Err(E::from(Error::Canceled))`).
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
pub struct JoinHandle<T, E = Error> {
    inner: tokio::task::JoinHandle<Result<T, E>>,
}

impl<T, E> JoinHandle<T, E> {
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
    pub fn into_inner(self) -> tokio::task::JoinHandle<Result<T, E>> {
        self.inner
    }
}

impl<T, E: From<Error>> Future for JoinHandle<T, E> {
    type Output = Result<T, E>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(match ready!(Pin::new(&mut self.inner).poll(cx)) {
            Ok(out) => out,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Aborted, or dropped by the runtime's shutdown: the task was canceled.
            Err(_) => Err(E::from(Error::Canceled)),
        })
    }
}

impl<T, E> fmt::Debug for JoinHandle<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("finished", &self.inner.is_finished())
            .finish()
    }
}
