//! [`RequestLog`]: what a server's handlers saw of their request contexts, for tests to watch.

use std::sync::Arc;
use std::time::Instant;

use ctx_core::Ctx;
use tokio::sync::watch;

/// One server's view of its request contexts. See [`RequestLog`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Requests {
    /// Requests whose handler started.
    pub seen: usize,
    /// Request contexts that are done (each handler registers an after-func that counts it).
    pub ended: usize,
    /// The deadline of the last request seen, if it had one.
    pub last_deadline: Option<Instant>,
    /// When the handler of the last request started, on the request ctx's clock.
    pub last_seen_at: Option<Instant>,
    /// The last request ctx seen, to derive from it (or inspect it) after the fact.
    pub last_ctx: Option<Ctx>,
    /// The cause of the last request ctx that ended, as text.
    pub last_cause: Option<String>,
    /// Outgoing calls abandoned before their answer (their future was dropped).
    pub abandoned: usize,
}

/// Records what handlers see of their request contexts: a handler calls
/// [`record`](RequestLog::record) with its ctx, and an after-func on that ctx counts its end
/// and keeps its cause. Clones share one log.
///
/// # Examples
///
/// ```
/// let log = ctx_examples::RequestLog::new();
/// let (ctx, cancel) = ctx_core::Ctx::background().with_cancel();
/// log.record(&ctx);
/// cancel.cancel();
/// assert_eq!(log.get().ended, 1);
/// assert_eq!(log.get().last_cause.as_deref(), Some("context canceled"));
/// ```
#[derive(Debug, Clone)]
pub struct RequestLog {
    inner: Arc<watch::Sender<Requests>>,
}

impl RequestLog {
    /// An empty log.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::RequestLog::new().get().seen, 0);
    /// ```
    pub fn new() -> RequestLog {
        RequestLog {
            inner: Arc::new(watch::Sender::new(Requests::default())),
        }
    }

    /// Notes a request's ctx: its deadline now, its cause when it is done.
    ///
    /// # Examples
    ///
    /// ```
    /// let log = ctx_examples::RequestLog::new();
    /// log.record(&ctx_core::Ctx::background());
    /// assert_eq!(log.get().seen, 1);
    /// ```
    pub fn record(&self, ctx: &Ctx) {
        self.inner.send_modify(|r| {
            r.seen += 1;
            r.last_deadline = ctx.deadline();
            r.last_seen_at = Some(ctx.now());
            r.last_ctx = Some(ctx.clone());
        });
        let inner = self.inner.clone();
        let done = ctx.clone();
        // Runs once, when the request's ctx is done: by a disconnect, the deadline, shutdown,
        // or the end of the response. The AfterFunc handle is dropped: that does not stop it.
        let _after = ctx.after_func(move || {
            let cause = done.cause().map(|c| c.to_string());
            inner.send_modify(|r| {
                r.ended += 1;
                r.last_cause = cause;
            });
        });
    }

    /// Counts an outgoing call dropped before its answer.
    ///
    /// # Examples
    ///
    /// ```
    /// let log = ctx_examples::RequestLog::new();
    /// log.abandoned();
    /// assert_eq!(log.get().abandoned, 1);
    /// ```
    pub fn abandoned(&self) {
        self.inner.send_modify(|r| r.abandoned += 1);
    }

    /// A snapshot.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::RequestLog::new().get().ended, 0);
    /// ```
    pub fn get(&self) -> Requests {
        self.inner.borrow().clone()
    }

    /// A receiver that sees every change; `wait_for` on it to wait for one.
    ///
    /// # Examples
    ///
    /// ```
    /// let log = ctx_examples::RequestLog::new();
    /// let watch = log.watch();
    /// assert_eq!(watch.borrow().seen, 0);
    /// ```
    pub fn watch(&self) -> watch::Receiver<Requests> {
        self.inner.subscribe()
    }
}

impl Default for RequestLog {
    fn default() -> RequestLog {
        RequestLog::new()
    }
}
