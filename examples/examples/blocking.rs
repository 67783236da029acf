//! Threads only, no async runtime: `wait_blocking`, `with_timeout` and `after_func`.
//!
//! A job with a 50 ms deadline runs on two worker threads that check the context between
//! chunks of work; the main thread blocks until the job is done; an after-func cleans up, on
//! the thread that ended the job. Then a second job is canceled by hand from another thread.
//!
//! Run it with `cargo run -p ctx-examples --example blocking`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use ctx_core::{Ctx, Error};

/// A worker thread's loop: chunks of 5 ms of "work", checking the context between them, as a
/// CPU-bound loop or a blocking driver would.
fn crunch(ctx: &Ctx, name: &str, chunks_done: &AtomicUsize) -> Error {
    loop {
        if let Some(err) = ctx.err() {
            println!(
                "  {name}: stopping after {} chunks: {err}",
                chunks_done.load(Ordering::Relaxed)
            );
            return err;
        }
        thread::sleep(Duration::from_millis(5)); // a chunk of blocking work
        chunks_done.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let start = Instant::now();

    // ----- Job 1: a deadline, fired by ctx-core's own timer thread -----
    println!("job 1: two threads, deadline 50 ms");
    let (job, _cancel) = Ctx::background().with_timeout(Duration::from_millis(50));
    let _cleanup = job.after_func(|| {
        let me = thread::current();
        println!(
            "  after_func: cleaning up on thread {:?}",
            me.name().unwrap_or("<unnamed>")
        );
    });
    let chunks = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = ["worker-a", "worker-b"]
        .into_iter()
        .map(|name| {
            let (job, chunks) = (job.clone(), chunks.clone());
            thread::Builder::new()
                .name(name.into())
                .spawn(move || crunch(&job, name, &chunks))
                .expect("spawn a worker thread")
        })
        .collect();
    // Blocks this thread (no runtime) until the deadline passes.
    let err = job.wait_blocking();
    println!("  main: job done after {:?}: {err}", start.elapsed());
    for w in workers {
        assert_eq!(w.join().expect("a worker panicked"), Error::DeadlineExceeded);
    }

    // ----- Job 2: canceled by hand from another thread -----
    println!("job 2: canceled from a supervisor thread after 20 ms");
    let (job, cancel) = Ctx::background().with_timeout(Duration::from_secs(10));
    let _cleanup = job.after_func(|| {
        println!(
            "  after_func: runs on {:?}, the canceling thread",
            thread::current().name().unwrap_or("?")
        );
    });
    let supervisor = thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || {
            thread::sleep(Duration::from_millis(20));
            cancel.cancel();
        })
        .expect("spawn the supervisor");
    let worker = {
        let job = job.clone();
        let chunks = Arc::new(AtomicUsize::new(0));
        thread::spawn(move || crunch(&job, "worker-c", &chunks))
    };
    assert_eq!(job.wait_blocking(), Error::Canceled);
    supervisor.join().expect("the supervisor panicked");
    assert_eq!(worker.join().expect("the worker panicked"), Error::Canceled);
    println!("all jobs stopped after {:?}", start.elapsed());
}
