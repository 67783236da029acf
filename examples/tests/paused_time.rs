//! `ServerLayer` on a tokio root under paused time: the request's deadline is tokio's virtual
//! time, so a 5 s `grpc-timeout` passes in no real time at all.

use std::convert::Infallible;
use std::time::Duration;

use ctx_core::{Ctx, Error};
use ctx_tower::ServerLayer;
use tower::{Layer, ServiceExt};

#[tokio::test(start_paused = true)]
async fn a_grpc_timeout_passes_on_tokios_paused_clock() {
    let root = ctx_tokio::background();
    let handler = tower::service_fn(|req: http::Request<()>| async move {
        let ctx = req.extensions().get::<Ctx>().expect("a request ctx").clone();
        let started = tokio::time::Instant::now();
        let err = ctx.done().await; // the handler waits: the deadline's timer is tokio's
        Ok::<_, Infallible>(http::Response::new(format!(
            "{err:?} after {:?}",
            started.elapsed()
        )))
    });
    let svc = ServerLayer::new(root).layer(handler);
    let req = http::Request::builder()
        .header("grpc-timeout", "5S")
        .body(())
        .unwrap();
    let wall = std::time::Instant::now();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(
        resp.body().get_ref(),
        &format!("{:?} after {:?}", Error::DeadlineExceeded, Duration::from_secs(5))
    );
    assert!(
        wall.elapsed() < Duration::from_secs(5),
        "virtual time, not real time"
    );
}
