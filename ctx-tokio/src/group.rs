//! [`Group`]: Go's `errgroup.WithContext` on tokio tasks.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use ctx_core::{CancelCauseHandle, Cause, Ctx};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

impl Group {
    /// A group and its context, a child of `parent`: give the context to the group's tasks.
    /// Go: `errgroup.WithContext`.
    ///
    /// The context is canceled when a task returns `Err(e)` first (with `e` as its cause), when
    /// [`wait`](Group::wait) returns, when the group is dropped, or when `parent` is done.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let request = ctx_tokio::background();
    /// let (group, ctx) = ctx_tokio::Group::new(&request);
    /// group.spawn(async move {
    ///     let _ = ctx; // the task's own clone of the group's context
    ///     Ok::<(), std::io::Error>(())
    /// });
    /// assert!(group.wait().await.is_ok());
    /// # });
    /// ```
    #[doc(alias = "WithContext")]
    #[doc(alias = "errgroup")]
    pub fn new(parent: &Ctx) -> (Group, Ctx) {
        Group::build(parent, None)
    }

    /// Like [`new`](Group::new), but at most `limit` tasks of the group run at once. Go:
    /// `errgroup.SetLimit`. [`spawn`](Group::spawn) never blocks: a task spawned while `limit`
    /// others run is started at once but waits for a free slot before it polls its future
    /// (it still runs when its turn comes, even if the context is done by then, as in Go).
    ///
    /// # Panics
    ///
    /// When `limit` is 0 (no task could ever run).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (group, _ctx) = ctx_tokio::Group::with_limit(&ctx_tokio::background(), 2);
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// for _ in 0..8 {
    ///     let (running, most) = (running.clone(), most.clone());
    ///     group.spawn(async move {
    ///         let now = running.fetch_add(1, Ordering::SeqCst) + 1;
    ///         most.fetch_max(now, Ordering::SeqCst);
    ///         tokio::task::yield_now().await;
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///         Ok::<(), std::io::Error>(())
    ///     });
    /// }
    /// group.wait().await.unwrap();
    /// assert!(most.load(Ordering::SeqCst) <= 2);
    /// # });
    /// ```
    #[doc(alias = "SetLimit")]
    pub fn with_limit(parent: &Ctx, limit: usize) -> (Group, Ctx) {
        assert!(
            limit > 0,
            "ctx-tokio: Group::with_limit(0): no task could ever run"
        );
        Group::build(parent, Some(Arc::new(Semaphore::new(limit))))
    }

    fn build(parent: &Ctx, limit: Option<Arc<Semaphore>>) -> (Group, Ctx) {
        let (ctx, cancel) = parent.with_cancel_cause();
        let group = Group {
            ctx: ctx.clone(),
            shared: Arc::new(Shared {
                cancel,
                first: OnceLock::new(),
            }),
            tasks: Mutex::new(Tasks {
                set: JoinSet::new(),
                panic: None,
            }),
            limit,
        };
        (group, ctx)
    }
}

/// A set of tokio tasks that work for one context: the first task to fail cancels the others,
/// and [`wait`](Group::wait) returns its error. Go: `errgroup.Group` from
/// `errgroup.WithContext`.
///
/// * [`spawn`](Group::spawn) starts a task (`Future<Output = Result<(), E>>`, with `E` any
///   error, `anyhow::Error`, a message or a [`Cause`]); [`spawn_with`](Group::spawn_with)
///   hands the task its own clone of the group's context (`group.spawn_with(|ctx| async move
///   { .. })`).
/// * The first task to return `Err(e)` cancels the group's context with `e` as its cause (the
///   other tasks see it and stop); later errors are dropped.
/// * [`wait`](Group::wait) resolves once every task has ended: `Err(cause)` with the first
///   error (the very `Arc` the context was canceled with), else `Ok(())`. Then the group's
///   context is canceled, as Go does when `Wait` returns.
/// * A task that panics cancels the group's context (cause: "a task of the group
///   panicked"), and `wait` resumes the first panic once every task has ended.
/// * Dropping a `Group` without `wait` cancels its context; its tasks are not aborted (they
///   see the context done and end by themselves, like tasks whose `JoinHandle` is dropped).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_tokio::{Ctx, Error};
///
/// async fn fetch(ctx: &Ctx, shard: u32) -> Result<(), std::io::Error> {
///     if shard == 3 {
///         return Err(std::io::Error::other("shard 3 is down"));
///     }
///     // The others wait for data that never comes, until the group gives up.
///     ctx.run(std::future::pending::<()>()).await.map_err(std::io::Error::from)
/// }
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let (request, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(10));
/// let (group, ctx) = ctx_tokio::Group::new(&request);
/// for shard in 0..5 {
///     let ctx = ctx.clone();
///     group.spawn(async move { fetch(&ctx, shard).await });
/// }
/// let err = group.wait().await.unwrap_err();
/// assert_eq!(err.to_string(), "shard 3 is down");
/// assert_eq!(ctx.err(), Some(Error::Canceled));
/// assert_eq!(request.err(), None); // the request itself goes on
/// # });
/// ```
#[must_use = "dropping a Group cancels its context; call `wait().await`"]
pub struct Group {
    /// The group's context, for [`spawn_with`](Group::spawn_with).
    ctx: Ctx,
    shared: Arc<Shared>,
    tasks: Mutex<Tasks>,
    /// One permit per task that may run at once; `None`: no limit.
    limit: Option<Arc<Semaphore>>,
}

/// What the group and its tasks share.
struct Shared {
    cancel: CancelCauseHandle,
    /// The first error a task returned; set once.
    first: OnceLock<Cause>,
}

struct Tasks {
    set: JoinSet<()>,
    /// The first panic of a task already reaped by `spawn`.
    panic: Option<Box<dyn Any + Send>>,
}

impl Shared {
    fn fail(&self, cause: Cause) {
        // `set` decides the first error once, whatever the races; only the winner cancels.
        if self.first.set(cause.clone()).is_ok() {
            self.cancel.cancel(cause);
        }
    }
}

impl Group {
    /// Starts `fut` as a task of the group, on the current tokio runtime. Go: `Group.Go`.
    ///
    /// `E` is anything a cause can be made of (`Into<Box<dyn Error + Send + Sync>>`): any
    /// error type, `anyhow::Error` (so a task may return `anyhow::Result<()>`), a boxed error,
    /// `&str`, `String`, or a [`Cause`] (which comes back from [`wait`](Group::wait) and the
    /// context's `cause()` as the same `Arc`).
    ///
    /// # Panics
    ///
    /// When called outside a tokio runtime, as `tokio::spawn` does.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use ctx_tokio::Cause;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (group, ctx) = ctx_tokio::Group::new(&ctx_tokio::background());
    /// let why: Cause = Arc::new(std::io::Error::other("bad input"));
    /// let e = why.clone();
    /// group.spawn(async move { Err(e) });
    /// let err = group.wait().await.unwrap_err();
    /// assert!(Arc::ptr_eq(&err, &why));
    /// assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &why));
    /// # });
    /// ```
    #[doc(alias = "Go")]
    #[track_caller]
    pub fn spawn<F, E>(&self, fut: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>> + 'static,
    {
        let shared = self.shared.clone();
        let limit = self.limit.clone();
        let task = async move {
            let _permit = match limit {
                // Never closed: the group owns it and never calls `close`.
                Some(sem) => sem.acquire_owned().await.ok(),
                None => None,
            };
            let watch = PanicWatch(Some(&shared));
            let out = fut.await;
            watch.disarm();
            if let Err(e) = out {
                shared.fail(into_cause(e));
            }
        };
        let mut tasks = self.lock();
        // Reap the tasks that have ended, so that a long-lived group does not keep them all.
        while let Some(res) = tasks.set.try_join_next() {
            tasks.keep_panic(res);
        }
        tasks.set.spawn(task);
    }

    /// [`spawn`](Group::spawn) of the future `f` makes from a clone of the group's context,
    /// so that a task needs no `let ctx = ctx.clone();` of its own. `f` is called here, on the
    /// calling thread; the future it returns runs as a task of the group, as with `spawn`.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_tokio::Error;
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (group, _ctx) = ctx_tokio::Group::new(&ctx_tokio::background());
    /// for shard in 0..3 {
    ///     group.spawn_with(move |ctx| async move {
    ///         if shard == 1 {
    ///             return Err(format!("shard {shard} is down"));
    ///         }
    ///         assert_eq!(ctx.done().await, Error::Canceled); // the others stop
    ///         Ok(())
    ///     });
    /// }
    /// assert_eq!(group.wait().await.unwrap_err().to_string(), "shard 1 is down");
    /// # });
    /// ```
    #[track_caller]
    pub fn spawn_with<M, F, E>(&self, f: M)
    where
        M: FnOnce(Ctx) -> F,
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync + 'static>> + 'static,
    {
        self.spawn(f(self.ctx.clone()));
    }

    /// Waits until every task of the group has ended, then cancels the group's context and
    /// returns the first error (`Err(cause)`, the same `Arc` the context was canceled with),
    /// or `Ok(())`. Go: `Group.Wait`.
    ///
    /// # Panics
    ///
    /// When a task panicked: the first panic is resumed here, after every task has ended.
    ///
    /// # Cancellation safety
    ///
    /// Dropping the `wait` future cancels the group's context, as dropping the group does; the
    /// tasks are not aborted.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let (group, ctx) = ctx_tokio::Group::new(&ctx_tokio::background());
    /// group.spawn(async { Ok::<(), std::fmt::Error>(()) });
    /// assert!(group.wait().await.is_ok());
    /// assert!(ctx.is_done()); // canceled when `wait` returns, as in Go
    /// # });
    /// ```
    #[doc(alias = "Wait")]
    pub async fn wait(self) -> Result<(), Cause> {
        let mut tasks = std::mem::replace(
            &mut *self.lock(),
            Tasks {
                set: JoinSet::new(),
                panic: None,
            },
        );
        while let Some(res) = tasks.set.join_next().await {
            tasks.keep_panic(res);
        }
        self.shared.cancel.cancel_without_cause();
        if let Some(payload) = tasks.panic.take() {
            std::panic::resume_unwind(payload);
        }
        match self.shared.first.get() {
            Some(cause) => Err(cause.clone()),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Tasks> {
        // No user code runs under this lock (spawning only schedules the task).
        self.tasks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tasks {
    fn keep_panic(&mut self, res: Result<(), tokio::task::JoinError>) {
        if let Err(e) = res
            && e.is_panic()
            && self.panic.is_none()
        {
            self.panic = Some(e.into_panic());
        }
    }
}

impl Drop for Tasks {
    /// Detach, not abort (`JoinSet`'s default): the tasks see the context done and end.
    fn drop(&mut self) {
        self.set.detach_all();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.shared.cancel.cancel_without_cause();
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Group");
        match self.tasks.try_lock() {
            Ok(t) => d.field("tasks", &t.set.len()),
            Err(_) => d.field("tasks", &format_args!("<locked>")),
        };
        d.field("failed", &self.shared.first.get().is_some())
            .field("limit", &self.limit.is_some())
            .finish()
    }
}

/// Cancels the group's context if the task's future is dropped before it returned: it
/// panicked (or the runtime shut down). A drop guard, so nothing relies on catching a panic.
struct PanicWatch<'a>(Option<&'a Shared>);

impl PanicWatch<'_> {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for PanicWatch<'_> {
    fn drop(&mut self) {
        if let Some(shared) = self.0 {
            shared.cancel.cancel(TaskPanicked);
        }
    }
}

/// The cause a group's context is canceled with when one of its tasks panics.
#[derive(Debug)]
struct TaskPanicked;

impl fmt::Display for TaskPanicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task of the group panicked")
    }
}

impl std::error::Error for TaskPanicked {}

/// `err` as a [`Cause`]: a `Cause` (also inside a box) is kept as the same `Arc`, anything
/// else is wrapped once (the rule of ctx-core's `cancel`, which the group needs before it
/// cancels: `wait` returns the error even when the parent was canceled first).
fn into_cause<E: Into<Box<dyn std::error::Error + Send + Sync + 'static>>>(err: E) -> Cause {
    let boxed: Box<dyn std::error::Error + Send + Sync + 'static> = err.into();
    match boxed.downcast::<Cause>() {
        Ok(cause) => *cause,
        Err(other) => Cause::from(other),
    }
}
