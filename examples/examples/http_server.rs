//! An HTTP server (hyper, HTTP/1.1 and HTTP/2) where every request runs under a context given
//! by `ctx_tower::ServerLayer`: its deadline comes from the request's `grpc-timeout` header
//! (and the app's own `x-timeout-ms`), it is canceled when the client disconnects, and it is
//! passed to a simulated slow backend that honours it. Ctrl-C (or `SERVE_FOR_MS`) cancels the
//! server's root: it stops accepting, in-flight requests get 503.
//!
//! ```sh
//! PORT=8080 cargo run -p ctx-examples --example http_server
//! curl -i 'http://127.0.0.1:8080/work?ms=100'                        # 200 after 100 ms
//! curl -i -H 'x-timeout-ms: 50' 'http://127.0.0.1:8080/work?ms=5000' # 504 after 50 ms
//! curl -i -H 'grpc-timeout: 1S' 'http://127.0.0.1:8080/work?ms=5000' # 504 after 1 s
//! curl --max-time 0.2 'http://127.0.0.1:8080/work?ms=5000'           # client gives up: backend stops
//! curl -N 'http://127.0.0.1:8080/stream?ticks=5&ms=200'               # a streaming answer
//! ```
//!
//! `PORT` defaults to 0 (any free port; the address is printed). `SERVE_FOR_MS` stops the
//! server after that many milliseconds (CI uses it); without it, the server runs until Ctrl-C.

use std::time::Duration;

use ctx_examples::{App, serve};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);

    // The server's root, made once, here in `main`, with the runtime's adapter (the handlers
    // below only ever derive from it): canceling it reaches every request in flight.
    let (server, shutdown) = ctx_tokio::background().with_cancel();
    let app = App::new();
    let serving = tokio::spawn(serve(listener, app.clone(), server.clone()));

    let serve_for = std::env::var("SERVE_FOR_MS").ok().and_then(|ms| ms.parse().ok());
    match serve_for {
        Some(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    println!("shutting down");
    shutdown.cancel();
    serving.await.expect("the server task panicked")?;
    println!("backend saw: {:?}", app.backend().stats());
    Ok(())
}
