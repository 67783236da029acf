//! Shutdown on a signal: [`shutdown`], a context canceled by the first SIGINT or SIGTERM, and
//! [`Signal`], its cause. Go: `signal.NotifyContext`.
//!
//! The context is a child of the one you give; one tokio task per call waits for the first
//! signal or for the context to be done, whichever comes first, and then ends.
//!
//! # A second signal ends the process
//!
//! Once a program has called [`shutdown`], tokio's handler for SIGINT and SIGTERM stays
//! installed for the life of the process: without more, a Ctrl-C pressed after the context is
//! done would reach nobody, and a drain that hangs could not be stopped from the keyboard. So
//! a SIGINT or SIGTERM that arrives while **no** shutdown context is waiting for one (each is
//! done: by a signal, by its handle, or by its parent) ends the process at once with status
//! 128 + the signal's number: 130 for SIGINT, 143 for SIGTERM, as a shell reports a process
//! killed by that signal. The exit runs inside the signal handler (`_exit`, through
//! signal-hook): no destructor, no `atexit` hook, no flush of buffered output, and it works
//! even when every runtime thread is blocked. A shutdown context made later listens again:
//! while it waits, a signal cancels it instead. (The count of waiting contexts is this
//! crate's: a program that also waits with `ctx_smol::signal::shutdown` should make all its
//! shutdown contexts with one of the two.) Make the first one before anything else listens
//! for SIGINT or SIGTERM (`tokio::signal` included): the exit must be the first handler of a
//! signal to decide reliably whether a context was still waiting for it.
//!
//! On Windows the listener waits for Ctrl-C and Ctrl-Break; once no shutdown context waits,
//! tokio passes the next event on to the system's default handler, which ends the process.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context, Poll};

use ctx_core::{AfterFunc, CancelCauseHandle, CancelHandle, Ctx, Done};

/// A child of `parent`, canceled with cause [`Signal`] on the first SIGINT or SIGTERM (on
/// Windows: Ctrl-C or Ctrl-Break). Go: `signal.NotifyContext(parent, os.Interrupt,
/// syscall.SIGTERM)`.
///
/// The context is also done when `parent` is (with its error and cause), or when the handle
/// cancels it (Go's `stop`), with [`Error::Canceled`](crate::Error::Canceled); dropping the
/// last clone of the handle cancels it too. Its `err()` after a signal is `Canceled`, its
/// `cause()` the [`Signal`].
///
/// Listening starts before this function returns: a signal sent right after is not lost. A
/// tokio task waits for the signal and ends as soon as the context is done, whatever made it
/// done: it holds nothing past that. If the runtime shuts down first, the task goes with it
/// and the context is canceled.
///
/// **A second SIGINT or SIGTERM ends the process**: once no context made by `shutdown` is
/// waiting for a signal (each one is done, for any reason), the next SIGINT or SIGTERM ends
/// the process at once with status 128 + its number (130 for SIGINT, 143 for SIGTERM), so a
/// drain that hangs can still be stopped from the keyboard. See the [module docs](self).
///
/// # Panics
///
/// Outside a tokio runtime, or in one built without its IO driver (`enable_io`, on in
/// `#[tokio::main]`): tokio's signal driver needs it. Also if the operating system refuses to
/// install the signal handler (it does not, for these signals).
///
/// # Examples
///
/// ```no_run
/// use ctx_tokio::signal::{Signal, shutdown};
///
/// #[tokio::main]
/// async fn main() {
///     let (ctx, _stop) = shutdown(&ctx_tokio::background());
///     ctx.done().await; // Ctrl-C
///     let cause = ctx.cause().unwrap();
///     assert_eq!(cause.downcast_ref::<Signal>(), Some(&Signal::Interrupt));
///     println!("{cause}, draining"); // "received SIGINT, draining"
/// }
/// ```
///
/// A parent that is done first ends it without any signal:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let (parent, cancel) = ctx_tokio::background().with_cancel();
/// let (ctx, _stop) = ctx_tokio::signal::shutdown(&parent);
/// cancel.cancel();
/// assert_eq!(ctx.done().await, ctx_tokio::Error::Canceled);
/// # }
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
    if tokio::runtime::Handle::try_current().is_err() {
        panic!("ctx_tokio::signal::shutdown must be called inside a tokio runtime");
    }
    // The exit first (see `exit::install`), then tokio's listener, then count this context as
    // waiting. A signal before the count ends the process: nothing waited for it yet.
    Waiting::install();
    let signals = match Signals::new() {
        Ok(signals) => signals,
        Err(e) => panic!("ctx_tokio::signal::shutdown: cannot listen for signals: {e}"),
    };
    // The context stops waiting the moment it is done, whatever made it done: an after-func
    // runs inline in the `cancel` of a handle or parent, before that call returns.
    let waiting = Waiting::start();
    let stop_waiting = ctx.after_func(move || drop(waiting));
    tokio::spawn(listen(signals, ctx.done(), cancel_outer, stop_waiting));
    (ctx, stop)
}

/// The listener task: the first signal cancels with it as the cause; the context being done
/// first (handle, parent) ends the task with nothing to do.
async fn listen(mut signals: Signals, mut done: Done, cancel: CancelCauseHandle, stop_waiting: AfterFunc) {
    let got = poll_fn(|cx| {
        if Pin::new(&mut done).poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        signals.poll_recv(cx)
    })
    .await;
    if let Some(signal) = got {
        // Stop waiting (`stop` drops the after-func, and the `Waiting` in it) before the
        // context is seen done: whoever sees it done and sends another signal finds the exit
        // armed. `false`: the context was done first, and the after-func has run.
        stop_waiting.stop();
        cancel.cancel(signal);
    }
}

// ===== Signal =====

/// The cause of a context canceled by [`shutdown`]: which signal came.
///
/// `Display` is `received SIGINT`, `received SIGTERM` (Windows: `received SIGINT` for Ctrl-C,
/// `received SIGBREAK` for Ctrl-Break, the C runtime's names).
///
/// # Examples
///
/// ```
/// use ctx_tokio::signal::Signal;
/// let why = Signal::Interrupt;
/// assert_eq!(why.to_string(), "received SIGINT");
/// assert_eq!((why.name(), why.number()), ("SIGINT", 2));
/// let cause: ctx_tokio::Cause = std::sync::Arc::new(why);
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
    /// Ctrl-Break, a console event of Windows only.
    #[cfg(windows)]
    CtrlBreak,
}

impl Signal {
    /// The signal's name: `"SIGINT"`, `"SIGTERM"` (`"SIGBREAK"` for Ctrl-Break on Windows).
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_tokio::signal::Signal::Interrupt.name(), "SIGINT");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            #[cfg(unix)]
            Signal::Terminate => "SIGTERM",
            #[cfg(windows)]
            Signal::CtrlBreak => "SIGBREAK",
        }
    }

    /// The signal's number: 2 for SIGINT, 15 for SIGTERM (21 for SIGBREAK, the C runtime's on
    /// Windows). A second signal ends the process with status 128 + this number.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(128 + ctx_tokio::signal::Signal::Interrupt.number(), 130);
    /// ```
    pub const fn number(self) -> i32 {
        match self {
            Signal::Interrupt => 2,
            #[cfg(unix)]
            Signal::Terminate => 15,
            #[cfg(windows)]
            Signal::CtrlBreak => 21,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "received {}", self.name())
    }
}

impl std::error::Error for Signal {}

// ===== Signals: tokio's streams, one per signal =====

/// The signals a shutdown context waits for, registered with tokio's driver.
#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// `Some(signal)` when one came; `None` if tokio's driver is gone (the runtime shut down).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        let streams = [
            (Signal::Interrupt, &mut self.interrupt),
            (Signal::Terminate, &mut self.terminate),
        ];
        for (signal, stream) in streams {
            if let Poll::Ready(got) = stream.poll_recv(cx) {
                return Poll::Ready(got.map(|()| signal));
            }
        }
        Poll::Pending
    }
}

#[cfg(windows)]
struct Signals {
    ctrl_c: tokio::signal::windows::CtrlC,
    ctrl_break: tokio::signal::windows::CtrlBreak,
}

#[cfg(windows)]
impl Signals {
    fn new() -> std::io::Result<Signals> {
        Ok(Signals {
            ctrl_c: tokio::signal::windows::ctrl_c()?,
            ctrl_break: tokio::signal::windows::ctrl_break()?,
        })
    }

    /// `Some(signal)` when one came; `None` if tokio's driver is gone (the runtime shut down).
    fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<Signal>> {
        if let Poll::Ready(got) = self.ctrl_c.poll_recv(cx) {
            return Poll::Ready(got.map(|()| Signal::Interrupt));
        }
        if let Poll::Ready(got) = self.ctrl_break.poll_recv(cx) {
            return Poll::Ready(got.map(|()| Signal::CtrlBreak));
        }
        Poll::Pending
    }
}

// ===== Waiting: the exit armed while no shutdown context waits =====

/// One shutdown context waiting for a signal. While at least one exists, a signal goes to the
/// listeners; once the last is dropped, the exit is armed: the next SIGINT or SIGTERM ends
/// the process from inside the signal handler. (On Windows there is nothing to count: tokio
/// itself hands a console event that no listener takes to the next handler, and the default
/// one ends the process.)
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

    /// Installs the exit for SIGINT and SIGTERM, once. Called before tokio registers its own
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
                    .expect("ctx-tokio: internal error: SIGINT and SIGTERM can be caught");
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
