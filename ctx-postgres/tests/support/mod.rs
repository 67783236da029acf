//! What the tests share: the server of this test binary, a second connection to watch the
//! first one's backend in `pg_stat_activity`, and watchdogs.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use ctx_postgres::test_server::TestServer;
use tokio_postgres::Client;

/// The server of this test binary (started on first use, stopped when the binary exits).
pub fn server() -> &'static TestServer {
    TestServer::shared().unwrap_or_else(|e| panic!("no PostgreSQL server for the tests: {e}"))
}

pub async fn connect() -> Client {
    watchdog(Duration::from_secs(30), server().connect())
        .await
        .expect("connect")
}

/// Fails the test instead of hanging when `fut` takes longer than `limit`.
pub async fn watchdog<F: Future>(limit: Duration, fut: F) -> F::Output {
    tokio::time::timeout(limit, fut)
        .await
        .expect("watchdog: the test hung")
}

pub async fn backend_pid(client: &Client) -> i32 {
    client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0)
}

/// The state and query of backend `pid`, as `pg_stat_activity` shows them now.
pub async fn activity(observer: &Client, pid: i32) -> (String, String) {
    let row = observer
        .query_one(
            "SELECT coalesce(state, ''), coalesce(query, '') FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Polls until backend `pid` is idle; the time it took, or `None` after `limit`.
pub async fn idle_within(observer: &Client, pid: i32, limit: Duration) -> Option<Duration> {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if activity(observer, pid).await.0 == "idle" {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Polls until backend `pid` runs a query containing `text`.
pub async fn wait_active(observer: &Client, pid: i32, text: &str) {
    watchdog(Duration::from_secs(10), async {
        loop {
            let (state, query) = activity(observer, pid).await;
            if state == "active" && query.contains(text) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
}
