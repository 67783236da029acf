//! Shutdown on a signal: [`shutdown`], a context canceled by the first SIGINT or SIGTERM, and
//! [`Signal`], its cause. Go: `signal.NotifyContext`.
//!
//! The signals come through [async-signal](https://docs.rs/async-signal), smol's own crate for
//! them: it registers with signal-hook-registry (so it coexists with other handlers) and is
//! woken by the async-io reactor that already fires this crate's timers. One task per call on
//! smol's global executor waits for the first signal or for the context to be done, whichever
//! comes first, and then ends.
//!
//! # A second signal ends the process
//!
//! Once registered, a signal handler stays installed for the life of the process: without
//! more, a Ctrl-C pressed after the context is done would reach nobody, and a drain that hangs
//! could not be stopped from the keyboard. So on Unix a SIGINT or SIGTERM that arrives while
//! **no** shutdown context is waiting for one (each is done: by a signal, by its handle, or by
//! its parent) ends the process at once with status 128 + the signal's number: 130 for
//! SIGINT, 143 for SIGTERM, as a shell reports a process killed by that signal. The exit runs
//! inside the signal handler (`_exit`, through signal-hook): no destructor, no `atexit` hook,
//! no flush of buffered output, and it works even when every executor thread is blocked. A
//! shutdown context made later listens again: while it waits, a signal cancels it instead.
//! (The count of waiting contexts is this crate's: a program that also waits with
//! `ctx_tokio::signal::shutdown` should make all its shutdown contexts with one of the two.)
//! Make the first one before anything else listens for SIGINT or SIGTERM (async-signal
//! included): the exit must be the first handler of a signal to decide reliably whether a
//! context was still waiting for it.
//!
//! On Windows, async-signal knows Ctrl-C only (as SIGINT), and its console handler keeps
//! taking Ctrl-C once installed: there, the second Ctrl-C does not end the process.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ctx_core::{AfterFunc, CancelCauseHandle, CancelHandle, Ctx, Done};
use smol::stream::Stream;

/// A child of `parent`, canceled with cause [`Signal`] on the first SIGINT or SIGTERM (on
/// Windows: Ctrl-C). Go: `signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)`.
///
/// The context is also done when `parent` is (with its error and cause), or when the handle
/// cancels it (Go's `stop`), with [`Error::Canceled`](crate::Error::Canceled); dropping the
/// last clone of the handle cancels it too. Its `err()` after a signal is `Canceled`, its
/// `cause()` the [`Signal`].
///
/// Listening starts before this function returns: a signal sent right after is not lost. A
/// task on smol's global executor waits for the signal and ends as soon as the context is
/// done, whatever made it done: it holds nothing past that. It may be called inside or
/// outside an executor.
///
/// **A second SIGINT or SIGTERM ends the process** (Unix): once no context made by `shutdown`
/// is waiting for a signal (each one is done, for any reason), the next SIGINT or SIGTERM ends
/// the process at once with status 128 + its number (130 for SIGINT, 143 for SIGTERM), so a
/// drain that hangs can still be stopped from the keyboard. See the [module docs](self).
///
/// # Panics
///
/// If the operating system refuses what listening needs (a pipe, the handler): out of file
/// descriptors, for instance.
///
/// # Examples
///
/// ```no_run
/// use ctx_smol::signal::{Signal, shutdown};
///
/// smol::block_on(async {
///     let (ctx, _stop) = shutdown(&ctx_smol::background());
///     ctx.done().await; // Ctrl-C
///     let cause = ctx.cause().unwrap();
///     assert_eq!(cause.downcast_ref::<Signal>(), Some(&Signal::Interrupt));
///     println!("{cause}, draining"); // "received SIGINT, draining"
/// });
/// ```
///
/// A parent that is done first ends it without any signal:
///
/// ```
/// let (parent, cancel) = ctx_smol::background().with_cancel();
/// let (ctx, _stop) = ctx_smol::signal::shutdown(&parent);
/// cancel.cancel();
/// assert_eq!(smol::block_on(ctx.done()), ctx_smol::Error::Canceled);
/// ```
#[doc(alias = "NotifyContext")]
#[doc(alias = "ctrl_c")]
pub fn shutdown(parent: &Ctx) -> (Ctx, CancelHandle) {
    // Two nodes: the outer one carries the signal as its cause (only a cause handle can give
    // one), the inner one gives the caller a plain `CancelHandle`, as the API promises.
    let (outer, cancel_outer) = parent.with_cancel_cause();
    let (ctx, stop) = outer.with_cancel();
    if ctx.is_done() {
        return (ctx, stop); // the parent is done: there is nothing to wait for
    }
    // The exit first (see `exit::install`), then async-signal's listener, then count this
    // context as waiting. A signal before the count ends the process: nothing waited for it yet.
    Waiting::install();
    let signals = match async_signal::Signals::new(SIGNALS) {
        Ok(signals) => signals,
        Err(e) => panic!("ctx_smol::signal::shutdown: cannot listen for signals: {e}"),
    };
    // The context stops waiting the moment it is done, whatever made it done: an after-func
    // runs inline in the `cancel` of a handle or parent, before that call returns.
    let waiting = Waiting::start();
    let stop_waiting = ctx.after_func(move || drop(waiting));
    smol::spawn(listen(signals, ctx.done(), cancel_outer, stop_waiting)).detach();
    (ctx, stop)
}

/// The signals a shutdown context waits for.
#[cfg(unix)]
const SIGNALS: [async_signal::Signal; 2] = [async_signal::Signal::Int, async_signal::Signal::Term];
#[cfg(not(unix))]
const SIGNALS: [async_signal::Signal; 1] = [async_signal::Signal::Int];

/// What ended the listener's wait.
enum Woke {
    /// The context is done (handle, parent): nothing to do.
    Done,
    Signal(Signal),
    /// The stream failed (it reads a pipe, which does not fail in practice).
    Deaf,
}

/// The listener task: the first signal cancels with it as the cause; the context being done
/// first (handle, parent) ends the task with nothing to do.
async fn listen(
    mut signals: async_signal::Signals,
    mut done: Done,
    cancel: CancelCauseHandle,
    stop_waiting: AfterFunc,
) {
    let woke = poll_fn(|cx| {
        if Pin::new(&mut done).poll(cx).is_ready() {
            return Poll::Ready(Woke::Done);
        }
        poll_signal(&mut signals, cx)
    })
    .await;
    // Stop waiting (`stop` drops the after-func, and the `Waiting` in it) before the context
    // is seen done: whoever sees it done and sends another signal finds the exit armed.
    // `false`: the context was done first, and the after-func has run.
    stop_waiting.stop();
    match woke {
        Woke::Signal(signal) => cancel.cancel(signal),
        // Nothing listens any more: the context stays as it is, for its handle or parent.
        Woke::Deaf => cancel.disarm(),
        Woke::Done => {}
    }
}

fn poll_signal(signals: &mut async_signal::Signals, cx: &mut Context<'_>) -> Poll<Woke> {
    loop {
        let signal = match ready!(Pin::new(&mut *signals).poll_next(cx)) {
            Some(Ok(async_signal::Signal::Int)) => Signal::Interrupt,
            #[cfg(unix)]
            Some(Ok(async_signal::Signal::Term)) => Signal::Terminate,
            Some(Ok(_)) => continue, // not one of ours
            Some(Err(_)) | None => return Poll::Ready(Woke::Deaf),
        };
        return Poll::Ready(Woke::Signal(signal));
    }
}

// ===== Signal =====

/// The cause of a context canceled by [`shutdown`]: which signal came.
///
/// `Display` is `received SIGINT`, `received SIGTERM`.
///
/// # Examples
///
/// ```
/// use ctx_smol::signal::Signal;
/// let why = Signal::Interrupt;
/// assert_eq!(why.to_string(), "received SIGINT");
/// assert_eq!((why.name(), why.number()), ("SIGINT", 2));
/// let cause: ctx_smol::Cause = std::sync::Arc::new(why);
/// assert_eq!(cause.downcast_ref::<Signal>(), Some(&Signal::Interrupt));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// SIGINT: Ctrl-C in a terminal (on Windows, the Ctrl-C console event).
    Interrupt,
    /// SIGTERM: the polite "please stop" of `kill`, systemd, `docker stop` and Kubernetes.
    #[cfg(unix)]
    Terminate,
}

impl Signal {
    /// The signal's name: `"SIGINT"` or `"SIGTERM"`.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_smol::signal::Signal::Interrupt.name(), "SIGINT");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            #[cfg(unix)]
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The signal's number: 2 for SIGINT, 15 for SIGTERM. A second signal ends the process with
    /// status 128 + this number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(128 + ctx_smol::signal::Signal::Interrupt.number(), 130);
    /// ```
    pub const fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            #[cfg(unix)]
            Signal::Terminate => 15,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "received {}", self.name())
    }
}

impl std::error::Error for Signal {}

// ===== Waiting: the exit armed while no shutdown context waits =====

/// One shutdown context waiting for a signal. While at least one exists, a signal goes to the
/// listeners; once the last is dropped, the exit is armed: the next SIGINT or SIGTERM ends
/// the process from inside the signal handler.
struct Waiting;

#[cfg(unix)]
mod exit {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Mutex, Once, PoisonError};

    /// How many shutdown contexts wait for a signal. Guarded by its mutex, which also orders
    /// the stores to `ARMED` (two threads could otherwise store them out of order).
    static WAITING: Mutex<usize> = Mutex::new(0);
    /// `WAITING == 0`, read by the signal handler (an atomic load is async-signal-safe). True
    /// until the first context waits: a signal before that ends the process, as it would
    /// with no handler at all.
    static ARMED: AtomicBool = AtomicBool::new(true);

    /// Installs the exit for SIGINT and SIGTERM, once. Called before async-signal registers its own
    /// handler: signal-hook-registry runs a signal's actions in the order they were
    /// registered, so the exit decides on `ARMED` before the listener can hear the signal and
    /// arm it. In the other order, the listener could cancel and arm between the two actions
    /// of one delivery, and that first signal would end the process.
    pub(super) fn install() {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
                // Fails only for signals that may not be caught (SIGKILL, SIGSEGV, …).
                signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, &ARMED)
                    .expect("ctx-smol: internal error: SIGINT and SIGTERM can be caught");
            }
        });
    }

    /// Adds one waiting context.
    pub(super) fn start_waiting() {
        let mut waiting = WAITING.lock().unwrap_or_else(PoisonError::into_inner);
        *waiting += 1;
        ARMED.store(false, Ordering::SeqCst);
    }

    /// Removes one waiting context; arms the exit if it was the last.
    pub(super) fn stop_waiting() {
        let mut waiting = WAITING.lock().unwrap_or_else(PoisonError::into_inner);
        *waiting -= 1;
        if *waiting == 0 {
            ARMED.store(true, Ordering::SeqCst);
        }
    }
}

impl Waiting {
    /// Installs the exit (once per process); call it before registering the listener.
    fn install() {
        #[cfg(unix)]
        exit::install();
    }

    /// Counts one more context as waiting; call it once the listener is registered.
    fn start() -> Waiting {
        #[cfg(unix)]
        exit::start_waiting();
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        #[cfg(unix)]
        exit::stop_waiting();
    }
}
