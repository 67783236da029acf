//! Many calls at once, half of them canceled while their query runs on the server: every call
//! is answered, no query that was not canceled is stopped, and every connection goes on.
//! Also the late cancel: a cancel whose query ended just before it arrived must not stop what
//! the connection runs next.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ctx_core::CancelHandle;
use ctx_postgres::{ClientExt, Error};
use support::{connect, watchdog};
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// When the even calls are canceled.
#[derive(Clone, Copy, Debug)]
enum Trigger {
    /// As soon as `pg_stat_activity` shows the call's query running on the server.
    Running,
    /// At a time of its own (2 to 200 ms after the start), whatever it is doing then: waiting
    /// its turn, or queued in the connection's pipeline behind another call's query.
    Staggered,
}

/// `calls` calls spread over `clients` connections, all started at once. The even ones run
/// `pg_sleep(10)` and are canceled by their handle (see `Trigger`); the odd ones run a short
/// query under a live ctx and must answer their own value.
async fn half_canceled_mid_flight(clients: usize, calls: usize, trigger: Trigger) {
    let conns: Vec<Arc<Client>> = {
        let mut v = Vec::new();
        for _ in 0..clients {
            v.push(Arc::new(connect().await));
        }
        v
    };
    let observer = connect().await;
    let mut handles: HashMap<usize, CancelHandle> = HashMap::new();
    let mut tasks = Vec::new();
    for i in 0..calls {
        let client = conns[i % clients].clone();
        let (ctx, handle) = ctx_tokio::background().with_cancel();
        let canceled = i % 2 == 0;
        if canceled {
            handles.insert(i, handle);
        } else {
            handle.disarm();
        }
        tasks.push(tokio::spawn(async move {
            if canceled {
                let sql = format!("SELECT pg_sleep(10) /* call {i} */");
                client.query_ctx(&ctx, sql.as_str(), &[]).await.map(|_| None)
            } else {
                let sql = "SELECT pg_sleep(0.03), $1::int4";
                let n = i as i32;
                client
                    .query_one_ctx(&ctx, sql, &[&n])
                    .await
                    .map(|r| Some(r.get::<_, i32>(1)))
            }
        }));
    }
    if let Trigger::Staggered = trigger {
        let mut at: Vec<(u64, CancelHandle)> = handles
            .drain()
            .map(|(i, h)| (2 + (i as u64 * 37) % 199, h))
            .collect();
        at.sort_by_key(|(ms, _)| *ms);
        let start = tokio::time::Instant::now();
        for (ms, h) in at {
            tokio::time::sleep_until(start + Duration::from_millis(ms)).await;
            h.cancel();
        }
    }
    // Cancel each even call once its query runs on the server.
    watchdog(Duration::from_secs(60), async {
        while !handles.is_empty() {
            let rows = observer
                .query("SELECT query FROM pg_stat_activity WHERE state = 'active'", &[])
                .await
                .unwrap();
            for row in rows {
                let query: String = row.get(0);
                let call = query.split("/* call ").nth(1).and_then(|s| s.split(' ').next());
                if let Some(h) = call.and_then(|i| handles.remove(&i.parse::<usize>().unwrap())) {
                    h.cancel();
                }
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    for (i, task) in tasks.into_iter().enumerate() {
        let out = watchdog(Duration::from_secs(30), task).await.unwrap();
        if i % 2 == 0 {
            assert!(
                matches!(out, Err(Error::Done(ctx_core::Error::Canceled))),
                "call {i}: {out:?}"
            );
        } else {
            match out {
                Ok(Some(n)) => assert_eq!(n, i as i32),
                other => panic!("call {i} was not canceled but answered {other:?}"),
            }
        }
    }
    // Every connection goes on, governed or plain.
    let live = ctx_tokio::background();
    for client in &conns {
        let row = client.query_one_ctx(&live, "SELECT 5::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 5);
        let row = client.query_one("SELECT 6::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 6);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_on_five_connections_half_canceled_while_running() {
    watchdog(
        Duration::from_secs(120),
        half_canceled_mid_flight(5, 50, Trigger::Running),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_calls_on_five_connections_half_canceled_at_staggered_times() {
    watchdog(
        Duration::from_secs(120),
        half_canceled_mid_flight(5, 50, Trigger::Staggered),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_calls_pipelined_on_one_client_half_canceled_while_running() {
    watchdog(
        Duration::from_secs(120),
        half_canceled_mid_flight(1, 20, Trigger::Running),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_calls_pipelined_on_one_client_half_canceled_at_staggered_times() {
    watchdog(
        Duration::from_secs(120),
        half_canceled_mid_flight(1, 20, Trigger::Staggered),
    )
    .await
}

/// Deadlines swept from 1 to 30.5 ms around a query of 4 ms (plus its round trips): near the
/// query's end, the query often ends just as the cancel is sent. The statement the connection runs right after (a plain one, ungoverned) must never
/// be the one the cancel stops. Four connections at once, for load.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_cancel_never_stops_the_next_statement() {
    watchdog(Duration::from_secs(120), async {
        let mut tasks = Vec::new();
        for c in 0..4u64 {
            let client = connect().await;
            tasks.push(tokio::spawn(async move {
                let (mut done, mut ok) = (0, 0);
                for i in 0..60u64 {
                    let d = Duration::from_micros(1_000 + (i * 7 + c * 13) % 60 * 500);
                    let (ctx, _cancel) = ctx_tokio::background().with_timeout(d);
                    match client.query_ctx(&ctx, "SELECT pg_sleep(0.004)", &[]).await {
                        Ok(_) => ok += 1,
                        Err(Error::Done(_)) => done += 1,
                        Err(e) => panic!("connection {c}, round {i}: {e}"),
                    }
                    if let Err(e) = client.query("SELECT pg_sleep(0.01)", &[]).await {
                        let canceled = e.code() == Some(&SqlState::QUERY_CANCELED);
                        panic!("connection {c}, round {i}: the next statement failed ({e}); stopped by a late cancel: {canceled}");
                    }
                }
                (done, ok)
            }));
        }
        let (mut done, mut ok) = (0, 0);
        for t in tasks {
            let (d, o) = t.await.unwrap();
            done += d;
            ok += o;
        }
        // Both outcomes happened, so the race was run.
        assert!(done > 0 && ok > 0, "done {done}, ok {ok}");
    })
    .await
}
