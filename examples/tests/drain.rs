//! The graceful drain, `ctx_examples::serve_drained` (the recipe of `docs/services.md`,
//! "Graceful drain"), on loopback, with a hyper service and with an axum `Router`, over HTTP/1.1
//! and HTTP/2: once `soft` is done no new connection or request is taken, a request in flight
//! that ends within the grace answers in full, one still running when the grace ends is
//! canceled with the shutdown's cause (and answers 503), and a handler that ignores its ctx
//! loses its connection a moment later. `axum::serve` with `with_graceful_shutdown` is held to
//! the promises it keeps too.
//!
//! Each test runs one body over a table of cases (server × protocol); every failure names its
//! case.
//!
//! The server's root is a `MockClock`'s, so the grace passes when a test advances the clock:
//! no real wait for any deadline, and time moves only where the test says. tokio's paused time
//! does as well on loopback (one test runs on it) but moves by itself: whenever the runtime
//! finds nothing to do, it jumps to the next timer, the grace's included. Sockets are real, so
//! every wait has a watchdog.

use std::convert::Infallible;
use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Extension, State};
use ctx_core::{CancelCauseHandle, CancelHandle, Cause, Ctx};
use ctx_examples::{LAST_WORD, serve_drained};
use ctx_testkit::MockClock;
use ctx_tower::ServerLayer;
use http::{Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

/// The watchdog of every wait.
const LIMIT: Duration = Duration::from_secs(10);
/// The grace period of every server here (on the mock clock: it costs no real time).
const GRACE: Duration = Duration::from_secs(30);
/// A step of the mock clock short of a deadline.
const TICK: Duration = Duration::from_millis(1);

// ===== the application =====

/// The shutdown's cause in these tests (`ctx_tokio::signal::Signal` in production).
#[derive(Debug)]
struct Deploy;

impl fmt::Display for Deploy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deploy")
    }
}

impl std::error::Error for Deploy {}

/// A full answer: large enough to take several writes.
fn full_body() -> Bytes {
    Bytes::from((0..256 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>())
}

/// What a handler saw when it ended.
#[derive(Debug)]
struct Ended {
    status: StatusCode,
    /// The cause of its ctx, when the ctx was done before it answered.
    cause: Option<Cause>,
}

/// The handlers' side of a test: every request's ctx as it arrives, how each one ended, and
/// the ctx whose end releases `/wait` and `/stuck`.
#[derive(Clone)]
struct App {
    arrived: mpsc::UnboundedSender<Ctx>,
    ended: mpsc::UnboundedSender<Ended>,
    release: Ctx,
}

impl App {
    /// `/wait` answers 200 with `full_body()` once released, or `status_for(&ctx)` once its
    /// ctx is done; `/stuck` ignores its ctx and waits for the release; anything else answers
    /// 200 at once.
    async fn answer(&self, path: &str, ctx: Ctx) -> (StatusCode, Bytes) {
        let _ = self.arrived.send(ctx.clone());
        let (status, body, cause) = match path {
            "/wait" => tokio::select! {
                _ = self.release.done() => (StatusCode::OK, full_body(), None),
                _ = ctx.done() => {
                    let cause = ctx.cause().expect("a done ctx has a cause");
                    (ctx_tower::status_for(&ctx), Bytes::from(format!("gave up: {cause}")), Some(cause))
                }
            },
            "/stuck" => {
                let _ = self.release.done().await;
                (StatusCode::OK, full_body(), None)
            }
            _ => (StatusCode::OK, full_body(), None),
        };
        let _ = self.ended.send(Ended { status, cause });
        (status, body)
    }
}

/// The application as a plain hyper service.
fn hyper_app(
    app: App,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    tower::service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        async move {
            let ctx = req.extensions().get::<Ctx>().expect("ServerLayer's ctx").clone();
            let (status, body) = app.answer(req.uri().path(), ctx).await;
            let mut resp = Response::new(Full::new(body));
            *resp.status_mut() = status;
            Ok(resp)
        }
    })
}

/// The same application as an axum `Router`, its ctx taken with `Extension<Ctx>`.
fn axum_app(app: App) -> axum::Router {
    async fn handler(
        State(app): State<App>,
        Extension(ctx): Extension<Ctx>,
        uri: Uri,
    ) -> (StatusCode, Bytes) {
        app.answer(uri.path(), ctx).await
    }
    axum::Router::new().fallback(handler).with_state(app)
}

// ===== the cases =====

#[derive(Clone, Copy, Debug)]
enum Stack {
    /// The recipe, serving a hyper service.
    Hyper,
    /// The recipe, serving an axum `Router`.
    Axum,
    /// `axum::serve(..).with_graceful_shutdown(..)`, with the `Router` under
    /// `ServerLayer::new(hard)`: it drains the same way, but it cuts no stuck handler off, and
    /// it hears of the shutdown through a task of its own, racing it against `accept`: now and
    /// then (1 in a few hundred tries, on two threads) it still answers a connection made just
    /// after the shutdown.
    AxumServe,
}

/// The recipe, with hyper and with axum.
const STACKS: [Stack; 2] = [Stack::Hyper, Stack::Axum];
/// The recipe, and `axum::serve` where it keeps the same promise.
const DRAINING: [Stack; 3] = [Stack::Hyper, Stack::Axum, Stack::AxumServe];

#[derive(Clone, Copy, Debug)]
enum Proto {
    Http1,
    Http2,
}

const PROTOS: [Proto; 2] = [Proto::Http1, Proto::Http2];

/// One row of a test's table: a server, and the protocol its clients speak. Shown as
/// `Hyper Http2` in every failure message.
#[derive(Clone, Copy, Debug)]
struct Case {
    stack: Stack,
    proto: Proto,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} {:?}", self.stack, self.proto)
    }
}

/// Every server of `stacks` with every protocol.
fn cases(stacks: &[Stack]) -> impl Iterator<Item = Case> + '_ {
    stacks
        .iter()
        .flat_map(|&stack| PROTOS.map(|proto| Case { stack, proto }))
}

// ===== a server under test =====

struct Server {
    /// What is under test, for failure messages.
    case: Case,
    addr: SocketAddr,
    clock: MockClock,
    shutdown: CancelCauseHandle,
    /// The shutdown's cause, given by `shut_down`.
    why: Cause,
    release: CancelHandle,
    arrived: mpsc::UnboundedReceiver<Ctx>,
    ended: mpsc::UnboundedReceiver<Ended>,
    /// The serving task: it ends once the drain is over.
    returned: JoinHandle<()>,
}

/// A request in flight: its connection, the call (answered in a task) and the ctx its handler
/// got.
struct InFlight {
    _client: Client,
    call: JoinHandle<Answer>,
    ctx: Ctx,
}

impl Server {
    /// A server whose root is a `MockClock`'s: `clock.advance` moves its grace.
    async fn start(case: Case) -> Server {
        let clock = MockClock::new();
        Server::start_on(case, clock.background(), clock).await
    }

    /// A server of `case`, with a request to `path` in flight on it: shutdown has begun.
    async fn shut_down_during(case: Case, path: &str) -> (Server, InFlight) {
        let mut server = Server::start(case).await;
        let in_flight = server.in_flight(path).await;
        server.shut_down();
        (server, in_flight)
    }

    /// A server whose `soft` is a child of `root` (`clock` is the tests' to advance, if it is
    /// `root`'s).
    async fn start_on(case: Case, root: Ctx, clock: MockClock) -> Server {
        let (soft, shutdown) = root.with_cancel_cause();
        let (release_ctx, release) = Ctx::background().with_cancel();
        let (arrived_tx, arrived) = mpsc::unbounded_channel();
        let (ended_tx, ended) = mpsc::unbounded_channel();
        let app = App {
            arrived: arrived_tx,
            ended: ended_tx,
            release: release_ctx,
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let returned = match case.stack {
            Stack::Hyper => tokio::spawn(serve_drained(listener, soft, GRACE, hyper_app(app))),
            Stack::Axum => tokio::spawn(serve_drained(listener, soft, GRACE, axum_app(app))),
            Stack::AxumServe => tokio::spawn(async move {
                let (hard, _keep_hard) = soft.with_grace(GRACE);
                let app = axum_app(app).layer(ServerLayer::new(hard));
                let shutdown = async move {
                    soft.done().await;
                };
                axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                    .expect("axum::serve never fails");
            }),
        };
        Server {
            case,
            addr,
            clock,
            shutdown,
            why: Arc::new(Deploy),
            release,
            arrived,
            ended,
            returned,
        }
    }

    /// Sends `GET path` on a new connection and waits until it reaches a handler.
    async fn in_flight(&mut self, path: &str) -> InFlight {
        let mut client = Client::connect(self.addr, self.case.proto).await.unwrap();
        let call = client.get(path);
        let ctx = self.arrived().await;
        InFlight {
            _client: client,
            call,
            ctx,
        }
    }

    /// The ctx of the next request to reach a handler.
    async fn arrived(&mut self) -> Ctx {
        let case = self.case;
        timeout(LIMIT, self.arrived.recv())
            .await
            .unwrap_or_else(|_| panic!("{case}: a request reached a handler"))
            .expect("the server is alive")
    }

    /// How the next handler to answer ended.
    async fn ended(&mut self) -> Ended {
        let case = self.case;
        timeout(LIMIT, self.ended.recv())
            .await
            .unwrap_or_else(|_| panic!("{case}: a handler answered"))
            .expect("the server is alive")
    }

    /// `soft` is done, with `self.why` as its cause.
    fn shut_down(&self) {
        self.shutdown.cancel(self.why.clone());
    }

    /// Waits for the server to return, which it does once the drain is over.
    async fn drained(self) {
        let case = self.case;
        timeout(LIMIT, self.returned)
            .await
            .unwrap_or_else(|_| panic!("{case}: the server returns once drained"))
            .expect("the server does not panic");
    }
}

// ===== clients =====

/// What a client got: the status and the whole body, or hyper's error.
type Answer = Result<(StatusCode, Bytes), hyper::Error>;

enum Sender {
    Http1(hyper::client::conn::http1::SendRequest<Empty<Bytes>>),
    Http2(hyper::client::conn::http2::SendRequest<Empty<Bytes>>),
}

/// One client connection; `conn` is the task that drives it, which ends when it closes.
struct Client {
    send: Sender,
    conn: JoinHandle<()>,
}

impl Client {
    async fn connect(addr: SocketAddr, proto: Proto) -> std::io::Result<Client> {
        let io = TokioIo::new(TcpStream::connect(addr).await?);
        let (send, conn) = match proto {
            Proto::Http1 => {
                let (send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                (Sender::Http1(send), tokio::spawn(async move { drop(conn.await) }))
            }
            Proto::Http2 => {
                let (send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
                (Sender::Http2(send), tokio::spawn(async move { drop(conn.await) }))
            }
        };
        Ok(Client { send, conn })
    }

    /// Sends `GET path` and reads the whole answer (in a task, so that it can be in flight
    /// while the test goes on).
    fn get(&mut self, path: &str) -> JoinHandle<Answer> {
        let req = Request::get(format!("http://drain.test{path}"))
            .body(Empty::new())
            .unwrap();
        let resp = match &mut self.send {
            Sender::Http1(send) => tokio::spawn(send.send_request(req)),
            Sender::Http2(send) => tokio::spawn(send.send_request(req)),
        };
        tokio::spawn(async move {
            let resp = resp.await.expect("the call does not panic")?;
            let status = resp.status();
            Ok((status, resp.into_body().collect().await?.to_bytes()))
        })
    }

    /// Whether the connection takes another request.
    async fn ready(&mut self) -> bool {
        match &mut self.send {
            Sender::Http1(send) => timeout(LIMIT, send.ready()).await.unwrap().is_ok(),
            Sender::Http2(send) => timeout(LIMIT, send.ready()).await.unwrap().is_ok(),
        }
    }
}

async fn answer(case: Case, call: JoinHandle<Answer>) -> Answer {
    timeout(LIMIT, call)
        .await
        .unwrap_or_else(|_| panic!("{case}: the call is answered or fails, it does not hang"))
        .expect("the call does not panic")
}

// ===== requests in flight =====

#[tokio::test]
async fn a_request_in_flight_that_ends_within_the_grace_answers_in_full() {
    for case in cases(&DRAINING) {
        let (mut server, wait) = Server::shut_down_during(case, "/wait").await;
        server.clock.advance(GRACE - TICK);
        assert_eq!(wait.ctx.err(), None, "{case}: the grace is not over");
        server.release.cancel(); // the handler's work is done
        let (status, body) = answer(case, wait.call).await.expect("answered");
        assert_eq!(status, StatusCode::OK, "{case}");
        assert!(body == full_body(), "{case}: the whole body");
        assert!(server.ended().await.cause.is_none(), "{case}");
        server.drained().await;
    }
}

#[tokio::test]
async fn a_request_still_running_when_the_grace_ends_sees_the_shutdowns_cause_and_answers_503() {
    for case in cases(&DRAINING) {
        let (mut server, wait) = Server::shut_down_during(case, "/wait").await;
        server.clock.advance(GRACE - TICK);
        assert_eq!(wait.ctx.err(), None, "{case}: the grace is not over");
        server.clock.advance(TICK); // now it is
        let ended = server.ended().await;
        assert_eq!(ended.status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
        let cause = ended.cause.expect("the handler saw its ctx end");
        assert!(
            Arc::ptr_eq(&cause, &server.why),
            "{case}: the handler sees the shutdown's own cause, got {cause}"
        );
        let (status, body) = answer(case, wait.call).await.expect("answered");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
        assert_eq!(body, "gave up: deploy", "{case}");
        server.drained().await;
    }
}

#[tokio::test]
async fn a_handler_that_ignores_its_ctx_loses_its_connection_a_moment_after_the_grace() {
    for case in cases(&STACKS) {
        let (server, stuck) = Server::shut_down_during(case, "/stuck").await;
        server.clock.advance(GRACE);
        assert!(stuck.ctx.is_done(), "{case}: the grace is over");
        server.clock.advance(LAST_WORD - TICK);
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            !stuck.call.is_finished() && !server.returned.is_finished(),
            "{case}: the handler still has a moment"
        );
        server.clock.advance(TICK);
        assert!(
            answer(case, stuck.call).await.is_err(),
            "{case}: the connection is closed under the stuck handler"
        );
        server.drained().await;
    }
}

// ===== nothing new once shutdown is done =====

#[tokio::test]
async fn once_shutdown_is_done_no_new_connection_is_taken() {
    for case in cases(&STACKS) {
        // A request in flight keeps the server draining (and so alive) through the test.
        let (mut server, busy) = Server::shut_down_during(case, "/wait").await;
        // Connect until refused: the kernel may still complete a handshake or two before the
        // server drops its listener (or reset one as it does), but none of those connections
        // is answered.
        let refused = timeout(LIMIT, async {
            loop {
                match Client::connect(server.addr, case.proto).await {
                    // A handshake cut by the listener's close, as it closes.
                    Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
                    Err(e) => return e,
                    Ok(mut late) => {
                        let got = answer(case, late.get("/")).await;
                        assert!(got.is_err(), "{case}: answered {got:?}");
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{case}: connections are refused once the listener is dropped"));
        assert_eq!(refused.kind(), ErrorKind::ConnectionRefused, "{case}");
        assert!(
            server.arrived.try_recv().is_err(),
            "{case}: no new request reached a handler"
        );
        assert!(!server.returned.is_finished(), "{case}: still draining");
        server.release.cancel();
        assert_eq!(answer(case, busy.call).await.unwrap().0, StatusCode::OK, "{case}");
        server.drained().await;
    }
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_at_shutdown_and_takes_no_new_request() {
    for case in cases(&DRAINING) {
        let mut server = Server::start(case).await;
        let mut idle = Client::connect(server.addr, case.proto).await.unwrap();
        assert_eq!(
            answer(case, idle.get("/")).await.unwrap().0,
            StatusCode::OK,
            "{case}"
        );
        server.arrived().await;
        assert!(idle.ready().await, "{case}: kept alive for the next request");
        let busy = server.in_flight("/wait").await;
        server.shut_down();
        // The server closes the idle connection at once, while the other one still drains.
        timeout(LIMIT, &mut idle.conn)
            .await
            .unwrap_or_else(|_| panic!("{case}: the server closes the idle connection"))
            .unwrap();
        assert!(!idle.ready().await, "{case}: no new request");
        assert!(!server.returned.is_finished(), "{case}: still draining");
        server.release.cancel();
        assert_eq!(answer(case, busy.call).await.unwrap().0, StatusCode::OK, "{case}");
        assert!(
            server.arrived.try_recv().is_err(),
            "{case}: no new request reached a handler"
        );
        server.drained().await;
    }
}

// ===== on tokio's clock =====

#[tokio::test(start_paused = true)]
async fn on_tokios_paused_clock_the_grace_is_tokios_time() {
    // The production root: `ctx_tokio::background()`, whose timers are tokio's. Paused, the
    // runtime jumps to the next timer whenever it is idle: the sleeps below return at once.
    for stack in STACKS {
        let case = Case {
            stack,
            proto: Proto::Http1,
        };
        let mut server = Server::start_on(case, ctx_tokio::background(), MockClock::new()).await;
        let wait = server.in_flight("/wait").await;
        server.shut_down();
        let shut_at = tokio::time::Instant::now();
        tokio::time::sleep(GRACE - TICK).await;
        assert_eq!(wait.ctx.err(), None, "{case}: the grace is not over");
        let (status, body) = answer(case, wait.call).await.expect("answered");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{case}");
        assert_eq!(body, "gave up: deploy", "{case}");
        assert_eq!(shut_at.elapsed(), GRACE, "{case}: canceled when the grace ended");
        server.drained().await;
    }
}

// ===== the page shows this function =====

/// The text of `async fn serve_drained` in `source` up to its closing brace, without comments
/// or whitespace.
fn serve_drained_tokens(source: &str) -> String {
    let start = source
        .find("async fn serve_drained")
        .expect("the source defines serve_drained");
    let len = source[start..]
        .find("\n}\n")
        .expect("serve_drained ends with a `}` line");
    source[start..start + len]
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .flat_map(str::chars)
        .filter(|c| !c.is_whitespace())
        .collect()
}

#[test]
fn the_services_page_shows_the_very_serve_drained_these_tests_run() {
    let page = serve_drained_tokens(include_str!("../../docs/services.md"));
    // The library names the last word; the page spells it out.
    assert_eq!(LAST_WORD, Duration::from_secs(1));
    let library =
        serve_drained_tokens(include_str!("../src/drain.rs")).replace("LAST_WORD", "Duration::from_secs(1)");
    assert_eq!(
        page, library,
        "docs/services.md's serve_drained is src/drain.rs's"
    );
}
