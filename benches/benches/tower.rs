//! What ctx-tower adds to a request, next to what people use today.
//!
//! * `tower/server`: one request through `ServerLayer` with a `grpc-timeout: 5S` header,
//!   against one through tower's `timeout::Timeout` with a 5 s budget — same handler, same
//!   response, body read to its end. Twice: a handler that answers at once, and one that is
//!   pending once first (as any handler doing I/O is). Tower's layer makes a tokio `Sleep`
//!   per request and registers it in the timer wheel as soon as the handler is pending;
//!   `ServerLayer` derives a context and arms nothing unless the handler waits on its ctx.
//!   Beside them, what any such layer is measured against: the bare handler (no layer), and the
//!   floor any layer that hands the handler a ctx must pay — the bare handler plus one `Ctx`
//!   clone inserted into the request's `Extensions` (the map's allocation, the boxed value, and
//!   their drop with the request). A layer's cost is its time minus the bare handler's. And the
//!   floor with the one thing ctx-core adds: the inserted ctx is a deadline node of its own
//!   (`with_timeout_cancel_cause(5 s)`, canceled when the body has ended) — what
//!   `ServerLayer` does, without its header parsing and response wrappers.
//!   And what users write instead of ctx-tower when they want both a per-request deadline and
//!   cancellation on hang-up (the **hand-built stack**): tower's `Timeout` (5 s) inside a layer
//!   that inserts a child of a server-wide tokio-util `CancellationToken` into the request's
//!   extensions and holds its `DropGuard` in the response future, then in the body, so that the
//!   token is canceled when either is dropped (the end of the body included). The target for
//!   `ServerLayer` is half of what that stack adds.
//! * `tower/client`: one call through `ClientLayer` on a ctx without a deadline, against the
//!   bare service — the request carries the ctx in both, so the difference is the layer.
//!
//! Futures are polled by hand with a no-op waker inside a tokio runtime's context (tower's
//! `Timeout` needs one for its timer), so the numbers are the layers', not an executor's.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ctx_benches::poll::{drain, drive};
use ctx_benches::{Weight, configure};
use ctx_core::Ctx;
use ctx_tower::{ClientLayer, ServerLayer};
use http::{HeaderValue, Request, Response};
use tokio_util::sync::CancellationToken;
use tower::timeout::TimeoutLayer;
use tower::{Layer, Service};

const CTX_TOWER: &str = "ctx-tower ServerLayer";
const CTX_TOWER_SYSTEM: &str = "ctx-tower ServerLayer, system-clock root";
const TOWER_TIMEOUT: &str = "tower Timeout";
const BARE: &str = "bare handler";
const FLOOR: &str = "floor: bare handler + Ctx in extensions";
const FLOOR_NODE: &str = "floor + a deadline node of its own";
const HAND_BUILT: &str = "hand-built: tower Timeout + CancellationToken child + DropGuard";
const LEAST: &str = "least any ServerLayer (header, node, wrappers; no root link)";

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

#[path = "tower/hand_built.rs"]
mod hand_built;
#[path = "tower/least.rs"]
mod least;
use hand_built::TokenLayer;

fn request_with_budget() -> Request<()> {
    let mut req = Request::new(());
    req.headers_mut()
        .insert("grpc-timeout", HeaderValue::from_static("5S"));
    req
}

fn server(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let _enter = rt.enter();
    let root = ctx_tokio::background();

    for (name, pending_once) in [("ready", false), ("pending-once", true)] {
        let handler = Handler { pending_once };
        let mut ours = ServerLayer::new(root.clone()).layer(handler);
        // ctx-core's own clock: `ctx-tokio`'s `now()` enters the runtime handle each time.
        let mut ours_system = ServerLayer::new(Ctx::background()).layer(handler);
        let mut theirs = TimeoutLayer::new(Duration::from_secs(5)).layer(handler);
        let mut hand_built = tower::ServiceBuilder::new()
            .layer(TokenLayer {
                root: CancellationToken::new(),
            })
            .layer(TimeoutLayer::new(Duration::from_secs(5)))
            .service(handler);
        let mut bare = handler;

        let mut g = c.benchmark_group(format!("tower/server/handler-{name}"));
        configure(&mut g, Weight::Light);
        // The request is built untimed: both sides get the same one.
        g.bench_function(CTX_TOWER, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(ours.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(CTX_TOWER_SYSTEM, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(ours_system.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(TOWER_TIMEOUT, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(theirs.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(HAND_BUILT, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(hand_built.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(BARE, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(bare.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        // What a layer cannot avoid: the handler finds a ctx in the request's extensions.
        g.bench_function(FLOOR, |b| {
            b.iter_batched(
                request_with_budget,
                |mut req| {
                    req.extensions_mut().insert(root.clone());
                    drain(drive(bare.call(req)).expect("an answer").into_body())
                },
                BatchSize::SmallInput,
            )
        });
        // The least any such layer does: header, node, wrappers (benches/tower/least.rs).
        let mut least = least::LeastService { inner: bare };
        g.bench_function(LEAST, |b| {
            b.iter_batched(
                request_with_budget,
                |req| drain(drive(least.call(req)).expect("an answer").into_body()),
                BatchSize::SmallInput,
            )
        });
        g.bench_function(FLOOR_NODE, |b| {
            b.iter_batched(
                request_with_budget,
                |mut req| {
                    let (ctx, cancel) = root.with_timeout_cancel_cause(Duration::from_secs(5));
                    req.extensions_mut().insert(ctx);
                    drain(drive(bare.call(req)).expect("an answer").into_body());
                    cancel.cancel_without_cause();
                },
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

/// The bare inner service of the client benches: answers at once.
#[derive(Clone, Copy)]
struct Echo;

impl Service<Request<()>> for Echo {
    type Response = u8;
    type Error = Infallible;
    type Future = Ready<Result<u8, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(&req);
        ready(Ok(1))
    }
}

fn client(c: &mut Criterion) {
    let (cancelable, _cancel) = Ctx::background().with_cancel();
    let mut bare = Echo;
    let mut layered = ClientLayer::new().layer(Echo);

    for (name, ctx) in [
        ("ctx-with-cancel", cancelable.clone()),
        ("ctx-background", Ctx::background()),
    ] {
        let mut g = c.benchmark_group(format!("tower/client/{name}"));
        configure(&mut g, Weight::Light);
        let request = || {
            let mut req = Request::new(());
            req.extensions_mut().insert(ctx.clone());
            req
        };
        // The request (with its ctx) is built untimed: the difference is the layer.
        g.bench_function("bare service", |b| {
            b.iter_batched(request, |req| drive(bare.call(req)), BatchSize::SmallInput)
        });
        g.bench_function("ClientLayer", |b| {
            b.iter_batched(
                request,
                |req| drive(layered.call(req)).is_ok(),
                BatchSize::SmallInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, server, client);
criterion_main!(benches);
