//! `ctx_smol::signal::shutdown` with real signals: each test runs this test binary again as a
//! child process (`child`, told what to do by `CTX_SIGNAL_CHILD`), waits for it to print
//! `ready`, sends SIGINT or SIGTERM, and reads what it prints and how it ends. Every wait has a
//! watchdog (`BOUND`): a child that never answers fails the test and is killed.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use ctx_smol::signal::{Signal, shutdown};
use ctx_smol::{Ctx, Error};
use rustix::process::{Pid, Signal as Sig, kill_process};

/// How long a child may take to answer: far above what it needs, so a slow machine passes.
const BOUND: Duration = Duration::from_secs(30);
/// How long a child's own waits last before it gives up: longer than `BOUND`, so a child that
/// hangs is still running when the parent's watchdog fires.
const CHILD_LIMIT: Duration = Duration::from_secs(60);
const SCENARIO: &str = "CTX_SIGNAL_CHILD";
/// What the child prints before each of its lines (libtest prints its own lines too).
const PREFIX: &str = "child: ";

// ===== the parent's side =====

struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

/// Starts `scenario` in a child process and waits for its `ready`.
fn start(scenario: &str) -> Running {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(SCENARIO, scenario)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest's "test child ... " may stand before the first line.
            if let Some((_, line)) = line.split_once(PREFIX)
                && tx.send(line.to_owned()).is_err()
            {
                break;
            }
        }
    });
    let mut running = Running {
        child,
        lines,
        seen: Vec::new(),
    };
    running.expect("ready");
    running
}

impl Running {
    /// Waits until the child prints `want`.
    fn expect(&mut self, want: &str) {
        let until = Instant::now() + BOUND;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line == want => return,
                Ok(line) => self.seen.push(line),
                Err(_) => break,
            }
        }
        let _ = self.child.kill();
        panic!("the child never printed {want:?}; it printed {:?}", self.seen);
    }

    fn send(&self, signal: Sig) {
        kill_process(Pid::from_child(&self.child), signal).unwrap();
    }

    /// Waits for the child to end.
    fn status(&mut self) -> ExitStatus {
        let until = Instant::now() + BOUND;
        while Instant::now() < until {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        panic!(
            "the child did not end within {BOUND:?}; it printed {:?}",
            self.seen
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ===== the child's side =====

/// Prints a line the parent reads.
fn say(line: impl std::fmt::Display) {
    println!("{PREFIX}{line}");
}

/// Waits for `ctx` and prints how it ended.
async fn report(ctx: &Ctx) {
    let done = async { Some(ctx.done().await) };
    let limit = async {
        smol::Timer::after(CHILD_LIMIT).await;
        None
    };
    match smol::future::or(done, limit).await {
        Some(err) => say(format_args!("err: {err}")),
        None => say("no signal came"),
    }
    let cause = ctx.cause().unwrap();
    say(format_args!("cause: {cause}"));
    if let Some(signal) = cause.downcast_ref::<Signal>() {
        say(format_args!("signal: {signal:?} {}", signal.number()));
    }
}

/// A drain that never ends, and blocks the `block_on` thread while it hangs: only the second
/// signal can end the process.
fn stuck_drain() {
    say("draining");
    std::thread::sleep(CHILD_LIMIT);
    say("drain ended");
}

/// The child process: does nothing in a normal test run.
#[test]
fn child() {
    let Ok(scenario) = std::env::var(SCENARIO) else {
        return;
    };
    smol::block_on(async {
        let root = ctx_smol::background();
        match scenario.as_str() {
            // Waits for the signal, then ends by itself.
            "wait" => {
                let (ctx, _stop) = shutdown(&root);
                say("ready");
                report(&ctx).await;
            }
            // Waits for the signal, then hangs in its drain.
            "stuck" => {
                let (ctx, _stop) = shutdown(&root);
                say("ready");
                report(&ctx).await;
                stuck_drain();
            }
            // Stops listening (Go's `stop()`) and hangs: a signal must still end it.
            "stopped" => {
                let (_ctx, stop) = shutdown(&root);
                stop.cancel();
                say("ready");
                stuck_drain();
            }
            // A first shutdown context is stopped, a second one listens: the signal goes to
            // the second, and the process goes on.
            "again" => {
                let (first, stop) = shutdown(&root);
                drop(stop);
                assert!(first.is_done());
                let (second, _stop) = shutdown(&root);
                say("ready");
                report(&second).await;
            }
            other => panic!("unknown scenario {other:?}"),
        }
    });
    say("exit");
}

// ===== the tests =====

#[test]
fn sigint_cancels_the_context_with_signal_as_its_cause() {
    let mut child = start("wait");
    child.send(Sig::INT);
    child.expect("err: context canceled");
    child.expect("cause: received SIGINT");
    child.expect("signal: Interrupt 2");
    child.expect("exit");
    assert_eq!(child.status().code(), Some(0));
}

#[test]
fn sigterm_cancels_the_context_with_signal_as_its_cause() {
    let mut child = start("wait");
    child.send(Sig::TERM);
    child.expect("cause: received SIGTERM");
    child.expect("signal: Terminate 15");
    assert_eq!(child.status().code(), Some(0));
}

#[test]
fn a_second_sigint_ends_a_stuck_drain_with_status_130() {
    let mut child = start("stuck");
    child.send(Sig::INT);
    child.expect("cause: received SIGINT");
    child.expect("draining");
    child.send(Sig::INT);
    assert_eq!(child.status().code(), Some(130));
}

#[test]
fn a_second_sigterm_ends_a_stuck_drain_with_status_143() {
    let mut child = start("stuck");
    child.send(Sig::TERM);
    child.expect("cause: received SIGTERM");
    child.expect("draining");
    child.send(Sig::TERM);
    assert_eq!(child.status().code(), Some(143));
}

#[test]
fn a_signal_after_stop_ends_the_process_instead_of_vanishing() {
    let mut child = start("stopped");
    child.expect("draining");
    child.send(Sig::INT);
    assert_eq!(child.status().code(), Some(130));
}

#[test]
fn a_signal_goes_to_a_listening_context_even_after_an_earlier_one_is_done() {
    let mut child = start("again");
    child.send(Sig::INT);
    child.expect("cause: received SIGINT");
    child.expect("exit");
    assert_eq!(child.status().code(), Some(0));
}

// ===== in this process: no signal is sent =====

#[test]
fn the_parent_ends_it_with_its_own_error_and_cause() {
    let (parent, cancel) = ctx_smol::background().with_cancel_cause();
    let (ctx, _stop) = shutdown(&parent);
    assert_eq!(ctx.err(), None);
    cancel.cancel(std::fmt::Error);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(ctx.cause().unwrap().is::<std::fmt::Error>());
}

#[test]
fn the_handle_cancels_it_without_a_signal() {
    let (ctx, stop) = shutdown(&ctx_smol::background());
    stop.cancel();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(!ctx.cause().unwrap().is::<Signal>());
}

#[test]
fn a_done_parent_gives_a_done_context() {
    let (parent, cancel) = ctx_smol::background().with_cancel();
    cancel.cancel();
    let (ctx, _stop) = shutdown(&parent);
    assert_eq!(ctx.err(), Some(Error::Canceled));
}

/// The listener task holds the parent (through the context it cancels): once the context is
/// done, the task ends and lets go of it.
#[test]
fn the_listener_ends_and_lets_go_when_the_context_is_done() {
    let value = Arc::new(());
    let parent = ctx_smol::background().with_value(value.clone());
    let (ctx, stop) = shutdown(&parent);
    assert!(Arc::strong_count(&value) > 1);
    drop((parent, ctx, stop));
    let until = Instant::now() + BOUND;
    while Arc::strong_count(&value) > 1 {
        assert!(Instant::now() < until, "the listener task still holds the parent");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn signal_is_an_error_that_names_the_signal() {
    fn is_cause<E: std::error::Error + Send + Sync + 'static>(_: &E) {}
    is_cause(&Signal::Interrupt);
    assert_eq!(Signal::Interrupt.to_string(), "received SIGINT");
    assert_eq!(Signal::Terminate.to_string(), "received SIGTERM");
    assert_eq!(
        (Signal::Terminate.name(), Signal::Terminate.number()),
        ("SIGTERM", 15)
    );
    assert_eq!(format!("{:?}", Signal::Terminate), "Terminate");
}
