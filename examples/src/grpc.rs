//! A tonic service under [`ServerLayer`](ctx_tower::ServerLayer) and a tonic client over a
//! `Channel` behind [`ClientLayer`]. The service is gRPC's standard health check
//! (`grpc.health.v1.Health`, whose generated code ships with `tonic-health`, so no `protoc`),
//! implemented here so that its handler can show what it sees of its ctx.

use std::pin::Pin;
use std::task::{Context, Poll};

use ctx_core::{Ctx, Done, Error};
use ctx_tower::{ClientError, ClientLayer, grpc_code};
use tokio::net::TcpListener;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Response, Status};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tower::ServiceBuilder;
use tower::util::MapErr;

use crate::RequestLog;

/// The `Status` for a handler (or a caller) whose ctx is done: `DEADLINE_EXCEEDED` or
/// `CANCELLED`, through [`grpc_code`].
///
/// # Examples
///
/// ```
/// use ctx_core::Error;
/// let status = ctx_examples::grpc_status(Error::DeadlineExceeded);
/// assert_eq!(status.code(), tonic::Code::DeadlineExceeded);
/// assert_eq!(status.message(), "context deadline exceeded");
/// ```
pub fn grpc_status(err: Error) -> Status {
    Status::new(Code::from(grpc_code(err)), err.to_string())
}

// ===== server =====

/// The health service, ctx-aware. `check` for service `"slow"` waits until its ctx is done
/// and answers with [`grpc_status`]; any other name is `SERVING` at once. `watch` sends
/// `SERVING`, then keeps the stream (and so the request's ctx) open until the ctx is done.
/// Every request's ctx goes into [`HealthProbe::log`].
///
/// # Examples
///
/// ```
/// let probe = ctx_examples::HealthProbe::new();
/// assert_eq!(probe.log().get().seen, 0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct HealthProbe {
    log: RequestLog,
}

impl HealthProbe {
    /// A probe with an empty log.
    ///
    /// # Examples
    ///
    /// ```
    /// let _probe = ctx_examples::HealthProbe::new();
    /// ```
    pub fn new() -> HealthProbe {
        HealthProbe::default()
    }

    /// What the handlers saw of their request contexts.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(ctx_examples::HealthProbe::new().log().get().ended, 0);
    /// ```
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    fn ctx<T>(&self, request: &Request<T>) -> Result<Ctx, Status> {
        let ctx = request
            .extensions()
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| Status::internal("no request ctx: is ServerLayer installed?"))?;
        self.log.record(&ctx);
        Ok(ctx)
    }
}

#[tonic::async_trait]
impl Health for HealthProbe {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let ctx = self.ctx(&request)?;
        if request.get_ref().service == "slow" {
            return Err(grpc_status(ctx.done().await));
        }
        Ok(Response::new(HealthCheckResponse {
            status: ServingStatus::Serving as i32,
        }))
    }

    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<HealthCheckRequest>) -> Result<Response<WatchStream>, Status> {
        let ctx = self.ctx(&request)?;
        Ok(Response::new(WatchStream {
            first: true,
            done: Some(ctx.done()),
        }))
    }
}

/// The stream of [`HealthProbe`]'s `watch`: `SERVING`, then the ctx's status when it is done.
#[derive(Debug)]
pub struct WatchStream {
    first: bool,
    done: Option<Done>,
}

impl tonic::codegen::tokio_stream::Stream for WatchStream {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if std::mem::take(&mut self.first) {
            return Poll::Ready(Some(Ok(HealthCheckResponse {
                status: ServingStatus::Serving as i32,
            })));
        }
        let Some(done) = self.done.as_mut() else {
            return Poll::Ready(None);
        };
        let err = std::task::ready!(Pin::new(done).poll(cx));
        self.done = None;
        Poll::Ready(Some(Err(grpc_status(err))))
    }
}

/// Serves [`HealthProbe`] (as tonic `Routes`) on `listener` under
/// [`ServerLayer::new(root)`](ctx_tower::ServerLayer), over HTTP/2, until `root` is done.
///
/// It serves the routes with [`serve_with`](crate::serve_with) (hyper-util) rather than
/// `tonic::transport::Server`, because tonic's server starts a timer of its own for every
/// `grpc-timeout` and, when it fires first, answers `CANCELLED` and drops the handler — whose
/// ctx then reads "client disconnected". Here the handler's ctx is the only clock, and the
/// caller sees `DEADLINE_EXCEEDED`. (`Server::builder().layer(ServerLayer::new(root))` works
/// too, with that race at the deadline.)
///
/// # Errors
///
/// An error from `accept` that is not about one connection.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (root, shutdown) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// shutdown.cancel();
/// ctx_examples::serve_grpc(listener, ctx_examples::HealthProbe::new(), root).await?;
/// # Ok(()) }
/// ```
pub async fn serve_grpc(listener: TcpListener, probe: HealthProbe, root: Ctx) -> std::io::Result<()> {
    let routes = tonic::service::Routes::new(HealthServer::new(probe));
    crate::serve_with(listener, root, routes).await
}

// ===== client =====

/// A `Channel` behind [`ClientLayer`], its errors turned into `Status` (a done ctx into
/// [`grpc_status`]) so the generated client reports `DEADLINE_EXCEEDED` / `CANCELLED`.
pub type GrpcChannel =
    MapErr<ctx_tower::ClientService<Channel>, fn(ClientError<tonic::transport::Error>) -> BoxError>;

/// What the client's service fails with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn into_status(e: ClientError<tonic::transport::Error>) -> BoxError {
    match e {
        ClientError::Done(err) => Box::new(grpc_status(err)),
        ClientError::Inner(e) => Box::new(e),
    }
}

/// Connects a health client to `addr` over a `Channel` wrapped in [`ClientLayer`]. Put the
/// caller's ctx in each request's extensions (`request.extensions_mut().insert(ctx)`).
///
/// # Errors
///
/// A connection error.
///
/// # Examples
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tonic::transport::Error> {
/// let mut client = ctx_examples::grpc_client("127.0.0.1:50051".parse().unwrap()).await?;
/// let (ctx, _cancel) = ctx_tokio::background().with_timeout(std::time::Duration::from_secs(1));
/// let mut req = tonic::Request::new(tonic_health::pb::HealthCheckRequest { service: String::new() });
/// req.extensions_mut().insert(ctx);
/// let answer = client.check(req).await;
/// # let _ = answer; Ok(()) }
/// ```
pub async fn grpc_client(
    addr: std::net::SocketAddr,
) -> Result<HealthClient<GrpcChannel>, tonic::transport::Error> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))?.connect().await?;
    let service = ServiceBuilder::new()
        .map_err(into_status as fn(_) -> _)
        .layer(ClientLayer::new())
        .service(channel);
    Ok(HealthClient::new(service))
}
