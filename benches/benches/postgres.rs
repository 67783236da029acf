//! What ctx-postgres costs next to plain tokio-postgres, on one PostgreSQL server that the
//! bench starts itself (`ctx_postgres::test_server`; without a PostgreSQL installation it
//! prints a notice and measures nothing).
//!
//! * `postgres/select_1`: one `SELECT 1` round trip on a warm connection, plain
//!   `client.query` against `client.query_ctx` on a live ctx without a deadline (a
//!   `with_cancel` child), as a query string (tokio-postgres prepares it: two round trips) and
//!   as a prepared `Statement` (one round trip). The difference is ctx-postgres's own work:
//!   reading the connection's key, the registry, the turn, and the select on the ctx.
//! * `postgres/cancel`: from the moment a ctx ends (its handle's `cancel()`) while
//!   `SELECT pg_sleep(30)` runs, to the moment the call has answered — when it has, the server
//!   has stopped the query and the backend is idle. ctx-postgres (one extra connection to the
//!   server, the cancel request, and the wait for that connection to close) against
//!   tokio-postgres's own `cancel_query` followed by the query's error (which answers sooner
//!   because it does not wait to know that its cancel can no longer land).

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ctx_benches::{Weight, configure};
use ctx_postgres::ClientExt;
use ctx_postgres::test_server::TestServer;
use tokio::runtime::Runtime;
use tokio_postgres::{Client, NoTls};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

fn server() -> Option<TestServer> {
    match TestServer::start() {
        Ok(server) => Some(server),
        Err(e) => {
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            eprintln!("!!! postgres BENCH SKIPPED: no PostgreSQL server could be started: {e}");
            eprintln!("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!");
            None
        }
    }
}

/// Waits until backend `pid` runs `pg_sleep`, as seen from `observer`.
async fn wait_running(observer: &Client, pid: i32) {
    let sql = "SELECT state = 'active' AND query LIKE '%pg_sleep%' FROM pg_stat_activity WHERE pid = $1";
    let deadline = Instant::now() + Duration::from_secs(10);
    while !observer.query_one(sql, &[&pid]).await.unwrap().get::<_, bool>(0) {
        assert!(Instant::now() < deadline, "the query never started");
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

fn select_1(c: &mut Criterion, server: &TestServer, rt: &Runtime) {
    let client = rt.block_on(server.connect()).unwrap();
    let statement = rt.block_on(client.prepare("SELECT 1")).unwrap();
    let (ctx, _cancel) = {
        let _in = rt.enter();
        ctx_tokio::background().with_cancel()
    };
    let mut group = c.benchmark_group("postgres/select_1");
    configure(&mut group, Weight::VeryHeavy);
    group.bench_function("query string/tokio-postgres", |b| {
        b.iter(|| rt.block_on(async { black_box(client.query("SELECT 1", &[]).await.unwrap()) }))
    });
    group.bench_function("query string/ctx-postgres", |b| {
        b.iter(|| {
            rt.block_on(async { black_box(client.query_ctx(&ctx, "SELECT 1", &[]).await.unwrap()) })
        })
    });
    group.bench_function("prepared/tokio-postgres", |b| {
        b.iter(|| rt.block_on(async { black_box(client.query(&statement, &[]).await.unwrap()) }))
    });
    group.bench_function("prepared/ctx-postgres", |b| {
        b.iter(|| {
            rt.block_on(async { black_box(client.query_ctx(&ctx, &statement, &[]).await.unwrap()) })
        })
    });
    group.finish();
}

fn cancel(c: &mut Criterion, server: &TestServer, rt: &Runtime) {
    let (client, observer) = rt.block_on(async {
        (server.connect().await.unwrap(), server.connect().await.unwrap())
    });
    let pid: i32 = rt.block_on(client.query_one("SELECT pg_backend_pid()", &[])).unwrap().get(0);
    let root = {
        let _in = rt.enter();
        ctx_tokio::background()
    };
    let mut group = c.benchmark_group("postgres/cancel");
    configure(&mut group, Weight::VeryHeavy);
    group.sample_size(10);
    group.bench_function("ctx end to answered/ctx-postgres", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (ctx, handle) = root.with_cancel();
                    let call = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]);
                    let (out, took) = tokio::join!(call, async {
                        wait_running(&observer, pid).await;
                        let start = Instant::now();
                        handle.cancel();
                        start
                    });
                    total += took.elapsed();
                    assert!(matches!(out, Err(ctx_postgres::Error::Done(_))));
                }
                total
            })
        })
    });
    group.bench_function("cancel to answered/tokio-postgres cancel_query", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let token = client.cancel_token();
                for _ in 0..iters {
                    let call = client.query("SELECT pg_sleep(30)", &[]);
                    let (out, took) = tokio::join!(call, async {
                        wait_running(&observer, pid).await;
                        let start = Instant::now();
                        token.cancel_query(NoTls).await.unwrap();
                        start
                    });
                    total += took.elapsed();
                    assert!(out.is_err());
                }
                total
            })
        })
    });
    group.finish();
}

fn postgres(c: &mut Criterion) {
    let Some(server) = server() else { return };
    let rt = runtime();
    select_1(c, &server, &rt);
    cancel(c, &server, &rt);
}

criterion_group!(benches, postgres);
criterion_main!(benches);
