//! The demo's idea in miniature, on smol: a request with a deadline fans out to two workers,
//! one is too slow, the deadline stops it.
//!
//! Run it with `cargo run -p ctx-examples --example smol`.

use std::time::{Duration, Instant};

use ctx_smol::{Ctx, Error};

/// Sleeps for `work` on smol's timer, unless `ctx` is done first.
async fn worker(ctx: Ctx, name: &'static str, work: Duration) -> Result<&'static str, Error> {
    ctx.run(async move {
        smol::Timer::after(work).await;
        name
    })
    .await
}

fn main() {
    let start = Instant::now();
    smol::block_on(async {
        // A root on async-io's timers, smol's own.
        let root = ctx_smol::background();
        let (request, _cancel) = root.with_timeout(Duration::from_millis(50));
        let fast = smol::spawn(worker(request.clone(), "fast", Duration::from_millis(1)));
        let slow = smol::spawn(worker(request.clone(), "slow", Duration::from_secs(5)));
        let fast = fast.await;
        println!("{:>4} ms  fast: {fast:?}", start.elapsed().as_millis());
        let slow = slow.await;
        println!(
            "{:>4} ms  slow: {slow:?} (cause: {:?})",
            start.elapsed().as_millis(),
            request.cause()
        );
        assert_eq!(fast, Ok("fast"));
        assert_eq!(slow, Err(Error::DeadlineExceeded));
    });
}
