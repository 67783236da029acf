//! [`Gateway`], an axum service in front of another one (hop A of the service chain): its
//! handler takes the request's ctx with `Extension<Ctx>` and calls upstream through
//! [`ClientLayer`], so the deadline and the cancellation cross to the next hop.

use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing;
use ctx_core::Ctx;
use ctx_tower::{ClientError, ClientLayer, ClientService, ServerLayer};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower::{ServiceBuilder, ServiceExt};

use crate::RequestLog;

/// An HTTP client (hyper-util's pooled client) behind [`ClientLayer`]: a request that carries
/// a [`Ctx`] sends its remaining time as `grpc-timeout` and is dropped when the ctx is done.
pub type HttpClient = ClientService<Client<HttpConnector, Empty<Bytes>>>;

/// Which HTTP version an [`HttpClient`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1, one request per connection at a time.
    Http1,
    /// HTTP/2 with prior knowledge (`h2c`), every request a stream of one connection.
    Http2,
}

/// An [`HttpClient`] for `version`. Must be called inside a tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ctx_examples::http_client(ctx_examples::Version::Http2);
/// # let _ = client;
/// # }
/// ```
pub fn http_client(version: Version) -> HttpClient {
    let client = Client::builder(TokioExecutor::new())
        .http2_only(version == Version::Http2)
        .pool_idle_timeout(Duration::from_secs(30))
        .build_http();
    ServiceBuilder::new().layer(ClientLayer::new()).service(client)
}

/// Sends `GET uri` under `ctx` and reads the whole answer (also under `ctx`). Returns the
/// status and the body, or the ctx's error when it is done first (the call is dropped).
///
/// # Errors
///
/// [`ClientError::Done`] when `ctx` is done first; [`ClientError::Inner`] for a transport
/// error (as text).
///
/// # Examples
///
/// ```
/// use ctx_core::{Ctx, Error};
/// use ctx_tower::ClientError;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let client = ctx_examples::http_client(ctx_examples::Version::Http1);
/// let (ctx, cancel) = Ctx::background().with_cancel();
/// cancel.cancel();
/// let out = ctx_examples::get(&client, &ctx, "http://127.0.0.1:9/".parse().unwrap()).await;
/// assert!(matches!(out, Err(ClientError::Done(Error::Canceled)))); // never sent
/// # }
/// ```
pub async fn get(
    client: &HttpClient,
    ctx: &Ctx,
    uri: Uri,
) -> Result<(StatusCode, String), ClientError<String>> {
    let mut req = http::Request::get(uri)
        .body(Empty::new())
        .map_err(|e| ClientError::Inner(e.to_string()))?;
    req.extensions_mut().insert(ctx.clone());
    let resp = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| e.map_inner(|inner| inner.to_string()))?;
    let status = resp.status();
    let body = ctx
        .run(resp.into_body().collect())
        .await
        .map_err(ClientError::Done)?
        .map_err(|e| ClientError::Inner(e.to_string()))?;
    Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
}

trait MapInner<E> {
    fn map_inner<F, T>(self, f: F) -> ClientError<T>
    where
        F: FnOnce(E) -> T;
}

impl<E> MapInner<E> for ClientError<E> {
    fn map_inner<F, T>(self, f: F) -> ClientError<T>
    where
        F: FnOnce(E) -> T,
    {
        match self {
            ClientError::Done(e) => ClientError::Done(e),
            ClientError::Inner(e) => ClientError::Inner(f(e)),
        }
    }
}

// ===== Gateway =====

/// Hop A: `GET /work?...` and `GET /stream?...` forwarded to `upstream` (same path and
/// query) under the request's ctx, answered with upstream's status and body. When the ctx is
/// done first, the outgoing call is dropped and the answer is 504 / 499 / 503 (see
/// [`status_for`](crate::status_for)).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use ctx_examples::{Gateway, Version};
/// let gateway = Gateway::new("http://127.0.0.1:8081".parse().unwrap(), Version::Http2);
/// let router = gateway.router(ctx_tokio::background()); // an axum::Router
/// # let _ = router;
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Gateway {
    upstream: Uri,
    client: HttpClient,
    log: RequestLog,
}

impl Gateway {
    /// A gateway to `upstream` (scheme and authority), speaking `version` to it. Must be
    /// called inside a tokio runtime.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gw = ctx_examples::Gateway::new("http://127.0.0.1:1".parse().unwrap(), ctx_examples::Version::Http1);
    /// assert_eq!(gw.log().get().seen, 0);
    /// # }
    /// ```
    pub fn new(upstream: Uri, version: Version) -> Gateway {
        Gateway {
            upstream,
            client: http_client(version),
            log: RequestLog::new(),
        }
    }

    /// What the handler saw of its request contexts, and how many outgoing calls it abandoned.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gw = ctx_examples::Gateway::new("http://127.0.0.1:1".parse().unwrap(), ctx_examples::Version::Http1);
    /// assert_eq!(gw.log().get().abandoned, 0);
    /// # }
    /// ```
    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// The axum router: the routes, then [`ServerLayer`] with `root` as every request's
    /// root (cancel `root` to shut down).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let gw = ctx_examples::Gateway::new("http://127.0.0.1:1".parse().unwrap(), ctx_examples::Version::Http1);
    /// let _router: axum::Router = gw.router(ctx_tokio::background());
    /// # }
    /// ```
    pub fn router(self, root: Ctx) -> Router {
        Router::new()
            .route("/work", routing::get(forward))
            .route("/stream", routing::get(forward))
            .with_state(self)
            .layer(ServerLayer::new(root))
    }
}

/// Counts an outgoing call that is dropped before its answer.
struct InFlight<'a> {
    log: Option<&'a RequestLog>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(log) = self.log {
            log.abandoned();
        }
    }
}

async fn forward(State(gw): State<Gateway>, Extension(ctx): Extension<Ctx>, uri: Uri) -> Response {
    gw.log.record(&ctx);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = format!("{}{}", gw.upstream.to_string().trim_end_matches('/'), path);
    let Ok(target) = target.parse::<Uri>() else {
        return (StatusCode::BAD_REQUEST, "bad path\n").into_response();
    };
    let mut in_flight = InFlight { log: Some(&gw.log) };
    let answer = get(&gw.client, &ctx, target).await;
    in_flight.log = None; // answered: not abandoned
    match answer {
        Ok((status, body)) => (status, body).into_response(),
        Err(ClientError::Done(err)) => {
            (crate::status_for(&ctx, err), format!("{err} (gateway)\n")).into_response()
        }
        Err(ClientError::Inner(e)) => (StatusCode::BAD_GATEWAY, format!("{e}\n")).into_response(),
    }
}

/// Serves `gateway` with `axum::serve` until `root` is done, then shuts down gracefully:
/// requests in flight are canceled with `root`'s cause (their ctx are its children) and
/// answer, connections close, and this returns.
///
/// # Errors
///
/// What `axum::serve` returns.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let (root, shutdown) = ctx_tokio::background().with_cancel();
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let gw = ctx_examples::Gateway::new("http://127.0.0.1:1".parse().unwrap(), ctx_examples::Version::Http1);
/// shutdown.cancel();
/// ctx_examples::serve_gateway(listener, gw, root).await?; // returns at once
/// # Ok(()) }
/// ```
pub async fn serve_gateway(listener: TcpListener, gateway: Gateway, root: Ctx) -> std::io::Result<()> {
    let router = gateway.router(root.clone());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            root.done().await;
        })
        .await
}
