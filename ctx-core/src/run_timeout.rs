//! [`RunTimeout`], the future of [`Ctx::run_timeout`](crate::Ctx::run_timeout): [`Run`] under a
//! child with a timeout that lives as long as the future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::future::FusedFuture;

use crate::Error;
use crate::done::Run;
use crate::handle::CancelHandle;

pin_project_lite::pin_project! {
    /// The future returned by [`Ctx::run_timeout`](crate::Ctx::run_timeout): `fut`'s output,
    /// or an error if the timeout passes or the context is done first.
    ///
    /// It owns the child context that carries the timeout (and its handle): the child lives
    /// exactly as long as this future, and dropping the future cancels and releases it. Like
    /// [`Run`], it is a [`FusedFuture`], `Send` when `fut` is.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// # futures::executor::block_on(async {
    /// let ctx = ctx_core::Ctx::background();
    /// assert_eq!(ctx.run_timeout(Duration::from_secs(5), async { "ok" }).await, Ok("ok"));
    /// # });
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct RunTimeout<F> {
        #[pin]
        run: Run<F>,
        // The child's only handle; dropped after `run` (fields drop in order), it cancels the
        // child, which nobody else can see.
        _cancel: CancelHandle,
    }
}

impl<F> RunTimeout<F> {
    pub(crate) fn new(run: Run<F>, cancel: CancelHandle) -> RunTimeout<F> {
        RunTimeout { run, _cancel: cancel }
    }
}

impl<F: Future> Future for RunTimeout<F> {
    type Output = Result<F::Output, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().run.poll(cx)
    }
}

/// A `RunTimeout` that has answered reports it, so it can stay in a `select!` loop.
impl<F: Future> FusedFuture for RunTimeout<F> {
    fn is_terminated(&self) -> bool {
        self.run.is_terminated()
    }
}

impl<F> fmt::Debug for RunTimeout<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunTimeout")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}
