//! Both layers driven by hand on a `MockClock`: every poll, every drop, every instant is the
//! test's. No runtime, no real time.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use ctx_core::{Cause, Ctx, Error};
use ctx_testkit::{MockClock, Probe};
use ctx_tower::{ClientDisconnected, ClientError, ClientLayer, CtxBody, ServerLayer, grpc_timeout};
use futures::FutureExt;
use http::{HeaderValue, Request, Response};
use http_body::{Body, Frame};
use tower::{Layer, Service, ServiceExt};

// ===== helpers =====

/// A body that yields its chunks one poll at a time; `None` in the list is one `Pending`.
struct Chunks {
    items: VecDeque<Option<&'static str>>,
}

impl Chunks {
    fn new(items: &[Option<&'static str>]) -> Chunks {
        Chunks {
            items: items.iter().copied().collect(),
        }
    }
}

impl Body for Chunks {
    type Data = &'static [u8];
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<&'static [u8]>, Infallible>>> {
        match self.items.pop_front() {
            None => Poll::Ready(None),
            Some(None) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Some(s)) => Poll::Ready(Some(Ok(Frame::data(s.as_bytes())))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.items.is_empty()
    }
}

/// Every ctx the handler saw, in order.
type Seen = Arc<Mutex<Vec<Ctx>>>;

/// One poll of a body.
type FramePoll<B> = Poll<Option<Result<Frame<<B as Body>::Data>, <B as Body>::Error>>>;

/// A server whose handler hands its ctx to the test and answers with `body`.
#[allow(clippy::type_complexity)] // an `impl Service<..>` spelled out once
fn server_with(
    root: Ctx,
    body: fn() -> Chunks,
) -> (
    impl Service<Request<()>, Response = Response<CtxBody<Chunks>>, Error = Infallible, Future: Send> + Clone,
    Seen,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let app = tower::service_fn({
        let seen = seen.clone();
        move |req: Request<()>| {
            let ctx = req.extensions().get::<Ctx>().expect("a ctx per request").clone();
            seen.lock().unwrap().push(ctx);
            async move { Ok::<_, Infallible>(Response::new(body())) }
        }
    });
    (ServerLayer::new(root).layer(app), seen)
}

fn last(seen: &Mutex<Vec<Ctx>>) -> Ctx {
    seen.lock().unwrap().last().expect("the handler ran").clone()
}

fn cause_is<E: std::error::Error + 'static>(ctx: &Ctx) -> bool {
    ctx.cause().is_some_and(|c: Cause| c.is::<E>())
}

fn poll_frame<B: Body + Unpin>(body: &mut B) -> FramePoll<B> {
    let waker = futures::task::noop_waker();
    Pin::new(body).poll_frame(&mut Context::from_waker(&waker))
}

fn request(header: Option<&'static str>) -> Request<()> {
    let mut req = Request::new(());
    if let Some(h) = header {
        req.headers_mut()
            .insert("grpc-timeout", HeaderValue::from_static(h));
    }
    req
}

// ===== server =====

#[test]
fn each_request_gets_a_live_child_of_the_root_without_a_deadline() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a")]));
    let _resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    assert_eq!(ctx.err(), None);
    assert_eq!(ctx.deadline(), None);
}

#[test]
fn a_grpc_timeout_header_sets_the_deadline_on_the_roots_clock() {
    let clock = MockClock::new();
    clock.advance(Duration::from_secs(7));
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a")]));
    let _resp = svc.call(request(Some("250m"))).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_millis(250)));
    clock.advance(Duration::from_millis(249));
    assert_eq!(ctx.err(), None);
    clock.advance(Duration::from_millis(1));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn a_request_deadline_never_outlives_the_roots() {
    let clock = MockClock::new();
    let (root, _c) = clock.background().with_timeout(Duration::from_secs(1));
    let (mut svc, seen) = server_with(root.clone(), || Chunks::new(&[Some("a")]));
    let _resp = svc.call(request(Some("5S"))).now_or_never().unwrap().unwrap();
    assert_eq!(last(&seen).deadline(), root.deadline());
}

#[test]
fn hostile_grpc_timeout_headers_are_ignored_or_saturated() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a")]));
    for bad in [
        "",
        "123456789S",
        "5x",
        "-5S",
        "+5S",
        " 5S",
        "5 S",
        "5s",
        "1.5S",
        "٥S",
    ] {
        let mut req = request(None);
        req.headers_mut()
            .insert("grpc-timeout", HeaderValue::from_bytes(bad.as_bytes()).unwrap());
        let _resp = svc.call(req).now_or_never().unwrap().unwrap();
        assert_eq!(last(&seen).deadline(), None, "{bad:?}");
    }
    // Many values of the header: one of them is read (the first), never a panic.
    let mut req = request(None);
    for v in ["bogus", "3S", "9H"].iter().cycle().take(300) {
        req.headers_mut()
            .append("grpc-timeout", HeaderValue::from_static(v));
    }
    let _resp = svc.call(req).now_or_never().unwrap().unwrap();
    assert_eq!(last(&seen).deadline(), None);
    // The largest value is about 11,400 years: a deadline far away (or none), no panic.
    let _resp = svc
        .call(request(Some("99999999H")))
        .now_or_never()
        .unwrap()
        .unwrap();
    let ctx = last(&seen);
    assert!(
        ctx.deadline()
            .is_none_or(|d| d > clock.now() + Duration::from_secs(100 * 365 * 86400))
    );
    assert_eq!(ctx.err(), None);
}

#[test]
fn a_response_future_dropped_before_the_answer_cancels_with_client_disconnected() {
    let clock = MockClock::new();
    let seen = Arc::new(Mutex::new(None));
    let app = tower::service_fn({
        let seen = seen.clone();
        move |req: Request<()>| {
            let ctx = req.extensions().get::<Ctx>().unwrap().clone();
            *seen.lock().unwrap() = Some(ctx.clone());
            async move {
                let err = ctx.done().await; // a handler that waits
                Ok::<_, Infallible>(Response::new(Chunks::new(&[Some(if err.is_timeout() {
                    "t"
                } else {
                    "c"
                })])))
            }
        }
    });
    let mut svc = ServerLayer::new(clock.background()).layer(app);
    let mut fut = Probe::new(svc.call(request(Some("10S"))));
    fut.assert_pending();
    let ctx = seen.lock().unwrap().clone().unwrap();
    assert_eq!(ctx.err(), None);
    fut.drop_future();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<ClientDisconnected>(&ctx));
    assert_eq!(
        clock.pending_timers(),
        0,
        "the deadline timer goes with the request"
    );
}

#[test]
fn children_the_handler_derived_see_client_disconnected_not_their_own_handles_drop() {
    let clock = MockClock::new();
    let seen = Arc::new(Mutex::new(None));
    let app = tower::service_fn({
        let seen = seen.clone();
        move |req: Request<()>| {
            let ctx = req.extensions().get::<Ctx>().unwrap().clone();
            // `Go: ctx, cancel := context.WithCancel(r.Context()); defer cancel()`
            let (child, cancel) = ctx.with_cancel();
            *seen.lock().unwrap() = Some(child.clone());
            async move {
                let _cancel = cancel; // dropped with the handler's future
                child.done().await;
                Ok::<_, Infallible>(Response::new(Chunks::new(&[])))
            }
        }
    });
    let mut svc = ServerLayer::new(clock.background()).layer(app);
    let mut fut = Probe::new(svc.call(request(None)));
    fut.assert_pending();
    fut.drop_future();
    let child = seen.lock().unwrap().clone().unwrap();
    assert!(cause_is::<ClientDisconnected>(&child), "{:?}", child.cause());
}

#[test]
fn a_body_dropped_before_its_end_cancels_with_client_disconnected() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a"), Some("b")]));
    let resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    let mut body = resp.into_body();
    assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert_eq!(ctx.err(), None, "the body is still streaming");
    drop(body);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<ClientDisconnected>(&ctx));
}

#[test]
fn a_streaming_body_keeps_its_ctx_alive_until_the_last_frame_then_cancels_plainly() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || {
        Chunks::new(&[Some("a"), None, Some("b"), None])
    });
    let resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    let mut body = resp.into_body();
    assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert!(poll_frame(&mut body).is_pending());
    assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Ok(_)))));
    assert!(poll_frame(&mut body).is_pending());
    assert_eq!(ctx.err(), None, "still streaming");
    assert!(matches!(poll_frame(&mut body), Poll::Ready(None)));
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<Error>(&ctx), "plain cancel, not a disconnect");
    drop(body);
    assert!(cause_is::<Error>(&ctx), "dropping an ended body changes nothing");
}

#[test]
fn a_body_that_says_it_is_over_ends_the_request_without_another_poll() {
    let clock = MockClock::new();
    // Ends after its only frame (servers then stop polling and drop it)...
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("only")]));
    let resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    let mut body = resp.into_body();
    assert!(matches!(poll_frame(&mut body), Poll::Ready(Some(Ok(_)))));
    drop(body);
    assert!(cause_is::<Error>(&ctx), "not a disconnect: {:?}", ctx.cause());
    // ... or is empty from the start (never polled at all).
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[]));
    let resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    assert_eq!(
        ctx.err(),
        Some(Error::Canceled),
        "the handler returned an empty body"
    );
    drop(resp);
    assert!(cause_is::<Error>(&ctx));
}

#[test]
fn a_request_with_a_deadline_is_one_context_that_ends_like_any_other() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a"), Some("b")]));

    // One node below the root, not a deadline under a cancel node.
    let resp = svc.call(request(Some("5S"))).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    let shown = ctx.to_string();
    assert!(
        shown.starts_with("context.Background.WithDeadline(") && !shown.contains("WithCancel"),
        "{shown}"
    );
    // Read to its end: plain `Canceled`, and the deadline passing later changes nothing.
    let mut body = resp.into_body();
    while let Poll::Ready(Some(_)) = poll_frame(&mut body) {}
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<Error>(&ctx), "plain cancel: {:?}", ctx.cause());
    drop(body);
    clock.advance(Duration::from_secs(10));
    assert_eq!(ctx.err(), Some(Error::Canceled));

    // Dropped before its end: `ClientDisconnected`, though it has a deadline.
    let resp = svc.call(request(Some("5S"))).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    drop(resp);
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<ClientDisconnected>(&ctx), "{:?}", ctx.cause());

    // Left open past its deadline: `DeadlineExceeded`, and ending it afterwards changes nothing.
    let resp = svc.call(request(Some("5S"))).now_or_never().unwrap().unwrap();
    let ctx = last(&seen);
    clock.advance(Duration::from_secs(5));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    drop(resp);
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    assert!(
        ctx.cause()
            .is_some_and(|c| c.downcast_ref::<Error>() == Some(&Error::DeadlineExceeded))
    );

    // Without the header: one `WithCancel` node.
    let _resp = svc.call(request(None)).now_or_never().unwrap().unwrap();
    assert_eq!(last(&seen).to_string(), "context.Background.WithCancel");
}

#[test]
fn an_inner_error_ends_the_request_plainly() {
    let clock = MockClock::new();
    let seen = Arc::new(Mutex::new(None));
    let app = tower::service_fn({
        let seen = seen.clone();
        move |req: Request<()>| {
            *seen.lock().unwrap() = req.extensions().get::<Ctx>().cloned();
            async { Err::<Response<Chunks>, _>("boom") }
        }
    });
    let mut svc = ServerLayer::new(clock.background()).layer(app);
    assert_eq!(
        svc.call(request(None)).now_or_never().unwrap().unwrap_err(),
        "boom"
    );
    let ctx = seen.lock().unwrap().clone().unwrap();
    assert_eq!(ctx.err(), Some(Error::Canceled));
    assert!(cause_is::<Error>(&ctx));
}

#[derive(Debug)]
struct ShuttingDown;
impl std::fmt::Display for ShuttingDown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("shutting down")
    }
}
impl std::error::Error for ShuttingDown {}

#[test]
fn canceling_the_root_cancels_every_request_in_flight_with_the_roots_cause() {
    let clock = MockClock::new();
    let (root, shutdown) = clock.background().with_cancel_cause();
    let (mut svc, seen) = server_with(root, || Chunks::new(&[Some("a"), Some("b")]));
    let bodies: Vec<_> = ["1S", "2S"]
        .into_iter()
        .map(Some)
        .chain([None])
        .map(|h| svc.call(request(h)).now_or_never().unwrap().unwrap())
        .collect();
    let cause: Cause = Arc::new(ShuttingDown);
    shutdown.cancel(cause.clone());
    for ctx in seen.lock().unwrap().iter() {
        assert_eq!(ctx.err(), Some(Error::Canceled));
        assert!(Arc::ptr_eq(&ctx.cause().unwrap(), &cause), "the root's own cause");
        let (work, _c) = ctx.with_timeout(Duration::from_secs(1));
        assert_eq!(
            work.err(),
            Some(Error::Canceled),
            "new work derived from it stops"
        );
    }
    drop(bodies); // too late to change anything
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|c| c.cause().unwrap().is::<ShuttingDown>())
    );
}

#[test]
fn no_timer_is_armed_unless_the_handler_waits() {
    let clock = MockClock::new();
    let (mut svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a")]));
    let resp = svc.call(request(Some("5S"))).now_or_never().unwrap().unwrap();
    assert_eq!(clock.pending_timers(), 0);
    let ctx = last(&seen);
    let mut done = Probe::new(ctx.done());
    done.assert_pending(); // the handler waits: now there is a timer
    assert_eq!(clock.pending_timers(), 1);
    drop(resp); // the request ends: its timer goes
    assert_eq!(clock.pending_timers(), 0);
    assert_eq!(done.assert_ready(), Error::Canceled);
}

#[test]
fn the_services_are_clone_and_their_futures_send() {
    fn send<T: Send>(_: &T) {}
    let (svc, _seen) = server_with(Ctx::background(), || Chunks::new(&[]));
    let mut svc2 = svc.clone();
    send(&svc2.call(request(None)));
    let mut client = ClientLayer::new().layer(svc);
    send(&client.clone().call(request(None)));
    drop(client.call(request(None)));
}

#[test]
fn the_public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<ServerLayer>();
    send_sync::<ClientLayer>();
    send_sync::<ClientDisconnected>();
    send_sync::<ClientError<std::io::Error>>();
    send_sync::<CtxBody<String>>();
    send_sync::<ctx_tower::ServerService<Recorder>>();
    send_sync::<ctx_tower::ClientService<Recorder>>();
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    error::<ClientDisconnected>();
    error::<ClientError<std::io::Error>>();
}

// ===== server: timeouts of its own =====

/// A server under `layer` whose handler hands its ctx to the test and answers `status` with
/// a one-frame body, for a request of `method`.
fn call_with(
    layer: &ServerLayer,
    method: http::Method,
    status: u16,
    header: Option<&'static str>,
) -> (Ctx, Response<CtxBody<Chunks>>) {
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let app = tower::service_fn({
        let seen = seen.clone();
        move |req: Request<()>| {
            seen.lock()
                .unwrap()
                .push(req.extensions().get::<Ctx>().unwrap().clone());
            let mut resp = Response::new(Chunks::new(&[Some("body")]));
            *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
            async move { Ok::<_, Infallible>(resp) }
        }
    });
    let mut req = request(header);
    *req.method_mut() = method;
    let resp = layer
        .clone()
        .layer(app)
        .call(req)
        .now_or_never()
        .unwrap()
        .unwrap();
    (last(&seen), resp)
}

#[test]
fn default_timeout_is_the_deadline_of_a_request_without_a_grpc_timeout() {
    let clock = MockClock::new();
    let layer = ServerLayer::new(clock.background()).default_timeout(Duration::from_secs(3));
    let (ctx, _resp) = call_with(&layer, http::Method::GET, 200, None);
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(3)));
    clock.advance(Duration::from_secs(3));
    assert_eq!(ctx.err(), Some(Error::DeadlineExceeded));
    // An invalid header asks for nothing: the default applies.
    let (ctx, _resp) = call_with(&layer, http::Method::GET, 200, Some("3s"));
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(3)));
}

#[test]
fn default_timeout_leaves_a_request_that_asks_its_own_time() {
    let clock = MockClock::new();
    let layer = ServerLayer::new(clock.background()).default_timeout(Duration::from_secs(3));
    let (ctx, _resp) = call_with(&layer, http::Method::GET, 200, Some("10S"));
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(10)));
    let (ctx, _resp) = call_with(&layer, http::Method::GET, 200, Some("1S"));
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(1)));
}

#[test]
fn no_deadline_by_default() {
    let clock = MockClock::new();
    let (ctx, _resp) = call_with(
        &ServerLayer::new(clock.background()),
        http::Method::GET,
        200,
        None,
    );
    assert_eq!(ctx.deadline(), None);
}

#[test]
fn max_timeout_caps_what_a_request_asks_and_gives_one_to_a_request_that_asks_none() {
    let clock = MockClock::new();
    let layer = ServerLayer::new(clock.background()).max_timeout(Duration::from_secs(2));
    let (asks_more, _r1) = call_with(&layer, http::Method::GET, 200, Some("1H"));
    let (asks_less, _r2) = call_with(&layer, http::Method::GET, 200, Some("500m"));
    let (asks_none, _r3) = call_with(&layer, http::Method::GET, 200, None);
    assert_eq!(asks_more.deadline(), Some(clock.now() + Duration::from_secs(2)));
    assert_eq!(
        asks_less.deadline(),
        Some(clock.now() + Duration::from_millis(500))
    );
    assert_eq!(asks_none.deadline(), Some(clock.now() + Duration::from_secs(2)));
    clock.advance(Duration::from_secs(2));
    assert_eq!(asks_more.err(), Some(Error::DeadlineExceeded));
    assert_eq!(asks_none.err(), Some(Error::DeadlineExceeded));
}

#[test]
fn max_timeout_caps_the_default_too() {
    let clock = MockClock::new();
    let layer = ServerLayer::new(clock.background())
        .default_timeout(Duration::from_secs(30))
        .max_timeout(Duration::from_secs(5));
    let (ctx, _resp) = call_with(&layer, http::Method::GET, 200, None);
    assert_eq!(ctx.deadline(), Some(clock.now() + Duration::from_secs(5)));
}

// ===== server: bodies never sent =====

#[test]
fn a_head_response_ends_its_request_plainly_when_the_handler_answers() {
    let clock = MockClock::new();
    let (ctx, resp) = call_with(
        &ServerLayer::new(clock.background()),
        http::Method::HEAD,
        200,
        None,
    );
    assert_eq!(ctx.err(), Some(Error::Canceled), "the handler has answered");
    drop(resp); // hyper drops the body unpolled; the client is still there
    assert!(!cause_is::<ClientDisconnected>(&ctx));
}

#[test]
fn a_204_or_304_response_ends_its_request_plainly_when_the_handler_answers() {
    let clock = MockClock::new();
    for status in [204, 304] {
        let (ctx, resp) = call_with(
            &ServerLayer::new(clock.background()),
            http::Method::GET,
            status,
            None,
        );
        assert_eq!(ctx.err(), Some(Error::Canceled), "{status}");
        drop(resp);
        assert!(!cause_is::<ClientDisconnected>(&ctx), "{status}");
    }
}

#[test]
fn a_body_that_is_sent_keeps_its_ctx_and_its_drop_is_still_a_disconnect() {
    let clock = MockClock::new();
    for (method, status) in [
        (http::Method::GET, 200),
        (http::Method::POST, 201),
        (http::Method::CONNECT, 400),
    ] {
        let (ctx, resp) = call_with(
            &ServerLayer::new(clock.background()),
            method.clone(),
            status,
            None,
        );
        assert_eq!(ctx.err(), None, "{method} {status}");
        drop(resp);
        assert!(cause_is::<ClientDisconnected>(&ctx), "{method} {status}");
    }
}

// ===== status_for =====

#[test]
fn status_for_tells_a_deadline_a_hang_up_and_the_servers_own_cancel_apart() {
    let clock = MockClock::new();
    let (root, shutdown) = clock.background().with_cancel();
    let layer = ServerLayer::new(root);
    // Its own deadline: 504.
    let (timed, _resp) = call_with(&layer, http::Method::GET, 200, Some("1S"));
    assert_eq!(
        ctx_tower::status_for(&timed),
        http::StatusCode::OK,
        "not done: 200"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(ctx_tower::status_for(&timed), http::StatusCode::GATEWAY_TIMEOUT);
    // The client went away: 499.
    let (gone, resp) = call_with(&layer, http::Method::GET, 200, None);
    drop(resp);
    assert_eq!(ctx_tower::status_for(&gone).as_u16(), 499);
    // A handler's own cancel, below the request's ctx: 503.
    let (req_ctx, _resp) = call_with(&layer, http::Method::GET, 200, None);
    let (own, cancel) = req_ctx.with_cancel();
    cancel.cancel();
    assert_eq!(ctx_tower::status_for(&own), http::StatusCode::SERVICE_UNAVAILABLE);
    // Shutdown: 503.
    shutdown.cancel();
    assert_eq!(
        ctx_tower::status_for(&req_ctx),
        http::StatusCode::SERVICE_UNAVAILABLE
    );
    // What was decided before stays.
    assert_eq!(ctx_tower::status_for(&gone).as_u16(), 499);
    assert_eq!(ctx_tower::status_for(&timed), http::StatusCode::GATEWAY_TIMEOUT);
}

// ===== client =====

/// An inner service that records the headers it was sent and answers when `gate` is open.
#[derive(Clone)]
struct Recorder {
    calls: Arc<AtomicUsize>,
    headers: Arc<Mutex<Option<http::HeaderMap>>>,
    dropped: Arc<AtomicUsize>,
    pending: bool,
}

impl Recorder {
    fn new(pending: bool) -> Recorder {
        Recorder {
            calls: Arc::default(),
            headers: Arc::default(),
            dropped: Arc::default(),
            pending,
        }
    }
    fn sent(&self) -> Option<HeaderValue> {
        self.headers
            .lock()
            .unwrap()
            .as_ref()?
            .get("grpc-timeout")
            .cloned()
    }
}

struct CountDrop(Arc<AtomicUsize>);
impl Drop for CountDrop {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Service<Request<()>> for Recorder {
    type Response = &'static str;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<&'static str, std::io::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        self.calls.fetch_add(1, Ordering::SeqCst);
        *self.headers.lock().unwrap() = Some(req.headers().clone());
        let guard = CountDrop(self.dropped.clone());
        let pending = self.pending;
        Box::pin(async move {
            let _guard = guard;
            if pending {
                std::future::pending::<()>().await;
            }
            Ok("answer")
        })
    }
}

use std::future::Future;

fn with_ctx(ctx: &Ctx, header: Option<&'static str>) -> Request<()> {
    let mut req = request(header);
    req.extensions_mut().insert(ctx.clone());
    req
}

#[test]
fn a_request_without_a_ctx_passes_untouched() {
    let inner = Recorder::new(false);
    let mut client = ClientLayer::new().layer(inner.clone());
    let out = client.call(request(Some("bogus"))).now_or_never().unwrap();
    assert_eq!(out.unwrap(), "answer");
    assert_eq!(inner.sent(), Some(HeaderValue::from_static("bogus")));
}

#[test]
fn a_done_ctx_never_calls_the_inner_service() {
    let inner = Recorder::new(false);
    let mut client = ClientLayer::new().layer(inner.clone());
    let (ctx, cancel) = Ctx::background().with_cancel();
    cancel.cancel();
    let out = client.call(with_ctx(&ctx, None)).now_or_never().unwrap();
    assert!(matches!(out, Err(ClientError::Done(Error::Canceled))));
    let clock = MockClock::new();
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(1));
    clock.advance(Duration::from_secs(1));
    let out = client.call(with_ctx(&ctx, None)).now_or_never().unwrap();
    assert!(matches!(out, Err(ClientError::Done(Error::DeadlineExceeded))));
    assert_eq!(inner.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_remaining_time_goes_out_as_grpc_timeout() {
    let clock = MockClock::new();
    let inner = Recorder::new(false);
    let mut client = ClientLayer::new().layer(inner.clone());
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(3));
    clock.advance(Duration::from_millis(500));
    client.call(with_ctx(&ctx, None)).now_or_never().unwrap().unwrap();
    assert_eq!(
        inner.sent(),
        Some(grpc_timeout::format(Duration::from_millis(2500)))
    );
    // No deadline, no header.
    client
        .call(with_ctx(&clock.background(), None))
        .now_or_never()
        .unwrap()
        .unwrap();
    assert_eq!(inner.sent(), None);
}

#[test]
fn a_larger_or_malformed_grpc_timeout_is_replaced_and_a_smaller_one_kept() {
    let clock = MockClock::new();
    let inner = Recorder::new(false);
    let mut client = ClientLayer::new().layer(inner.clone());
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(3));
    for (given, expect) in [
        ("10S", "3000000u"),
        ("junk", "3000000u"),
        ("2S", "2S"),
        ("3S", "3S"),
    ] {
        client
            .call(with_ctx(&ctx, Some(given)))
            .now_or_never()
            .unwrap()
            .unwrap();
        assert_eq!(inner.sent().unwrap(), expect, "given {given}");
    }
}

#[test]
fn a_ctx_done_while_the_call_is_pending_drops_the_inner_future() {
    let clock = MockClock::new();
    let inner = Recorder::new(true);
    let mut client = ClientLayer::new().layer(inner.clone());
    // Canceled by hand...
    let (ctx, cancel) = clock.background().with_cancel();
    let mut call = Probe::new(client.call(with_ctx(&ctx, None)));
    call.assert_pending();
    cancel.cancel();
    assert_eq!(call.woken(), 1);
    assert_eq!(inner.dropped.load(Ordering::SeqCst), 0);
    assert!(matches!(
        call.poll(),
        Poll::Ready(Err(ClientError::Done(Error::Canceled)))
    ));
    assert_eq!(
        inner.dropped.load(Ordering::SeqCst),
        1,
        "dropped when the ctx won, not later"
    );
    // ... or by its deadline.
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(2));
    let mut call = Probe::new(client.call(with_ctx(&ctx, None)));
    call.assert_pending();
    clock.advance(Duration::from_secs(2));
    assert!(matches!(
        call.assert_ready(),
        Err(ClientError::Done(Error::DeadlineExceeded))
    ));
    assert_eq!(inner.dropped.load(Ordering::SeqCst), 2);
}

#[test]
fn an_inner_error_at_the_deadline_is_reported_as_the_ctxs_error() {
    // An inner stack with a timer of its own on the same deadline (tonic's `Channel` reads
    // `grpc-timeout`): it fails at the same instant, and polls first.
    let clock = MockClock::new();
    let inner = tower::service_fn(|req: Request<()>| {
        let done = req.extensions().get::<Ctx>().unwrap().done();
        async move {
            done.await;
            Err::<(), _>(std::io::Error::other("timeout expired"))
        }
    });
    let mut client = ClientLayer::new().layer(inner);
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(1));
    let mut call = Probe::new(client.call(with_ctx(&ctx, None)));
    call.assert_pending();
    clock.advance(Duration::from_secs(1));
    assert!(matches!(
        call.assert_ready(),
        Err(ClientError::Done(Error::DeadlineExceeded))
    ));
    // An error while the ctx is live stays the inner error.
    let failing = tower::service_fn(|_: Request<()>| async { Err::<(), _>("refused") });
    let mut client = ClientLayer::new().layer(failing);
    let out = client
        .call(with_ctx(&ctx_core::Ctx::background(), None))
        .now_or_never();
    assert!(matches!(out, Some(Err(ClientError::Inner("refused")))));
}

#[test]
fn a_call_answered_at_once_arms_no_timer() {
    let clock = MockClock::new();
    let inner = Recorder::new(false);
    let mut client = ClientLayer::new().layer(inner);
    let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(2));
    client.call(with_ctx(&ctx, None)).now_or_never().unwrap().unwrap();
    assert_eq!(clock.pending_timers(), 0);
}

#[test]
fn inner_errors_are_wrapped_with_their_source() {
    let err: ClientError<std::io::Error> = ClientError::Inner(std::io::Error::other("refused"));
    let source = std::error::Error::source(&err).expect("the inner error is the source");
    assert_eq!(source.to_string(), "refused");
    let done: ClientError<std::io::Error> = ClientError::Done(Error::Canceled);
    assert_eq!(done.to_string(), "context canceled");
    // With feature `tonic`, a `tonic::Status` (tests/tonic.rs); without, nothing.
    assert_eq!(
        std::error::Error::source(&done).is_some(),
        cfg!(feature = "tonic")
    );
}

#[test]
fn client_layer_in_front_of_server_layer_carries_the_deadline_across() {
    futures::executor::block_on(async {
        let clock = MockClock::new();
        let (svc, seen) = server_with(clock.background(), || Chunks::new(&[Some("a")]));
        let mut client = ClientLayer::new().layer(svc);
        let (ctx, _c) = clock.background().with_timeout(Duration::from_secs(2));
        clock.advance(Duration::from_millis(300));
        let _resp = client
            .ready()
            .await
            .unwrap()
            .call(with_ctx(&ctx, None))
            .await
            .unwrap();
        assert_eq!(last(&seen).deadline(), ctx.deadline(), "same clock, no loss");
    });
}
