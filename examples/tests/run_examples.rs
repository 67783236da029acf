//! Runs the example programs that `cargo test` has just built and checks what they print, so
//! a demo that hangs, panics or stops telling its story fails the test suite.
//!
//! `cargo test` builds the examples of a package before it runs any test; a filtered run that
//! skips them (`cargo test --test run_examples`) fails with a message saying so.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Every example finishes well within this; it bounds the wait if one hangs.
const LIMIT: Duration = Duration::from_secs(20);

/// `target/<profile>/examples/<name>`, next to this test's `target/<profile>/deps/`.
fn example_path(name: &str) -> PathBuf {
    let test_exe = std::env::current_exe().expect("the test's own path");
    let profile_dir = test_exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("the test runs from target/<profile>/deps");
    profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
}

/// Runs an example to completion (at most `LIMIT`) and returns its stdout.
fn run(name: &str, envs: &[(&str, &str)]) -> String {
    let path = example_path(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test -p ctx-examples` (which builds the examples) or `cargo build -p ctx-examples --examples` first",
        path.display()
    );
    let mut child = Command::new(&path)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the example");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("poll the example") {
            let output = child.wait_with_output().expect("collect the example's output");
            let stdout = String::from_utf8(output.stdout).expect("UTF-8 output");
            assert!(
                status.success(),
                "{name} failed with {status}; it printed:\n{stdout}"
            );
            return stdout;
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            panic!("{name} did not finish within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_demo_stops_the_slow_worker_at_the_deadline_and_every_worker_on_cancel() {
    let out = run("demo", &[]);
    assert!(
        out.contains(r#"#1 search     stopped"#) && out.contains("request 1: 300 ms budget spent"),
        "{out}"
    );
    assert_eq!(
        out.matches(r#"cause="client closed the connection""#).count(),
        4,
        "{out}"
    );
    assert!(out.contains("server        still serving: err=None"), "{out}");
}

#[test]
fn the_blocking_example_stops_every_thread() {
    let out = run("blocking", &[]);
    assert_eq!(out.matches("stopping after").count(), 3, "{out}");
    assert!(
        out.contains("runs on \"supervisor\", the canceling thread"),
        "{out}"
    );
}

#[test]
fn the_smol_example_cuts_the_slow_worker_off() {
    let out = run("smol", &[]);
    assert!(out.contains(r#"fast: Ok("fast")"#), "{out}");
    assert!(out.contains("slow: Err(DeadlineExceeded)"), "{out}");
}

#[test]
fn the_http_server_example_starts_and_shuts_down_by_itself() {
    let out = run("http_server", &[("PORT", "0"), ("SERVE_FOR_MS", "50")]);
    assert!(out.starts_with("listening on http://127.0.0.1:"), "{out}");
    assert!(out.contains("shutting down"), "{out}");
}

#[test]
fn the_axum_gateway_example_cuts_both_hops_off_at_the_deadline() {
    let out = run("axum_gateway", &[]);
    assert!(
        out.contains("10 ms of work, 300 ms budget: 200 OK backend answered after 10 ms"),
        "{out}"
    );
    assert!(
        out.contains("5000 ms of work, 300 ms budget: client gave up: context deadline exceeded")
            || out.contains("5000 ms of work, 300 ms budget: 504"),
        "{out}"
    );
    assert!(out.contains("each with a deadline: true"), "{out}");
    assert!(out.contains("shut down"), "{out}");
}

#[test]
fn the_tonic_example_ends_the_slow_call_as_deadline_exceeded() {
    let out = run("tonic_health", &[]);
    assert!(out.contains(r#"check(""): status 1"#), "{out}");
    assert!(out.contains(r#"check("slow"): DeadlineExceeded"#), "{out}");
    assert!(out.contains("the handler saw a deadline: true"), "{out}");
    assert!(out.contains("shut down"), "{out}");
}

#[test]
fn the_drain_example_lets_the_fast_request_finish_and_stops_the_slow_one_at_the_grace() {
    let out = run("drain", &[]);
    assert!(out.contains("a new connection after shutdown: refused"), "{out}");
    assert!(
        out.contains(r#"fast (200 ms of work): 200 OK "worked 200 ms""#),
        "{out}"
    );
    assert!(
        out.contains(r#"slow (10 s of work): 503 Service Unavailable "stopped: deploy v2""#),
        "{out}"
    );
    assert!(out.contains("; exiting"), "{out}");
}
