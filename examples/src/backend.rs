//! [`Backend`], a simulated slow downstream service, and [`Stats`], what it saw.

use std::sync::Arc;
use std::time::Duration;

use ctx_core::{Ctx, Error};
use tokio::sync::{oneshot, watch};

// ===== Stats =====

/// What the backend has seen so far. Read it with [`Backend::stats`]; wait for a change with
/// [`Backend::watch`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Calls that started work.
    pub started: usize,
    /// Calls that finished their work.
    pub finished: usize,
    /// Calls stopped (or refused before they started) because their context was canceled.
    pub canceled: usize,
    /// Calls stopped (or refused) because their context's deadline passed.
    pub deadline_exceeded: usize,
    /// The cause of the last call that was stopped, as text.
    pub last_cause: Option<String>,
}

// ===== Backend =====

/// A simulated slow downstream service (a database, another RPC server). Each call runs in a
/// task of its own, as a connection pool's worker would, and honours the caller's context: it
/// stops as soon as the context is done and records why.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_core::{Ctx, Error};
/// use ctx_examples::Backend;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let backend = Backend::new();
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// assert!(backend.query(&ctx, Duration::ZERO).await.is_ok());
/// cancel.cancel();
/// assert_eq!(backend.query(&ctx, Duration::from_secs(60)).await, Err(Error::Canceled));
/// assert_eq!(backend.stats().canceled, 1);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Backend {
    stats: Arc<watch::Sender<Stats>>,
}

impl Backend {
    /// A backend with all counters at zero.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::Backend::new().stats().started, 0);
    /// ```
    pub fn new() -> Backend {
        Backend {
            stats: Arc::new(watch::Sender::new(Stats::default())),
        }
    }

    /// Does `work` worth of waiting, unless `ctx` is done first. Returns a short report, or
    /// the context's error. The work runs in a spawned task that keeps a clone of `ctx`, so it
    /// stops on cancellation even if the caller's future is dropped. Must be called inside a
    /// tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let backend = ctx_examples::Backend::new();
    /// let answer = backend.query(&ctx_core::Ctx::background(), std::time::Duration::ZERO).await;
    /// assert_eq!(answer.unwrap(), "backend answered after 0 ms");
    /// # }
    /// ```
    pub async fn query(&self, ctx: &Ctx, work: Duration) -> Result<String, Error> {
        let (tx, rx) = oneshot::channel();
        let ctx = ctx.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let outcome = match ctx.err() {
                // Never start work for a request that is gone.
                Some(err) => Err(err),
                None => {
                    stats.send_modify(|s| s.started += 1);
                    tokio::select! {
                        () = tokio::time::sleep(work) => Ok(format!("backend answered after {} ms", work.as_millis())),
                        err = ctx.done() => Err(err),
                    }
                }
            };
            stats.send_modify(|s| match outcome {
                Ok(_) => s.finished += 1,
                Err(err) => {
                    match err {
                        Error::Canceled => s.canceled += 1,
                        Error::DeadlineExceeded => s.deadline_exceeded += 1,
                    }
                    s.last_cause = ctx.cause().map(|c| c.to_string());
                }
            });
            let _ = tx.send(outcome);
        });
        // The task always answers; a dropped sender would mean it panicked.
        rx.await.unwrap_or(Err(Error::Canceled))
    }

    /// A snapshot of the counters.
    ///
    /// # Examples
    ///
    /// ```
    /// let stats = ctx_examples::Backend::new().stats();
    /// assert_eq!((stats.finished, stats.canceled), (0, 0));
    /// ```
    pub fn stats(&self) -> Stats {
        self.stats.borrow().clone()
    }

    /// A receiver that sees every change of the counters; `wait_for` on it to wait for one.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let backend = ctx_examples::Backend::new();
    /// let mut watch = backend.watch();
    /// let _ = backend.query(&ctx_core::Ctx::background(), std::time::Duration::ZERO).await;
    /// watch.wait_for(|s| s.finished == 1).await.unwrap();
    /// # }
    /// ```
    pub fn watch(&self) -> watch::Receiver<Stats> {
        self.stats.subscribe()
    }
}

impl Default for Backend {
    fn default() -> Backend {
        Backend::new()
    }
}
