//! The demo: a small service on tokio, seen through its contexts.
//!
//! Request 1 has a 300 ms deadline and fans out to three workers; one of them is slow, the
//! deadline passes, and it stops with the request's cause. Request 2 has no deadline, but its
//! client hangs up after 150 ms: every worker stops, and each one can say why.
//!
//! Run it with `cargo run -p ctx-examples --example demo`. It finishes in about half a second.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ctx_core::{Cause, Ctx, Error};

/// The program's start, for the timeline.
static START: OnceLock<Instant> = OnceLock::new();

/// Prints one line of the timeline: elapsed milliseconds, who, what.
fn log(who: &str, what: impl std::fmt::Display) {
    let ms = START.get_or_init(Instant::now).elapsed().as_millis();
    println!("{ms:>6} ms  {who:<13} {what}");
}

/// The name of the thread this runs on, to show where after-funcs run.
fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("unnamed thread")
        .to_owned()
}

/// "err=…, cause=…" for a context that is done.
fn why(ctx: &Ctx) -> String {
    let err = ctx.err().map_or_else(|| "none".to_owned(), |e| e.to_string());
    let cause = ctx.cause().map_or_else(|| "none".to_owned(), |c| c.to_string());
    format!("err=\"{err}\" cause=\"{cause}\"")
}

/// The request's id, carried as a context value.
#[derive(Debug, Clone, Copy)]
struct RequestId(u32);

/// A worker: does `work` worth of steps of 50 ms, checking the context between steps, and
/// races each step against the context so it stops at once, not at the next step.
async fn worker(ctx: Ctx, name: &'static str, work: Duration) -> Result<(), Error> {
    let id = ctx.value::<RequestId>().map_or(0, |r| r.0);
    let who = format!("#{id} {name}");
    log(&who, format_args!("started, needs {} ms", work.as_millis()));
    let step = Duration::from_millis(50);
    let mut left = work;
    while !left.is_zero() {
        let this = left.min(step);
        if let Err(err) = ctx.run(tokio::time::sleep(this)).await {
            log(
                &who,
                format_args!("stopped with {} ms of work left: {}", left.as_millis(), why(&ctx)),
            );
            return Err(err);
        }
        left -= this;
    }
    log(&who, "finished");
    Ok(())
}

/// Fans out to the workers under `ctx` and waits for all of them (at most 5 s: the demo must
/// never hang, whatever happens).
async fn fan_out(ctx: &Ctx, workers: &[(&'static str, Duration)]) -> Vec<Result<(), Error>> {
    let tasks: Vec<_> = workers
        .iter()
        .map(|&(name, work)| tokio::spawn(worker(ctx.clone(), name, work)))
        .collect();
    let all = async {
        let mut results = Vec::with_capacity(tasks.len());
        for task in tasks {
            results.push(task.await.expect("a worker panicked"));
        }
        results
    };
    tokio::time::timeout(Duration::from_secs(5), all)
        .await
        .expect("every worker stops well within 5 s")
}

/// Why a client gave up on request 2.
#[derive(Debug)]
struct ClientHungUp;

impl std::fmt::Display for ClientHungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("client closed the connection")
    }
}

impl std::error::Error for ClientHungUp {}

#[tokio::main]
async fn main() {
    START.get_or_init(Instant::now);
    println!("{:>9}  {:<13} what happened", "elapsed", "who");
    // The server's root, on tokio's clock: every context derived from it uses tokio's timers.
    let server = ctx_tokio::background();

    // ----- Request 1: a deadline, and a worker too slow for it -----
    println!("request 1: deadline 300 ms; workers db (80 ms), cache (20 ms), search (2 s)");
    let budget = Duration::from_millis(300);
    let why_deadline: Cause = Arc::new(std::io::Error::other("request 1: 300 ms budget spent"));
    let (req, _cancel) = server
        .with_value(RequestId(1))
        .with_timeout_cause(budget, why_deadline);
    log("#1", format_args!("context: {req}"));
    let _audit = req.after_func(|| {
        log(
            "#1 after_func",
            format_args!("request done, release its pool slot (on {})", thread_name()),
        );
    });
    let results = fan_out(
        &req,
        &[
            ("db", Duration::from_millis(80)),
            ("cache", Duration::from_millis(20)),
            ("search", Duration::from_secs(2)),
        ],
    )
    .await;
    log(
        "#1",
        format_args!("all workers returned: {results:?}; {}", why(&req)),
    );
    assert_eq!(results[2], Err(Error::DeadlineExceeded));

    // ----- Request 2: the client cancels mid-flight, with a cause -----
    println!();
    println!("request 2: no deadline; the client hangs up after 150 ms; workers need 1 s each");
    let (req, hang_up) = server.with_value(RequestId(2)).with_cancel_cause();
    let _audit = req.after_func(|| {
        log(
            "#2 after_func",
            format_args!("request done, release its pool slot (on {})", thread_name()),
        );
    });
    let client = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        log("#2 client", "hangs up");
        hang_up.cancel(Arc::new(ClientHungUp) as Cause);
    });
    let workers = [
        ("db", Duration::from_secs(1)),
        ("cache", Duration::from_secs(1)),
        ("search", Duration::from_secs(1)),
    ];
    let results = fan_out(&req, &workers).await;
    log(
        "#2",
        format_args!("all workers returned: {results:?}; {}", why(&req)),
    );
    assert!(results.iter().all(|r| *r == Err(Error::Canceled)));
    client.await.expect("the client task panicked");

    // The server's root was never touched: canceling a child never reaches its parent.
    log("server", format_args!("still serving: err={:?}", server.err()));
}
