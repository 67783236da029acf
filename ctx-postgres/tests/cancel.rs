//! A ctx that ends mid-query stops the query on the server; a done ctx sends nothing; plain
//! `tokio::time::timeout` leaves the query running (the contrast). Against a real PostgreSQL
//! server that the tests start themselves.

mod support;

use std::time::{Duration, Instant};

use ctx_postgres::{CancelRoute, ClientExt, Error};
use support::{activity, backend_pid, connect, idle_within, server, wait_active, watchdog};

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_stops_the_query_on_the_server() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(300));
        let start = Instant::now();
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await;
        let took = start.elapsed();
        assert!(
            matches!(out, Err(Error::Done(ctx_core::Error::DeadlineExceeded))),
            "{out:?}"
        );
        assert!(
            took >= Duration::from_millis(300),
            "answered before the deadline: {took:?}"
        );
        assert!(
            took < Duration::from_millis(1300),
            "answered long after the deadline: {took:?}"
        );
        // The server has stopped it: the backend is idle, not sleeping for 30 s.
        let idle = idle_within(&observer, pid, Duration::from_secs(1)).await;
        assert!(
            idle.is_some(),
            "backend still busy: {:?}",
            activity(&observer, pid).await
        );
        // And the connection goes on.
        let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handles_cancel_stops_the_query_on_the_server() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let (ctx, cancel) = ctx_tokio::background().with_cancel();
        let call = tokio::spawn(async move {
            let out = client
                .query_ctx(&ctx, "SELECT pg_sleep(30)", &[])
                .await
                .map(|_| ());
            (out, client)
        });
        wait_active(&observer, pid, "pg_sleep(30)").await;
        let start = Instant::now();
        cancel.cancel();
        let (out, client) = call.await.unwrap();
        assert!(
            matches!(out, Err(Error::Done(ctx_core::Error::Canceled))),
            "{out:?}"
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(activity(&observer, pid).await.0, "idle");
        let ctx = ctx_tokio::background();
        let rows = client.query_ctx(&ctx, "SELECT 2::int4", &[]).await.unwrap();
        assert_eq!(rows[0].get::<_, i32>(0), 2);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_done_ctx_sends_nothing() {
    watchdog(LIMIT, async {
        let client = connect().await;
        client
            .batch_execute("CREATE TEMP TABLE sent (n int4)")
            .await
            .unwrap();
        let (ctx, cancel) = ctx_tokio::background().with_cancel();
        cancel.cancel();
        let insert = "INSERT INTO sent VALUES (1)";
        assert!(matches!(
            client.execute_ctx(&ctx, insert, &[]).await,
            Err(Error::Done(_))
        ));
        assert!(matches!(
            client.query_ctx(&ctx, insert, &[]).await,
            Err(Error::Done(_))
        ));
        assert!(matches!(
            client.query_one_ctx(&ctx, insert, &[]).await,
            Err(Error::Done(_))
        ));
        assert!(matches!(
            client.query_opt_ctx(&ctx, insert, &[]).await,
            Err(Error::Done(_))
        ));
        assert!(matches!(
            client.batch_execute_ctx(&ctx, insert).await,
            Err(Error::Done(_))
        ));
        let n: i64 = client
            .query_one("SELECT count(*) FROM sent", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "a done ctx sent a statement");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_that_ends_first_answers_as_tokio_postgres_does() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_secs(20));
        let row = client
            .query_one_ctx(&ctx, "SELECT $1::int4 + 1", &[&41i32])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        let none = client
            .query_opt_ctx(&ctx, "SELECT 1 WHERE false", &[])
            .await
            .unwrap();
        assert!(none.is_none());
        let err = client.query_ctx(&ctx, "SELECT 1/0", &[]).await.unwrap_err();
        let Error::Db(db) = err else { panic!("{err:?}") };
        assert_eq!(
            db.code(),
            Some(&tokio_postgres::error::SqlState::DIVISION_BY_ZERO)
        );
        let err = client
            .query_one_ctx(&ctx, "SELECT 1 WHERE false", &[])
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Db(_)), "{err:?}");
        client
            .batch_execute_ctx(&ctx, "CREATE TEMP TABLE t (n int4); INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        assert_eq!(
            client.execute_ctx(&ctx, "UPDATE t SET n = 2", &[]).await.unwrap(),
            1
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_execute_ctx_stops_the_statement_running() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(300));
        let out = client
            .batch_execute_ctx(&ctx, "SELECT 1; SELECT pg_sleep(30)")
            .await;
        assert!(
            matches!(out, Err(Error::Done(ctx_core::Error::DeadlineExceeded))),
            "{out:?}"
        );
        assert!(
            idle_within(&observer, pid, Duration::from_secs(1))
                .await
                .is_some()
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_timeout_leaves_the_query_running_on_the_server() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let out = tokio::time::timeout(
            Duration::from_millis(300),
            client.query("SELECT pg_sleep(30)", &[]),
        )
        .await;
        assert!(out.is_err(), "the timeout fired");
        // A second later the server is still at it.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (state, query) = activity(&observer, pid).await;
        assert_eq!(
            (state.as_str(), query.as_str()),
            ("active", "SELECT pg_sleep(30)")
        );
        let stopped: bool = observer
            .query_one("SELECT pg_cancel_backend($1)", &[&pid])
            .await
            .unwrap()
            .get(0);
        assert!(stopped);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_route_carries_the_cancel() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        CancelRoute::new(&server().config()).attach(&client);
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await;
        assert!(matches!(out, Err(Error::Done(_))), "{out:?}");
        assert!(
            idle_within(&observer, pid, Duration::from_secs(1))
                .await
                .is_some()
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_route_answers_done_and_the_next_call_waits_for_the_query() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut config = tokio_postgres::Config::new();
        config.host("127.0.0.1").port(closed); // nothing listens there now
        CancelRoute::new(&config).attach(&client);
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let start = Instant::now();
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(1.5)", &[]).await;
        assert!(matches!(out, Err(Error::Done(_))), "{out:?}");
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "took {:?}",
            start.elapsed()
        );
        assert_eq!(
            activity(&observer, pid).await,
            ("active".into(), "SELECT pg_sleep(1.5)".into())
        );
        // The next call waits for it to end (it was not stopped) and then runs.
        let ctx = ctx_tokio::background();
        let row = client.query_one_ctx(&ctx, "SELECT 3::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 3);
        assert!(start.elapsed() >= Duration::from_millis(1500));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_is_not_canceled_by_the_next_one() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        // Dropped mid-query by a plain timeout: the query runs on, abandoned.
        let live = ctx_tokio::background();
        let dropped = tokio::time::timeout(
            Duration::from_millis(100),
            client.query_ctx(&live, "SELECT pg_sleep(1)", &[]),
        )
        .await;
        assert!(dropped.is_err());
        // The next call's ctx ends while it waits behind the abandoned query: its cancel
        // must not stop that query, which is not its own.
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(5)", &[]).await;
        assert!(matches!(out, Err(Error::Done(_))), "{out:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            activity(&observer, pid).await,
            ("active".into(), "SELECT pg_sleep(1)".into())
        );
        let row = client.query_one_ctx(&live, "SELECT 4::int4", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 4);
    })
    .await
}

/// A connector that counts the cancel requests it is asked to wrap, and wraps none (as
/// `NoTls`: the test server speaks no TLS).
#[derive(Clone)]
struct CountingTls(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl tokio_postgres::tls::MakeTlsConnect<ctx_postgres::CancelStream> for CountingTls {
    type Stream = tokio_postgres::tls::NoTlsStream;
    type TlsConnect = tokio_postgres::NoTls;
    type Error = tokio_postgres::tls::NoTlsError;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Self::TlsConnect, Self::Error> {
        assert_eq!(domain, "127.0.0.1", "the connector gets the configured host");
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(tokio_postgres::NoTls)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cancel_request_goes_through_the_routes_tls_connector() {
    watchdog(LIMIT, async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        CancelRoute::new(&server().config())
            .tls(CountingTls(asked.clone()))
            .attach(&client);
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await;
        assert!(matches!(out, Err(Error::Done(_))), "{out:?}");
        assert!(
            idle_within(&observer, pid, Duration::from_secs(1))
                .await
                .is_some()
        );
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 1);
    })
    .await
}

/// Deadlines of 0.1 to 2 ms: the ctx ends before or while tokio-postgres prepares the
/// statement, before the query has started on the server. The cancel must still stop it (it
/// arrives once the query runs; should one arrive between the prepare and the execute, where
/// the server drops it, the call sends another). Every call answers `Done` well before the
/// 30 s query would end, and the backend is idle after each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ctx_that_ends_during_the_prepare_still_stops_the_query() {
    watchdog(Duration::from_secs(90), async {
        let client = connect().await;
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        for i in 0..20u64 {
            let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_micros(100 + i * 100));
            let start = Instant::now();
            let out = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await;
            assert!(matches!(out, Err(Error::Done(_))), "round {i}: {out:?}");
            assert!(
                start.elapsed() < Duration::from_secs(3),
                "round {i}: {:?}",
                start.elapsed()
            );
            let idle = idle_within(&observer, pid, Duration::from_secs(1)).await;
            assert!(idle.is_some(), "round {i}: {:?}", activity(&observer, pid).await);
        }
    })
    .await
}
