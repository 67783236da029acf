//! The test server itself: it is gone (port closed, directory removed) once dropped, and once
//! the process that started it dies without dropping it. And a connection over its Unix
//! socket, whose cancel goes through that socket.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use ctx_postgres::test_server::TestServer;
use ctx_postgres::{ClientExt, Error};
use support::{activity, backend_pid, connect, idle_within, server, watchdog};

/// True once nothing listens on `port` and `dir` is gone, polled for up to 10 s.
fn gone(port: u16, dir: &std::path::Path) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        let closed = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();
        if closed && !dir.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_dropped_server_is_stopped_and_removed() {
    let server = TestServer::start().unwrap();
    let (port, dir) = (server.port(), server.socket_dir().to_owned());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    drop(server);
    assert!(
        gone(port, &dir),
        "still listening on {port} or {dir:?} still there"
    );
}

/// Run only as the child of the test below: starts a server, tells where, and dies at once
/// (abort: no destructor runs, no unwinding).
#[test]
fn child_that_aborts_with_a_server_running() {
    if std::env::var_os("CTX_PG_ABORTING_CHILD").is_none() {
        return;
    }
    let server = TestServer::start().unwrap();
    println!("SERVER {} {}", server.port(), server.socket_dir().display());
    std::process::abort();
}

#[test]
fn a_server_is_stopped_when_its_process_dies() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_that_aborts_with_a_server_running",
            "--nocapture",
        ])
        .env("CTX_PG_ABORTING_CHILD", "1")
        .output()
        .unwrap();
    assert!(!out.status.success(), "the child aborted");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("SERVER "))
        .expect("the child's server");
    let (port, dir) = line.split_once(' ').unwrap();
    let (port, dir): (u16, PathBuf) = (port.parse().unwrap(), dir.into());
    assert!(
        gone(port, &dir),
        "the server of a dead process still runs on {port}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_unix_socket_the_cancel_goes_through_the_socket() {
    watchdog(Duration::from_secs(30), async {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(server().socket_dir())
            .port(server().port())
            .user("postgres");
        let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(connection);
        let observer = connect().await;
        let pid = backend_pid(&client).await;
        let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(200));
        let out = client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await;
        assert!(matches!(out, Err(Error::Done(_))), "{out:?}");
        let idle = idle_within(&observer, pid, Duration::from_secs(1)).await;
        assert!(idle.is_some(), "{:?}", activity(&observer, pid).await);
    })
    .await
}
