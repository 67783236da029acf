//! The `tower` bench's server rows timed in interleaved rounds, for a shared or busy machine:
//! criterion measures one row after the other, so a load that comes and goes lands on some
//! rows and not on others, and their ratios wander. Here every round times every row once
//! (`N` requests each, the requests built untimed), rounds repeat, and each row reports its
//! best round and its 10th percentile: what the row costs when the machine lets it run.
//!
//! ```text
//! cargo run --profile bench -p ctx-benches --example tower_time [ROUNDS] [N]
//! ```
//!
//! With `CTX_BENCH_OUT=FILE`, it also writes its numbers there as JSON, for `benches/run.sh`'s
//! report (the ctx-tower targets are judged on these interleaved rounds, not on criterion's
//! one-row-after-another samples).
//!
//! Rows and handlers are those of `benches/benches/tower.rs` (same names).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ctx_benches::poll::{drain, drive};
use ctx_core::Ctx;
use ctx_tower::ServerLayer;
use http::{HeaderValue, Request, Response};
use tokio_util::sync::CancellationToken;
use tower::timeout::TimeoutLayer;
use tower::{Layer, Service};

#[path = "../benches/tower/hand_built.rs"]
mod hand_built;
#[path = "../benches/tower/least.rs"]
mod least;

/// A handler's answer that is pending once (it wakes itself), then ready.
struct PendingOnce(bool);

impl Future for PendingOnce {
    type Output = Result<Response<String>, Infallible>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if std::mem::replace(&mut self.0, true) {
            Poll::Ready(Ok(Response::new(String::from("ok"))))
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[derive(Clone, Copy)]
struct Handler {
    pending_once: bool,
}

impl Service<Request<()>> for Handler {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<PendingOnce>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(&req);
        Box::pin(PendingOnce(!self.pending_once))
    }
}

fn request_with_budget() -> Request<()> {
    let mut req = Request::new(());
    req.headers_mut()
        .insert("grpc-timeout", HeaderValue::from_static("5S"));
    req
}

/// One row: a name and what it does with one request.
type Row<'a> = (&'static str, Box<dyn FnMut(Request<()>) + 'a>);

/// Serves `svc` one request: the answer, its body read to the end.
fn serve<S, B>(svc: &mut S, req: Request<()>)
where
    S: Service<Request<()>, Response = Response<B>>,
    S::Error: std::fmt::Debug,
    B: http_body::Body + Unpin,
{
    drain(drive(svc.call(req)).expect("an answer").into_body());
}

fn rows(root: &Ctx, pending_once: bool) -> Vec<Row<'_>> {
    let handler = Handler { pending_once };
    let mut bare = handler;
    let mut floor = handler;
    let mut floor_node = handler;
    let mut floor_least = handler;
    let root_for_least = root.clone();
    let mut least = least::LeastService { inner: handler };
    let mut ours = ServerLayer::new(root.clone()).layer(handler);
    let mut ours_system = ServerLayer::new(Ctx::background()).layer(handler);
    let mut theirs = TimeoutLayer::new(Duration::from_secs(5)).layer(handler);
    let mut hand_built = tower::ServiceBuilder::new()
        .layer(hand_built::TokenLayer {
            root: CancellationToken::new(),
        })
        .layer(TimeoutLayer::new(Duration::from_secs(5)))
        .service(handler);
    vec![
        ("bare handler", Box::new(move |req| serve(&mut bare, req))),
        (
            "floor: bare handler + Ctx in extensions",
            Box::new(move |mut req: Request<()>| {
                req.extensions_mut().insert(root.clone());
                serve(&mut floor, req)
            }),
        ),
        (
            "floor + one allocation, one clock read (least any node)",
            Box::new(move |mut req: Request<()>| {
                // What any design's request ctx costs at least: the floor, a shared allocation
                // holding the deadline (read off the clock), a second owner (the handle), one
                // atomic cancel, both dropped after the body.
                let node = Arc::new((AtomicU32::new(0), Instant::now() + Duration::from_secs(5)));
                let handle = black_box(node.clone());
                req.extensions_mut().insert(root_for_least.clone());
                serve(&mut floor_least, req);
                handle.0.fetch_or(1, Ordering::AcqRel);
                drop(black_box(node));
                drop(handle);
            }),
        ),
        (
            "floor + a deadline node of its own",
            Box::new(move |mut req: Request<()>| {
                let (ctx, cancel) = root.with_timeout_cancel_cause(Duration::from_secs(5));
                req.extensions_mut().insert(ctx);
                serve(&mut floor_node, req);
                cancel.cancel_without_cause();
            }),
        ),
        (
            "least any ServerLayer (header, node, wrappers; no root link)",
            Box::new(move |req| serve(&mut least, req)),
        ),
        (
            "ctx-tower ServerLayer",
            Box::new(move |req| serve(&mut ours, req)),
        ),
        (
            "ctx-tower ServerLayer, system-clock root",
            Box::new(move |req| serve(&mut ours_system, req)),
        ),
        ("tower Timeout", Box::new(move |req| serve(&mut theirs, req))),
        (
            "hand-built: tower Timeout + CancellationToken child + DropGuard",
            Box::new(move |req| serve(&mut hand_built, req)),
        ),
    ]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .map_or(200, |s| s.parse().expect("a number of rounds"));
    let n: usize = args
        .next()
        .map_or(2_000, |s| s.parse().expect("a number of requests"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let _enter = rt.enter();
    let root = ctx_tokio::background();
    let mut json = Vec::new();
    for (handler, pending_once) in [("ready", false), ("pending-once", true)] {
        let mut rows = rows(&root, pending_once);
        let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); rows.len()];
        for round in 0..rounds {
            // Rotate the order, so that no row always follows the same one.
            for k in 0..rows.len() {
                let i = (round + k) % rows.len();
                let reqs: Vec<_> = (0..n).map(|_| request_with_budget()).collect();
                let start = Instant::now();
                for req in reqs {
                    (rows[i].1)(req);
                }
                times[i].push(start.elapsed().as_nanos() as f64 / n as f64);
            }
        }
        println!("handler {handler}: {rounds} rounds of {n} requests; ns per request (best, p10, median)");
        let stat = |t: &mut Vec<f64>| {
            t.sort_by(f64::total_cmp);
            (t[0], t[t.len() / 10], t[t.len() / 2])
        };
        let stats: Vec<_> = times.iter_mut().map(stat).collect();
        for ((name, _), (best, p10, median)) in rows.iter().zip(&stats) {
            println!("  {name:<66} {best:7.1} {p10:7.1} {median:7.1}");
        }
        let bare = stats[0];
        let added = |s: (f64, f64, f64)| (s.0 - bare.0, s.1 - bare.1, s.2 - bare.2);
        let hand = added(stats[rows.len() - 1]);
        for (i, (name, _)) in rows.iter().enumerate().skip(1).take(rows.len() - 2) {
            let a = added(stats[i]);
            println!(
                "  added / hand-built's added, {name:<52} {:5.2}x {:5.2}x {:5.2}x",
                a.0 / hand.0,
                a.1 / hand.1,
                a.2 / hand.2
            );
        }
        let rows_json: Vec<String> = rows
            .iter()
            .zip(&stats)
            .map(|((name, _), (best, p10, median))| {
                format!(r#""{name}": {{"best": {best:.2}, "p10": {p10:.2}, "median": {median:.2}}}"#)
            })
            .collect();
        json.push(format!(r#""{handler}": {{{}}}"#, rows_json.join(", ")));
    }
    if let Some(path) = std::env::var_os("CTX_BENCH_OUT") {
        let text = format!(
            r#"{{"rounds": {rounds}, "n": {n}, "handlers": {{{}}}}}"#,
            json.join(", ")
        );
        std::fs::write(&path, text + "\n").expect("CTX_BENCH_OUT is writable");
    }
}
