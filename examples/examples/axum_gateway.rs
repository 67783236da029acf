//! Two services, one deadline: an axum gateway (hop A) in front of a hyper server (hop B),
//! both under `ctx_tower::ServerLayer`, A calling B through `ctx_tower::ClientLayer`. A
//! client calls A with a 300 ms budget; A's handler takes its ctx with `Extension<Ctx>` and
//! passes it to the outgoing call, which sends what is left as `grpc-timeout`. A slow call is
//! cut off everywhere at the same instant: the client gives up, and B's backend stops on B's
//! copy of the deadline. Then both servers shut down by canceling their roots.
//!
//! ```sh
//! cargo run -p ctx-examples --example axum_gateway
//! ```

use std::time::Duration;

use ctx_examples::{App, Gateway, Version, get, http_client, serve, serve_gateway};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    // Hop B: the hyper app, with a slow backend.
    let b_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let b_addr = b_listener.local_addr()?;
    let (b_root, b_shutdown) = ctx_tokio::background().with_cancel();
    let app = App::new();
    let b = tokio::spawn(serve(b_listener, app.clone(), b_root));

    // Hop A: the axum gateway, speaking HTTP/2 to B.
    let a_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let a_addr = a_listener.local_addr()?;
    let (a_root, a_shutdown) = ctx_tokio::background().with_cancel();
    let gateway = Gateway::new(format!("http://{b_addr}").parse().expect("a URI"), Version::Http2);
    let a = tokio::spawn(serve_gateway(a_listener, gateway.clone(), a_root));
    println!("gateway on http://{a_addr}, backend on http://{b_addr}");

    let client = http_client(Version::Http1);
    for (work, budget) in [(10, 300), (5_000, 300)] {
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(budget));
        let uri = format!("http://{a_addr}/work?ms={work}").parse().expect("a URI");
        match get(&client, &ctx, uri).await {
            Ok((status, body)) => print!("{work} ms of work, {budget} ms budget: {status} {body}"),
            Err(e) => println!("{work} ms of work, {budget} ms budget: client gave up: {e}"),
        }
    }
    let seen = app.log().get();
    println!(
        "B saw {} requests, each with a deadline: {}",
        seen.seen,
        seen.last_deadline.is_some()
    );
    println!("B's backend: {:?}", app.backend().stats());

    // Graceful shutdown: cancel the roots; in-flight requests end, the servers return.
    a_shutdown.cancel();
    a.await.expect("the gateway task panicked")?;
    b_shutdown.cancel();
    b.await.expect("the backend task panicked")?;
    println!("shut down");
    Ok(())
}
