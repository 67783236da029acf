//! What a `CancellationToken` → `Ctx` bridge costs: `ctx_tokio::from_token` (no task; ctx-core's
//! watcher thread carries the cancellation to derived contexts) against the obvious alternative,
//! a tokio task per bridge that `select!`s on the token and the context.
//!
//! Also: what `err()` on a live deadline context costs on tokio's clock.
//!
//! Run with `cargo run --release -p ctx-tokio --example bridge_cost`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ctx_tokio::{Ctx, CtxExt};
use tokio_util::sync::CancellationToken;

const N: u32 = 20_000;
const LATENCY_RUNS: u32 = 2_000;

/// The alternative: a `with_cancel` child and a task that cancels it when the token is canceled.
fn task_bridge(parent: &Ctx, token: CancellationToken) -> (Ctx, ctx_tokio::CancelHandle) {
    let (ctx, cancel) = parent.with_cancel();
    let done = ctx.done();
    let handle = cancel.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = token.cancelled_owned() => handle.cancel(),
            _ = done => {}
        }
    });
    (ctx, cancel)
}

fn per_op(start: Instant, n: u32) -> Duration {
    start.elapsed() / n
}

/// Time from `token.cancel()` until a context derived from the bridge is done.
fn latency(make: impl Fn(&Ctx, CancellationToken) -> (Ctx, ctx_tokio::CancelHandle)) -> Duration {
    let root = Ctx::background();
    let mut total = Duration::ZERO;
    for _ in 0..LATENCY_RUNS {
        let token = CancellationToken::new();
        let (ctx, _cancel) = make(&root, token.clone());
        let (child, _c) = ctx.with_cancel();
        let start = Instant::now();
        token.cancel();
        while !child.is_done() {
            std::hint::spin_loop();
        }
        total += start.elapsed();
    }
    total / LATENCY_RUNS
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _enter = rt.enter();
    let root = ctx_tokio::background();
    let (parent, _keep) = root.with_cancel();

    let start = Instant::now();
    for _ in 0..N {
        let (ctx, cancel) = ctx_tokio::from_token(&parent, CancellationToken::new());
        black_box(&ctx);
        drop(cancel);
    }
    println!("from_token, create + drop:        {:?}/op", per_op(start, N));

    let start = Instant::now();
    for _ in 0..N {
        let (ctx, cancel) = task_bridge(&parent, CancellationToken::new());
        black_box(&ctx);
        drop(cancel);
    }
    println!(
        "task bridge, create + drop:       {:?}/op (task ends after the drop)",
        per_op(start, N)
    );

    let start = Instant::now();
    for _ in 0..N {
        let (ctx, _c) = parent.with_cancel();
        black_box(ctx.to_cancellation_token());
    }
    println!(
        "with_cancel + to_cancellation_token + drop: {:?}/op",
        per_op(start, N)
    );

    // `err()` on a live deadline context reads the clock; tokio's clock enters the runtime first.
    for (name, root) in [("tokio clock", root.clone()), ("system clock", Ctx::background())] {
        let (ctx, _c) = root.with_timeout(Duration::from_secs(3600));
        let start = Instant::now();
        for _ in 0..N {
            black_box(ctx.err());
        }
        println!("err() on a live deadline ctx, {name}: {:?}/op", per_op(start, N));
    }

    println!(
        "from_token, cancel -> grandchild: {:?}",
        latency(ctx_tokio::from_token)
    );
    println!("task bridge, cancel -> grandchild: {:?}", latency(task_bridge));
}
