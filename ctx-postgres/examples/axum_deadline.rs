//! A request's deadline reaches the query: an axum service under `ctx_tower::ServerLayer`
//! runs `SELECT pg_sleep(..)` with `query_ctx` on the request's ctx. A caller sends a 300 ms
//! budget as `grpc-timeout`; when the query takes longer, the handler answers 504 at the
//! deadline and the server has already stopped the query — `pg_stat_activity` shows the
//! backend idle. Next to it, the same handler with `tokio::time::timeout`: also 504, but the
//! query goes on running on the server.
//!
//! It starts its own PostgreSQL server (`ctx_postgres::test_server`; on Debian
//! `apt-get install postgresql` provides one):
//!
//! ```sh
//! cargo run -p ctx-postgres --example axum_deadline
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Extension, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::get;
use ctx_core::Ctx;
use ctx_postgres::test_server::TestServer;
use ctx_postgres::{ClientExt, Error};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_postgres::Client;

/// `?secs=N`: how long the query sleeps.
fn secs(query: Option<String>) -> f64 {
    query
        .as_deref()
        .and_then(|q| q.strip_prefix("secs="))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0.0)
}

/// The handler: the query runs under the request's ctx.
async fn report(
    Extension(ctx): Extension<Ctx>,
    State(db): State<Arc<Client>>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    let sql = "SELECT pg_sleep($1)";
    match db.query_ctx(&ctx, sql, &[&secs(query)]).await {
        Ok(_) => (StatusCode::OK, "done\n".into()),
        Err(Error::Done(e)) => (ctx_tower::http_status(e), format!("{e}\n")),
        Err(Error::Db(e)) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
    }
}

/// The same with a plain timeout: the future is dropped, nothing reaches the server.
async fn report_with_timeout(
    State(db): State<Arc<Client>>,
    RawQuery(query): RawQuery,
) -> (StatusCode, String) {
    let secs = secs(query);
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&secs];
    let query = db.query("SELECT pg_sleep($1)", &params);
    match tokio::time::timeout(Duration::from_millis(300), query).await {
        Ok(_) => (StatusCode::OK, "done\n".into()),
        Err(_) => (StatusCode::GATEWAY_TIMEOUT, "timed out\n".into()),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = TestServer::start()?;
    let db = Arc::new(server.connect().await?);
    let observer = server.connect().await?;
    let pid: i32 = db.query_one("SELECT pg_backend_pid()", &[]).await?.get(0);

    let (root, shutdown) = ctx_tokio::background().with_cancel();
    let app = Router::new()
        .route("/report", get(report))
        .route("/report-timeout", get(report_with_timeout))
        .with_state(db.clone())
        .layer(ctx_tower::ServerLayer::new(root));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let serving = tokio::spawn(async move { axum::serve(listener, app).await });

    for path in ["/report?secs=0.05", "/report?secs=30", "/report-timeout?secs=30"] {
        let start = Instant::now();
        let status = call(addr, path, "300m").await?;
        let took = start.elapsed();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let row = observer
            .query_one(
                "SELECT state, query FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await?;
        let (state, query): (String, String) = (row.get(0), row.get(1));
        println!(
            "GET {path} with a 300 ms budget: {status} after {took:.0?}; 200 ms later the database is {state}: {query}"
        );
    }
    // Stop the query the plain timeout left behind; cancel the root (requests still in flight
    // end with it) and stop serving.
    observer
        .query_one("SELECT pg_cancel_backend($1)", &[&pid])
        .await?;
    shutdown.cancel();
    serving.abort();
    Ok(())
}

/// A minimal HTTP/1.1 GET with a `grpc-timeout` header; the response's status line.
async fn call(addr: std::net::SocketAddr, path: &str, budget: &str) -> std::io::Result<String> {
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    let req =
        format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\ngrpc-timeout: {budget}\r\nconnection: close\r\n\r\n");
    tcp.write_all(req.as_bytes()).await?;
    let mut resp = String::new();
    tcp.read_to_string(&mut resp).await?;
    Ok(resp.lines().next().unwrap_or_default().to_owned())
}
