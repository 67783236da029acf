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
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
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
        b.iter(|| rt.block_on(async { black_box(client.query_ctx(&ctx, "SELECT 1", &[]).await.unwrap()) }))
    });
    group.bench_function("prepared/tokio-postgres", |b| {
        b.iter(|| rt.block_on(async { black_box(client.query(&statement, &[]).await.unwrap()) }))
    });
    group.bench_function("prepared/ctx-postgres", |b| {
        b.iter(|| rt.block_on(async { black_box(client.query_ctx(&ctx, &statement, &[]).await.unwrap()) }))
    });
    group.finish();
}

/// The same comparison interleaved, which a shared machine needs for a difference of a few
/// percent: `ROUNDS` rounds of `PER_ROUND` plain calls and `PER_ROUND` governed ones (in
/// alternating order), the ratio of the two means taken per round; printed as the median
/// ratio, with the medians of the per-call times.
fn select_1_interleaved(server: &TestServer, rt: &Runtime) {
    const ROUNDS: usize = 41;
    const PER_ROUND: u32 = 300;
    let client = rt.block_on(server.connect()).unwrap();
    let statement = rt.block_on(client.prepare("SELECT 1")).unwrap();
    let (ctx, _cancel) = {
        let _in = rt.enter();
        ctx_tokio::background().with_cancel()
    };
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for prepared in [false, true] {
        let (mut plain, mut governed, mut ratio) = (Vec::new(), Vec::new(), Vec::new());
        rt.block_on(async {
            for round in 0..ROUNDS {
                let mut times = [0.0; 2];
                for which in [round % 2, 1 - round % 2] {
                    let start = Instant::now();
                    for _ in 0..PER_ROUND {
                        match (which, prepared) {
                            (0, false) => black_box(client.query("SELECT 1", &[]).await.unwrap()),
                            (0, true) => black_box(client.query(&statement, &[]).await.unwrap()),
                            (_, false) => black_box(client.query_ctx(&ctx, "SELECT 1", &[]).await.unwrap()),
                            (_, true) => black_box(client.query_ctx(&ctx, &statement, &[]).await.unwrap()),
                        };
                    }
                    times[which] = start.elapsed().as_secs_f64() * 1e6 / f64::from(PER_ROUND);
                }
                plain.push(times[0]);
                governed.push(times[1]);
                ratio.push(times[1] / times[0]);
            }
        });
        let name = if prepared { "prepared" } else { "query string" };
        println!(
            "postgres/select_1 interleaved, {name}: tokio-postgres {:.1} µs, ctx-postgres {:.1} µs, \
             ctx-postgres / tokio-postgres = {:.4} (median of {ROUNDS} rounds of {PER_ROUND})",
            median(plain),
            median(governed),
            median(ratio)
        );
    }
}

fn cancel(c: &mut Criterion, server: &TestServer, rt: &Runtime) {
    let (client, observer) =
        rt.block_on(async { (server.connect().await.unwrap(), server.connect().await.unwrap()) });
    let pid: i32 = rt
        .block_on(client.query_one("SELECT pg_backend_pid()", &[]))
        .unwrap()
        .get(0);
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
                    // Untimed: let this cancel land before the next query (tokio-postgres's
                    // `cancel_query` does not wait for that; without the pause it stops the
                    // next iteration's query before it is seen running).
                    tokio::time::sleep(Duration::from_millis(50)).await;
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
    select_1_interleaved(&server, &rt);
    cancel(c, &server, &rt);
}

criterion_group!(benches, postgres);
criterion_main!(benches);
