//! `ServerLayer` and `ClientLayer` under hyper, on loopback: what a request's ctx reads when
//! hyper drops a body it never sends, and how many calls one canceled fan-out may drop on an
//! HTTP/2 connection. Real sockets, so short real-time waits, each under a watchdog.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_tower::{ClientDisconnected, ClientError, ClientLayer, ServerLayer};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;
use tower::{Layer, Service, ServiceExt};

/// The watchdog of every wait.
const LIMIT: Duration = Duration::from_secs(10);

/// Every request's ctx, in the order the handler saw them.
type Seen = Arc<Mutex<Vec<Ctx>>>;

/// The handler: `/204`, `/304` answer that status; `/wait` waits for `release` (then 200) or
/// for its ctx (then 503); anything else answers 200 with a body (HEAD included: hyper does
/// not send it).
async fn handler(
    req: Request<Incoming>,
    seen: Seen,
    release: Ctx,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let ctx = req.extensions().get::<Ctx>().expect("ServerLayer's ctx").clone();
    seen.lock().unwrap().push(ctx.clone());
    let status = match req.uri().path() {
        "/204" => StatusCode::NO_CONTENT,
        "/304" => StatusCode::NOT_MODIFIED,
        "/wait" => tokio::select! {
            _ = release.done() => StatusCode::OK,
            _ = ctx.done() => StatusCode::SERVICE_UNAVAILABLE,
        },
        _ => StatusCode::OK,
    };
    let mut resp = Response::new(Full::new(Bytes::from_static(b"a body")));
    *resp.status_mut() = status;
    Ok(resp)
}

/// A server on loopback: its address, what its handler saw, and the handle that releases
/// every `/wait`.
struct Server {
    addr: std::net::SocketAddr,
    seen: Seen,
    release: ctx_core::CancelHandle,
}

/// Serves `handler` under `ServerLayer` with `builder`'s settings.
async fn serve(builder: auto::Builder<TokioExecutor>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let (release_ctx, release) = Ctx::background().with_cancel();
    let app = {
        let seen = seen.clone();
        tower::service_fn(move |req| handler(req, seen.clone(), release_ctx.clone()))
    };
    let service = ServerLayer::new(ctx_tokio::background()).layer(app);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            let builder = builder.clone();
            tokio::spawn(async move {
                let _ = builder.serve_connection(TokioIo::new(stream), service).await;
            });
        }
    });
    Server { addr, seen, release }
}

/// The `n`th ctx the handler saw, once it is there.
async fn nth(seen: &Seen, n: usize) -> Ctx {
    timeout(LIMIT, async {
        loop {
            if let Some(ctx) = seen.lock().unwrap().get(n) {
                return ctx.clone();
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the request reached the handler")
}

// ===== bodies the server never sends =====

#[tokio::test]
async fn head_204_and_304_on_a_kept_alive_http1_connection_end_with_plain_canceled() {
    let Server {
        addr,
        seen,
        release: _release,
    } = serve(auto::Builder::new(TokioExecutor::new())).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let asks = [
        (Method::HEAD, "/"),
        (Method::GET, "/204"),
        (Method::GET, "/304"),
        (Method::GET, "/"),
    ];
    for (i, (method, path)) in asks.into_iter().enumerate() {
        let req = Request::builder()
            .method(method.clone())
            .uri(path)
            .body(Empty::<Bytes>::new())
            .unwrap();
        timeout(LIMIT, send.ready())
            .await
            .unwrap()
            .expect("the same connection is still open");
        let resp = timeout(LIMIT, send.send_request(req)).await.unwrap().unwrap();
        let body = timeout(LIMIT, resp.into_body().collect())
            .await
            .unwrap()
            .unwrap()
            .to_bytes();
        let ctx = nth(&seen, i).await;
        assert_eq!(
            timeout(LIMIT, ctx.done()).await.unwrap(),
            Error::Canceled,
            "{method} {path}"
        );
        assert!(
            !ctx.cause().unwrap().is::<ClientDisconnected>(),
            "{method} {path}: the client is still here and sends the next request"
        );
        assert_eq!(
            body.is_empty(),
            method == Method::HEAD || path != "/",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn a_client_that_closes_its_http1_connection_mid_request_is_still_a_disconnect() {
    let Server {
        addr,
        seen,
        release: _release,
    } = serve(auto::Builder::new(TokioExecutor::new())).await;
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let req = Request::get("/wait").body(Empty::<Bytes>::new()).unwrap();
    let call = tokio::spawn(async move { send.send_request(req).await });
    let ctx = nth(&seen, 0).await;
    call.abort();
    conn.abort(); // the client goes away
    assert_eq!(timeout(LIMIT, ctx.done()).await.unwrap(), Error::Canceled);
    assert!(ctx.cause().unwrap().is::<ClientDisconnected>());
}

// ===== HTTP/2: a canceled fan-out on one connection =====

/// One HTTP/2 connection to `addr` behind `ClientLayer`.
async fn h2_client(
    addr: std::net::SocketAddr,
) -> impl Service<
    Request<Empty<Bytes>>,
    Response = Response<Incoming>,
    Error = ClientError<hyper::Error>,
    Future: Send,
> + Clone {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let app = tower::service_fn(move |req| {
        let mut send = send.clone();
        async move { send.send_request(req).await }
    });
    ClientLayer::new().layer(app)
}

fn with_ctx(path: &str, ctx: &Ctx) -> Request<Empty<Bytes>> {
    let mut req = Request::get(format!("http://ctx.test{path}"))
        .body(Empty::new())
        .unwrap();
    req.extensions_mut().insert(ctx.clone());
    req
}

/// When the fan-out's ctx is canceled.
#[derive(Clone, Copy, Debug)]
enum CancelAt {
    /// In the task that fans out, right after hyper's connection task has sent the requests
    /// (one scheduler turn): the resets follow the requests before the server took them.
    Sent,
    /// Once every call has reached its handler.
    AllArrived,
}

/// On one HTTP/2 connection: `bystanders` calls under a ctx of their own wait on the server;
/// then `n` calls under one ctx are started and that ctx is canceled (every call dropped,
/// every stream sent is reset). Returns how many bystanders were answered 200 once released:
/// all of them when the connection survived.
async fn canceled_fan_out(
    builder: auto::Builder<TokioExecutor>,
    n: usize,
    bystanders: usize,
    at: CancelAt,
) -> usize {
    let server = serve(builder).await;
    let client = h2_client(server.addr).await;
    let (calm, _keep) = Ctx::background().with_cancel();
    let waiting: Vec<_> = (0..bystanders)
        .map(|_| tokio::spawn(client.clone().oneshot(with_ctx("/wait", &calm))))
        .collect();
    nth(&server.seen, bystanders - 1).await;
    let (fan, cancel) = Ctx::background().with_cancel();
    let fan_out = futures::future::join_all((0..n).map(|_| client.clone().oneshot(with_ctx("/wait", &fan))));
    let mut fan_out = std::pin::pin!(fan_out);
    assert!(
        futures::poll!(fan_out.as_mut()).is_pending(),
        "every request handed to hyper"
    );
    match at {
        CancelAt::Sent => tokio::task::yield_now().await,
        CancelAt::AllArrived => drop(nth(&server.seen, bystanders + n - 1).await),
    }
    cancel.cancel();
    let outs = timeout(LIMIT, fan_out)
        .await
        .expect("the fan-out ends with its ctx");
    assert!(
        outs.iter()
            .all(|o| matches!(o, Err(ClientError::Done(Error::Canceled)))),
        "every call of the fan-out is dropped"
    );
    // A call sent after the resets is answered only once the server has read them (frames of
    // one connection are read in order): it fails when they ended the connection.
    let probe = timeout(LIMIT, client.clone().oneshot(with_ctx("/", &calm))).await;
    assert!(probe.is_ok(), "the probe is answered or fails, it does not hang");
    server.release.cancel();
    let mut answered = 0;
    for call in waiting {
        if let Ok(Ok(Ok(resp))) = timeout(LIMIT, call).await {
            answered += usize::from(resp.status() == StatusCode::OK);
        }
    }
    answered
}

/// The server recipe of `docs/services.md`: hyper's default guard against "rapid reset"
/// allows 20 streams reset before the server took them; a client's canceled fan-out resets up
/// to `max_concurrent_streams` of them at once (the rest were never sent).
fn recipe() -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http2()
        .max_concurrent_streams(200)
        .max_pending_accept_reset_streams(200);
    builder
}

#[tokio::test]
async fn with_hyper_defaults_21_calls_reset_at_once_fail_every_other_call_on_the_connection() {
    // What the recipe is for: past 20 streams reset before the server took them, h2 answers
    // `GOAWAY` (`ENHANCE_YOUR_CALM`, "too_many_resets") and the whole connection ends.
    let defaults = || auto::Builder::new(TokioExecutor::new());
    assert_eq!(
        canceled_fan_out(defaults(), 20, 4, CancelAt::Sent).await,
        4,
        "20 pass"
    );
    assert_eq!(
        canceled_fan_out(defaults(), 21, 4, CancelAt::Sent).await,
        0,
        "21 do not"
    );
    // Streams the server has taken already do not count.
    assert_eq!(
        canceled_fan_out(defaults(), 100, 4, CancelAt::AllArrived).await,
        4
    );
}

#[tokio::test]
async fn with_the_recipe_a_canceled_fan_out_of_1000_calls_leaves_the_connection_serving() {
    assert_eq!(canceled_fan_out(recipe(), 1000, 4, CancelAt::Sent).await, 4);
    assert_eq!(canceled_fan_out(recipe(), 196, 4, CancelAt::Sent).await, 4);
}
