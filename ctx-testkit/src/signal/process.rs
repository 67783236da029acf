//! The parent's side of the signal checks: a child process running this test binary again,
//! its lines, its signals and its exit, each wait under a watchdog.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

pub(crate) use rustix::process::Signal as Sig;
use rustix::process::{Pid, kill_process};

use super::{BOUND, PREFIX, SCENARIO};

/// A child process playing a scenario, and what it printed so far.
pub(crate) struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    /// Starts `scenario` in a child process and waits for its `ready`.
    pub(crate) fn start(scenario: &str) -> Running {
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

    /// Waits until the child prints `want`.
    #[track_caller]
    pub(crate) fn expect(&mut self, want: &str) {
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

    /// Sends `signal` to the child.
    pub(crate) fn send(&self, signal: Sig) {
        kill_process(Pid::from_child(&self.child), signal).unwrap();
    }

    /// Waits for the child to end.
    #[track_caller]
    pub(crate) fn status(&mut self) -> ExitStatus {
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
