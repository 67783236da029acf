//! A tonic client and server with one deadline: the client's `Channel` sits behind
//! `ctx_tower::ClientLayer`, the server's routes behind `ctx_tower::ServerLayer`. The service is
//! gRPC's health check (its code ships with `tonic-health`: no `protoc`), implemented so that
//! its handler reads its ctx. A check of `"slow"` waits on its ctx; with a 200 ms budget the
//! client gets `DEADLINE_EXCEEDED`.
//!
//! ```sh
//! cargo run -p ctx-examples --example tonic_health
//! ```

use std::time::Duration;

use ctx_examples::{HealthProbe, grpc_client, serve_grpc};
use tonic_health::pb::HealthCheckRequest;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (root, shutdown) = ctx_tokio::background().with_cancel();
    let probe = HealthProbe::new();
    let server = tokio::spawn(serve_grpc(listener, probe.clone(), root));
    println!("health service on {addr}");

    let mut client = grpc_client(addr).await?;
    for service in ["", "slow"] {
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let mut req = tonic::Request::new(HealthCheckRequest {
            service: service.into(),
        });
        req.extensions_mut().insert(ctx);
        match client.check(req).await {
            Ok(resp) => println!("check({service:?}): status {}", resp.get_ref().status),
            Err(status) => println!("check({service:?}): {:?}: {}", status.code(), status.message()),
        }
    }
    let seen = probe.log().get();
    println!("the handler saw a deadline: {}", seen.last_deadline.is_some());

    shutdown.cancel();
    server.await??;
    println!("shut down");
    Ok(())
}
