//! A graceful drain, as in `docs/services.md` ("Graceful drain"): `ctx_examples::serve_drained`
//! serves a hyper service whose requests run under `ServerLayer::new(hard)`,
//! `hard = soft.with_grace(GRACE)`. A fast and a slow request are in flight when the server is
//! told to shut down: it takes no new connection, the fast request finishes within the grace
//! and answers 200, the slow one is canceled when the grace ends, sees the shutdown's cause and
//! answers 503; then the server returns.
//!
//! ```sh
//! cargo run -p ctx-examples --example drain
//! ```
//!
//! The shutdown here is a cancel with a cause, so that the example ends by itself; `soft` is
//! also wired to SIGINT and SIGTERM with `ctx_tokio::signal::shutdown`, as a real server is
//! (then the cause is `ctx_tokio::signal::Signal`, "received SIGTERM").

use std::convert::Infallible;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ctx_core::Ctx;
use ctx_examples::serve_drained;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// How long requests in flight may go on once shutdown has begun.
const GRACE: Duration = Duration::from_secs(1);

/// `/work?ms=N`: N ms of work under the request's ctx; 503 and the cause when the ctx ends
/// first. Tells `started` when it begins.
async fn work(
    req: http::Request<Incoming>,
    started: mpsc::UnboundedSender<()>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let ctx = req.extensions().get::<Ctx>().expect("ServerLayer is installed");
    let ms = req
        .uri()
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|ms| ms.parse().ok())
        .unwrap_or(0);
    let _ = started.send(());
    let (status, body) = match ctx.sleep(Duration::from_millis(ms)).await {
        Ok(()) => (http::StatusCode::OK, format!("worked {ms} ms")),
        Err(_) => (
            ctx_tower::status_for(ctx),
            format!("stopped: {}", ctx.cause().expect("a done ctx has a cause")),
        ),
    };
    Ok(http::Response::builder()
        .status(status)
        .body(Full::from(body))
        .expect("a valid response"))
}

/// `GET path` on a new HTTP/1.1 connection: the status and the body.
async fn get(addr: SocketAddr, path: &str) -> Result<(http::StatusCode, String), String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    get_on(stream, path).await
}

/// `GET path` on `stream`, a connection just made.
async fn get_on(stream: TcpStream, path: &str) -> Result<(http::StatusCode, String), String> {
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .body(Empty::<Bytes>::new())
        .expect("a valid request");
    let resp = send.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?;
    Ok((status, String::from_utf8_lossy(&body.to_bytes()).into_owned()))
}

/// Connects until the server refuses (it may take a moment to close its listener) and says
/// what each attempt got.
async fn connect_after_shutdown(addr: SocketAddr) -> String {
    let mut unanswered = 0;
    loop {
        match TcpStream::connect(addr).await {
            Err(e) if e.kind() == ErrorKind::ConnectionRefused => {
                return format!("refused (after {unanswered} closed unanswered)");
            }
            Err(_) => unanswered += 1, // reset as the listener closes
            Ok(stream) => match get_on(stream, "/work?ms=0").await {
                Ok((status, _)) => return format!("answered {status}"),
                Err(_) => unanswered += 1, // taken by the kernel, dropped by the server
            },
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // `soft`: done on SIGINT or SIGTERM (cause `ctx_tokio::signal::Signal`), or when `deploy`
    // cancels its parent, as it does below. A real server needs only the first line's call:
    // let (soft, _stop) = ctx_tokio::signal::shutdown(&ctx_tokio::background());
    let (root, deploy) = ctx_tokio::background().with_cancel_cause();
    let (soft, _stop) = ctx_tokio::signal::shutdown(&root);

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let app = tower::service_fn(move |req| work(req, started_tx.clone()));
    let server = tokio::spawn(serve_drained(listener, soft, GRACE, app));
    println!("listening on http://{addr}, grace {GRACE:?}");

    let t0 = Instant::now();
    let fast = tokio::spawn(async move { (get(addr, "/work?ms=200").await, t0.elapsed()) });
    let slow = tokio::spawn(async move { (get(addr, "/work?ms=10000").await, t0.elapsed()) });
    for _ in 0..2 {
        started.recv().await.expect("both requests reach the handler");
    }

    deploy.cancel("deploy v2");
    println!("shutdown at {}: deploy v2", ms(t0.elapsed()));
    let late = tokio::time::timeout(Duration::from_secs(5), connect_after_shutdown(addr))
        .await
        .unwrap_or_else(|_| "still open after 5 s".to_owned());
    println!("a new connection after shutdown: {late}");

    for (name, call) in [("fast (200 ms of work)", fast), ("slow (10 s of work)", slow)] {
        let (got, at) = call.await.expect("the client task does not panic");
        match got {
            Ok((status, body)) => println!("{name}: {status} {body:?} at {}", ms(at)),
            Err(e) => println!("{name}: failed: {e} at {}", ms(at)),
        }
    }
    server.await.expect("the server task does not panic");
    println!("drained at {}; exiting", ms(t0.elapsed()));
    Ok(())
}

/// A duration in whole milliseconds, for printing.
fn ms(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}
