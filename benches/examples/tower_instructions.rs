//! Instruction counts per request for the `tower` bench's server rows, to break `ServerLayer`'s
//! cost down by function under callgrind (timings on a shared machine wander; instruction
//! counts do not):
//!
//! ```text
//! cargo build --profile bench -p ctx-benches --example tower_instructions
//! valgrind --tool=callgrind --toggle-collect='*measured*' --callgrind-out-file=/tmp/cg.out \
//!     target/release/examples/tower_instructions server-layer 100000
//! callgrind_annotate --inclusive=yes /tmp/cg.out | head -60
//! ```
//!
//! The first argument picks the row (`bare`, `floor`, `floor-node`, `least`, `server-layer`,
//! `server-layer-system`, `server-layer-no-header`, `tower-timeout`, `hand-built`), the second
//! the number of requests; only `measured` is counted, so the total divided by the number of
//! requests is the cost of one request (the request itself is built outside it). The handler answers at once; the body is
//! read to its end, as in the bench.

use std::convert::Infallible;
use std::hint::black_box;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use ctx_benches::poll::{drain, drive};
use ctx_core::Ctx;
use ctx_tower::ServerLayer;
use http::{HeaderValue, Request, Response};
use http_body::Body;
use tower::timeout::TimeoutLayer;
use tower::{Layer, Service};

#[path = "../benches/tower/hand_built.rs"]
mod hand_built;
#[path = "../benches/tower/least.rs"]
mod least;

/// The bench's handler, ready at once: a boxed future, a `String` body.
#[derive(Clone, Copy)]
struct Handler;

impl Service<Request<()>> for Handler {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = Pin<Box<std::future::Ready<Result<Response<String>, Infallible>>>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, req: Request<()>) -> Self::Future {
        black_box(&req);
        Box::pin(std::future::ready(Ok(Response::new(String::from("ok")))))
    }
}

fn request(with_header: bool) -> Request<()> {
    let mut req = Request::new(());
    if with_header {
        req.headers_mut()
            .insert("grpc-timeout", HeaderValue::from_static("5S"));
    }
    req
}

/// The only code callgrind counts (`--toggle-collect='*measured*'`): one request's life.
#[inline(never)]
fn measured<S>(svc: &mut S, req: Request<()>)
where
    S: Service<Request<()>>,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    drain(drive(svc.call(req)).expect("an answer").into_body());
}

/// A response whose body the server reads.
trait IntoBody {
    type B: Body + Unpin;
    fn into_body(self) -> Self::B;
}

impl<B: Body + Unpin> IntoBody for Response<B> {
    type B = B;
    fn into_body(self) -> B {
        Response::into_body(self)
    }
}

/// `Handler` behind a layer that only puts a `Ctx` clone in the extensions: the floor.
struct Floor(Ctx);

impl Service<Request<()>> for Floor {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = <Handler as Service<Request<()>>>::Future;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, mut req: Request<()>) -> Self::Future {
        req.extensions_mut().insert(self.0.clone());
        Handler.call(req)
    }
}

/// The floor whose ctx is a deadline node of its own, canceled when the body has ended.
struct FloorNode(Ctx);

impl Service<Request<()>> for FloorNode {
    type Response = Response<NodeBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<NodeBody>, Infallible>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, mut req: Request<()>) -> Self::Future {
        let (ctx, cancel) = self.0.with_timeout_cancel_cause(Duration::from_secs(5));
        req.extensions_mut().insert(ctx);
        let resp = drive(Handler.call(req)).expect("an answer");
        std::future::ready(Ok(resp.map(|body| NodeBody(body, Some(cancel)))))
    }
}

/// A body that cancels its request's ctx once read to its end.
struct NodeBody(String, Option<ctx_core::CancelCauseHandle>);

impl Body for NodeBody {
    type Data = <String as Body>::Data;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Infallible>>> {
        let frame = Pin::new(&mut self.0).poll_frame(cx);
        if let Poll::Ready(None) = frame
            && let Some(c) = self.1.take()
        {
            c.cancel_without_cause();
        }
        frame
    }
}

fn run<S>(mut svc: S, n: usize, with_header: bool)
where
    S: Service<Request<()>>,
    S::Response: IntoBody,
    S::Error: std::fmt::Debug,
{
    for _ in 0..n {
        let req = request(with_header);
        measured(&mut svc, req);
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let row = args.next().unwrap_or_else(|| String::from("server-layer"));
    let n: usize = args
        .next()
        .map(|s| s.parse().expect("a number of requests"))
        .unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime");
    let _enter = rt.enter();
    let root = ctx_tokio::background();
    match row.as_str() {
        "bare" => run(Handler, n, true),
        "floor" => run(Floor(root), n, true),
        "floor-node" => run(FloorNode(root), n, true),
        "least" => run(least::LeastService { inner: Handler }, n, true),
        "server-layer" => run(ServerLayer::new(root).layer(Handler), n, true),
        "server-layer-system" => run(ServerLayer::new(Ctx::background()).layer(Handler), n, true),
        "server-layer-no-header" => run(ServerLayer::new(root).layer(Handler), n, false),
        "tower-timeout" => run(TimeoutLayer::new(Duration::from_secs(5)).layer(Handler), n, true),
        "hand-built" => run(
            tower::ServiceBuilder::new()
                .layer(hand_built::TokenLayer {
                    root: tokio_util::sync::CancellationToken::new(),
                })
                .layer(TimeoutLayer::new(Duration::from_secs(5)))
                .service(Handler),
            n,
            true,
        ),
        other => panic!("unknown row {other:?}"),
    }
}
