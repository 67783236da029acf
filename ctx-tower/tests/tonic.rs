//! Feature `tonic`, on loopback: a tonic server under `ServerLayer` and tonic clients behind
//! `ClientLayer`. The codes a caller reads when a ctx ends: `DEADLINE_EXCEEDED` and
//! `CANCELLED`, never `UNKNOWN`. Real sockets, so a few short real-time waits, each under a
//! watchdog.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_tower::{ClientLayer, ServerLayer};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::time::timeout;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::{Layer, ServiceBuilder};

/// The watchdog of every wait.
const LIMIT: Duration = Duration::from_secs(10);

/// The health service: `"slow"` waits until its ctx is done and answers
/// `grpc_status(&ctx)`; `"stuck"` never answers (and ignores its ctx); anything else is
/// `SERVING`. Every request's ctx is kept for the test.
#[derive(Clone, Default)]
struct Probe {
    seen: Arc<Mutex<Vec<Ctx>>>,
}

#[tonic::async_trait]
impl Health for Probe {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let ctx = request
            .extensions()
            .get::<Ctx>()
            .cloned()
            .expect("ServerLayer's ctx");
        self.seen.lock().unwrap().push(ctx.clone());
        match request.get_ref().service.as_str() {
            "slow" => {
                ctx.done().await;
                Err(ctx_tower::grpc_status(&ctx))
            }
            "stuck" => std::future::pending().await,
            _ => Ok(Response::new(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })),
        }
    }

    type WatchStream = tonic::codegen::BoxStream<HealthCheckResponse>;

    async fn watch(&self, _: Request<HealthCheckRequest>) -> Result<Response<Self::WatchStream>, Status> {
        Err(Status::unimplemented("not in these tests"))
    }
}

/// Serves `probe` over HTTP/2 under `layer` (hyper-util, so that tonic's own server timer on
/// `grpc-timeout` does not race the handler's ctx). Returns the address.
async fn serve(layer: ServerLayer, probe: Probe) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = layer.layer(tonic::service::Routes::new(HealthServer::new(probe)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn channel(addr: std::net::SocketAddr) -> Channel {
    let endpoint = Endpoint::from_shared(format!("http://{addr}")).unwrap();
    timeout(LIMIT, endpoint.connect()).await.unwrap().unwrap()
}

/// Waits until the first request has reached the handler.
async fn arrived(probe: &Probe) {
    timeout(LIMIT, async {
        while probe.seen.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the request reached the server");
}

fn check(service: &str, ctx: Option<Ctx>) -> Request<HealthCheckRequest> {
    let mut req = Request::new(HealthCheckRequest {
        service: service.to_owned(),
    });
    if let Some(ctx) = ctx {
        req.extensions_mut().insert(ctx);
    }
    req
}

#[tokio::test]
async fn a_tonic_client_behind_client_layer_reads_deadline_exceeded_when_its_ctx_is_past_its_deadline() {
    let addr = serve(ServerLayer::new(Ctx::background()), Probe::default()).await;
    let svc = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel(addr).await);
    let mut client = HealthClient::new(svc);
    let (ctx, _cancel) = Ctx::background().with_timeout(Duration::ZERO);
    let status = timeout(LIMIT, client.check(check("", Some(ctx))))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "context deadline exceeded");
}

#[tokio::test]
async fn a_tonic_client_behind_client_layer_reads_cancelled_when_its_ctx_is_canceled_mid_call() {
    let probe = Probe::default();
    let addr = serve(ServerLayer::new(Ctx::background()), probe.clone()).await;
    let svc = ServiceBuilder::new()
        .layer(ClientLayer::new())
        .service(channel(addr).await);
    let mut client = HealthClient::new(svc);
    let (ctx, cancel) = Ctx::background().with_cancel();
    let call = tokio::spawn(async move { client.check(check("stuck", Some(ctx))).await });
    // Cancel once the server has the request: the call is pending on the wire.
    arrived(&probe).await;
    cancel.cancel();
    let status = timeout(LIMIT, call).await.unwrap().unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert_eq!(status.message(), "context canceled");
    // And the server saw its client go away.
    let server_ctx = probe.seen.lock().unwrap()[0].clone();
    let err = timeout(LIMIT, server_ctx.done()).await.unwrap();
    assert_eq!(err, Error::Canceled);
    assert!(server_ctx.cause().unwrap().is::<ctx_tower::ClientDisconnected>());
}

#[tokio::test]
async fn a_handler_answers_grpc_status_and_the_caller_reads_deadline_exceeded() {
    let probe = Probe::default();
    let clock = ctx_testkit::MockClock::new();
    let layer = ServerLayer::new(clock.background()).default_timeout(Duration::from_secs(1));
    let addr = serve(layer, probe.clone()).await;
    // A plain tonic client: no ctx, no header, no timer of its own. The deadline is the
    // server's default, on the server's clock.
    let mut client = HealthClient::new(channel(addr).await);
    let call = tokio::spawn(async move { client.check(check("slow", None)).await });
    arrived(&probe).await;
    clock.advance(Duration::from_secs(1));
    let status = timeout(LIMIT, call).await.unwrap().unwrap().unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.message(), "context deadline exceeded");
}

#[tokio::test]
async fn grpc_status_names_a_shutdown_cancelled_with_its_cause() {
    let (root, shutdown) = Ctx::background().with_cancel_cause();
    let probe = Probe::default();
    let addr = serve(ServerLayer::new(root), probe.clone()).await;
    let mut client = HealthClient::new(channel(addr).await);
    let call = tokio::spawn(async move { client.check(check("slow", None)).await });
    arrived(&probe).await;
    shutdown.cancel(std::io::Error::other("server shutting down"));
    let status = timeout(LIMIT, call).await.unwrap().unwrap().unwrap_err();
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert_eq!(status.message(), "context canceled: server shutting down");
}

#[test]
fn grpc_status_of_a_live_ctx_is_ok() {
    assert_eq!(ctx_tower::grpc_status(&Ctx::background()).code(), Code::Ok);
}

#[test]
fn client_error_done_carries_a_status_tonic_finds_down_the_source_chain() {
    let e: ctx_tower::ClientError<Infallible> = ctx_tower::ClientError::Done(Error::DeadlineExceeded);
    let status = Status::from_error(Box::new(e));
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let e: ctx_tower::ClientError<Infallible> = ctx_tower::ClientError::Done(Error::Canceled);
    assert_eq!(Status::from_error(Box::new(e)).code(), Code::Cancelled);
}
