//! Interop with tokio-util's [`CancellationToken`], both ways, with no task.
//!
//! * Ctx → token ([`CtxExt::to_cancellation_token`]): an after-func on the context cancels the
//!   token (where after-funcs run: [`Ctx::after_func`]).
//! * Token → ctx ([`from_token`]): a [`Context`](ctx_core::Context) of our own (a [`Forward`]
//!   over a `with_cancel` child of the parent, also done when the token is canceled), turned
//!   into a `Ctx` by [`Ctx::wrap`]. Its
//!   `err()` reads the token, so it answers at once, and so does everything derived from it:
//!   whoever asks a derived context asks the token too. Only waiters that nobody polls are
//!   woken by ctx-core's watcher for foreign `done()` futures (one thread for the whole
//!   process, shared by every wrapped context), a moment after the token is canceled. No task
//!   is spawned, and nothing needs a runtime. The bridge holds one child slot in the parent and one waiter in
//!   the token, both released when the context is dropped.
//!
//! Why not a task per bridge (`tokio::spawn` of a `select!` on both): it would need a runtime at
//! creation, cost a task allocation and a scheduler round-trip per bridge, and keep running
//! after the context is dropped until the token or parent fires.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::{Arc, OnceLock};
use std::task::Poll;

use ctx_core::{CancelHandle, Cause, Ctx, Done, Error, Forward};
use tokio_util::sync::CancellationToken;

mod sealed {
    pub trait Sealed {}
    impl Sealed for ctx_core::Ctx {}
}

/// tokio-specific methods on [`Ctx`].
///
/// # Examples
///
/// ```
/// use ctx_tokio::CtxExt;
/// let (ctx, cancel) = ctx_tokio::Ctx::background().with_cancel();
/// let token = ctx.to_cancellation_token();
/// cancel.cancel();
/// assert!(token.is_cancelled());
/// ```
pub trait CtxExt: sealed::Sealed {
    /// A [`CancellationToken`] that is canceled when this context is done (at once if it is
    /// done already; never for a context that cannot be done).
    ///
    /// The token is canceled by an [`after_func`](Ctx::after_func): no task. It runs where
    /// after-funcs run (inline on the thread that cancels; on ctx-core's after-func threads
    /// when a timer fires the deadline), so `token.is_cancelled()` may turn `true` a moment
    /// after `done()` wakes. Canceling the token does not cancel the context; use
    /// [`from_token`] for that direction.
    ///
    /// # The bridge lives as long as the context is open
    ///
    /// Each call registers one after-func, which holds a clone of the token and keeps the
    /// context attached to its parent until the context is done — even after every clone of
    /// the token has been dropped: tokio-util gives no way to notice that (a
    /// `CancellationToken` has no weak reference and no drop hook). So on a context that stays
    /// open for long (a server's shutdown context, say) each call costs memory until that
    /// context is done: call it once per context and clone the token. On a context that can
    /// never be done (`background()`, `without_cancel()`) nothing is registered at all.
    ///
    /// That registration keeps the context attached to its parent (and the token alive) until
    /// the context is done, even after every `Ctx` clone is dropped, as any after-func does. On
    /// a context that can never be done (`background`, `without_cancel`) nothing is registered;
    /// on one that is simply never canceled (its handle disarmed, a long-lived root) it stays
    /// for the life of the process: cancel such a context when you are done with it.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ctx_tokio::CtxExt;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(5));
    /// let token = ctx.to_cancellation_token();
    /// token.cancelled().await; // at the deadline
    /// assert!(ctx.is_done());
    /// # });
    /// ```
    #[doc(alias = "CancellationToken")]
    fn to_cancellation_token(&self) -> CancellationToken;
}

impl CtxExt for Ctx {
    fn to_cancellation_token(&self) -> CancellationToken {
        let token = CancellationToken::new();
        let canceler = token.clone();
        // Dropping the `AfterFunc` handle does not stop it: the token is canceled when `self`
        // is done, even if every clone of `self` is gone by then.
        drop(self.after_func(move || canceler.cancel()));
        token
    }
}

/// A child of `parent` that is also canceled when `token` is, and a handle that cancels the
/// child alone.
///
/// The child is done when the first of these happens: `parent` is done (the child takes its
/// error and cause), `token` is canceled ([`Error::Canceled`]), or `cancel` is called (or its
/// last clone dropped). It sees `parent`'s values, deadline and clock. Neither the parent nor
/// the token is ever canceled by the child.
///
/// Once `token.cancel()` has returned, the child and everything derived from it are done for
/// whoever asks: [`err`](Ctx::err), [`cause`](Ctx::cause), a [`done()`](Ctx::done) poll,
/// [`after_func`](Ctx::after_func), deriving, [`wait_blocking`](Ctx::wait_blocking). Waiters
/// and after-funcs registered before, which nobody asks again, are reached a moment later by
/// ctx-core's watcher thread for foreign `done()` futures (one for the whole process).
/// Dropping the child releases everything it holds in the parent and the token.
///
/// No task is spawned, so no runtime is needed. A task per bridge (`tokio::spawn` of a
/// `select!` on both sides) would need a runtime at creation, cost a task and a scheduler
/// round-trip per bridge, and outlive the dropped context until the token or parent fired.
///
/// In `Display`, the child shows as its type (`ctx_tokio::token::TokenCtx`), as Go shows a
/// context type of its own.
///
/// # Examples
///
/// ```
/// use tokio_util::sync::CancellationToken;
/// use ctx_tokio::Error;
///
/// let token = CancellationToken::new();
/// let (ctx, _cancel) = ctx_tokio::from_token(&ctx_tokio::Ctx::background(), token.clone());
/// assert_eq!(ctx.err(), None);
/// token.cancel();
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert_eq!(ctx.wait_blocking(), Error::Canceled);
/// ```
#[doc(alias = "CancellationToken")]
pub fn from_token(parent: &Ctx, token: CancellationToken) -> (Ctx, CancelHandle) {
    let (inner, cancel) = parent.with_cancel();
    let ctx = Ctx::wrap(TokenCtx {
        inner,
        token,
        outcome: OnceLock::new(),
    });
    (ctx, cancel)
}

/// A `with_cancel` child of the parent, also done when `token` is canceled.
struct TokenCtx {
    /// Done when the parent is, or when the handle given out by `from_token` cancels.
    inner: Ctx,
    token: CancellationToken,
    /// Set once, by the first observer that sees either side done: answers never change.
    outcome: OnceLock<(Error, Cause)>,
}

impl TokenCtx {
    fn outcome(&self) -> Option<&(Error, Cause)> {
        if let Some(done) = self.outcome.get() {
            return Some(done);
        }
        let seen = if let Some(err) = self.inner.err() {
            let cause = self.inner.cause().unwrap_or_else(|| Arc::new(err));
            (err, cause)
        } else if self.token.is_cancelled() {
            (Error::Canceled, Arc::new(Error::Canceled) as Cause)
        } else {
            return None;
        };
        Some(self.outcome.get_or_init(|| seen))
    }
}

/// Deadline and values are the inner `with_cancel` child's; `done()`, `err()` and `cause()` add
/// the token. (A substituted `done()`: `Forward` offers `Ctx::wrap` no callback on the inner
/// context, so the wrap watches this `done()`, token included.)
impl Forward for TokenCtx {
    fn inner(&self) -> &Ctx {
        &self.inner
    }

    fn done(&self) -> Done {
        let mut inner = self.inner.done();
        let token = self.token.clone();
        Done::new(async move {
            let mut cancelled = pin!(token.cancelled_owned());
            poll_fn(|cx| {
                if let Poll::Ready(err) = Pin::new(&mut inner).poll(cx) {
                    return Poll::Ready(err);
                }
                cancelled.as_mut().poll(cx).map(|()| Error::Canceled)
            })
            .await
        })
    }

    fn err(&self) -> Option<Error> {
        self.outcome().map(|(err, _)| *err)
    }

    fn cause(&self) -> Option<Cause> {
        self.outcome().map(|(_, cause)| cause.clone())
    }
}
