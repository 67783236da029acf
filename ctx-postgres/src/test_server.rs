//! A throwaway PostgreSQL server for tests, benchmarks and examples.
//!
//! [`TestServer::start`] runs `initdb` into a fresh temporary directory and starts `postgres`
//! on a free loopback port with trust authentication (and `fsync` off: nothing here is meant
//! to last). As root, both run as the `postgres` system user (PostgreSQL refuses to run as
//! root), otherwise as the current user. The programs are found with `pg_config --bindir`,
//! in `/usr/lib/postgresql/*/bin` (Debian's layout, newest first), or on `PATH`; the
//! environment variable `CTX_PG_BINDIR` overrides them. On Debian: `apt-get install postgresql`.
//!
//! The server is stopped, and its directory removed, when the [`TestServer`] is dropped, and
//! also when the process that started it ends in any way (a panic, `process::exit`, a
//! signal): a small watchdog shell next to the server checks every 200 ms that this process
//! still exists. So [`TestServer::shared`], which is never dropped, is stopped when the test
//! binary exits.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, Config, NoTls};

/// A PostgreSQL server of its own, in a temporary directory, on a loopback port.
///
/// # Examples
///
/// ```
/// use ctx_postgres::test_server::TestServer;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let server = TestServer::shared().expect("PostgreSQL is installed");
/// let client = server.connect().await.unwrap();
/// let row = client.query_one("SELECT 1::int4", &[]).await.unwrap();
/// assert_eq!(row.get::<_, i32>(0), 1);
/// # }
/// ```
#[derive(Debug)]
pub struct TestServer {
    port: u16,
    top: PathBuf,
    bindir: PathBuf,
    user: Option<(u32, u32)>,
    watchdog: Child,
}

// ===== impl TestServer =====

impl TestServer {
    /// The server of this process, started on first use and stopped when the process ends.
    /// Every call answers the same server (or the same error).
    ///
    /// # Errors
    ///
    /// As [`TestServer::start`], as a message.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// assert!(server.port() > 0);
    /// ```
    pub fn shared() -> Result<&'static TestServer, String> {
        static SHARED: OnceLock<Result<TestServer, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| TestServer::start().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Starts a new server and waits until it accepts connections (at most 60 s).
    ///
    /// # Errors
    ///
    /// `NotFound` when no PostgreSQL installation is found (the message says how to install
    /// one), or the error of `initdb` or `postgres` with the server's log.
    ///
    /// # Examples
    ///
    /// ```
    /// let server = ctx_postgres::test_server::TestServer::start().unwrap();
    /// drop(server); // stopped, its directory removed
    /// ```
    pub fn start() -> io::Result<TestServer> {
        let bindir = find_bindir()?;
        let user = server_user()?;
        static N: AtomicUsize = AtomicUsize::new(0);
        let top = std::env::temp_dir().join(format!(
            "ctx-postgres-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&top);
        std::fs::create_dir_all(&top)?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&top, Some(uid), Some(gid))?;
        }
        let out = command(&bindir.join("initdb"), user, &top)
            .args(["-D", "data", "-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&top);
            return Err(io::Error::other(format!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let mut last = None;
        for _ in 0..5 {
            let port = free_port()?;
            let mut watchdog = spawn_watchdog(&bindir, user, &top, port)?;
            match wait_ready(&bindir, port, &mut watchdog) {
                Ok(()) => {
                    return Ok(TestServer {
                        port,
                        top,
                        bindir,
                        user,
                        watchdog,
                    });
                }
                Err(e) => {
                    let _ = watchdog.kill();
                    let _ = watchdog.wait();
                    last = Some(e); // most likely the port was taken meanwhile: try another
                }
            }
        }
        let _ = std::fs::remove_dir_all(&top);
        Err(last.unwrap_or_else(|| io::Error::other("postgres did not start")))
    }

    /// The loopback port the server listens on (at 127.0.0.1).
    ///
    /// # Examples
    ///
    /// ```
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// let url = format!("postgres://postgres@127.0.0.1:{}/postgres", server.port());
    /// assert!(url.parse::<tokio_postgres::Config>().is_ok());
    /// ```
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the server's Unix socket (`.s.PGSQL.<port>` in it); the server's
    /// files live there too, and it is removed when the server stops.
    ///
    /// # Examples
    ///
    /// ```
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// let mut config = tokio_postgres::Config::new();
    /// config.host_path(server.socket_dir()).port(server.port()).user("postgres");
    /// ```
    pub fn socket_dir(&self) -> &Path {
        &self.top
    }

    /// A config for this server: user and database `postgres`, no password.
    ///
    /// # Examples
    ///
    /// ```
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// let config = server.config();
    /// assert_eq!(config.get_ports(), &[server.port()]);
    /// ```
    pub fn config(&self) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres");
        config
    }

    /// A new connection without TLS, its `Connection` spawned on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// tokio-postgres's, when the connection fails.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// let client = server.connect().await.unwrap();
    /// assert!(!client.is_closed());
    /// # }
    /// ```
    pub async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config().connect(NoTls).await?;
        tokio::spawn(connection);
        Ok(client)
    }
}

impl Drop for TestServer {
    /// Stops the server at once (`pg_ctl stop -m immediate`); the watchdog then removes its
    /// directory.
    fn drop(&mut self) {
        let _ = command(&self.bindir.join("pg_ctl"), self.user, &self.top)
            .args(["stop", "-D", "data", "-m", "immediate", "-w"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.watchdog.wait();
    }
}

/// Runs `program` in `dir` as `user` (uid, gid), or as ourselves when `None`.
fn command(program: &Path, user: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    if let Some((uid, gid)) = user {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

/// The shell that runs `postgres` and stops it (and removes `top`) once this process is gone
/// or the server has stopped.
fn spawn_watchdog(bindir: &Path, user: Option<(u32, u32)>, top: &Path, port: u16) -> io::Result<Child> {
    const SCRIPT: &str = r#"
parent=$1; postgres=$2; port=$3; top=$(pwd)
"$postgres" -D data -p "$port" -k "$top" -h 127.0.0.1 -c fsync=off -c synchronous_commit=off \
    -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB >>"$top/log" 2>&1 &
pg=$!
while [ -d "/proc/$parent" ] && kill -0 "$pg" 2>/dev/null; do sleep 0.2; done
kill -QUIT "$pg" 2>/dev/null
wait "$pg"
cd / && rm -rf "$top"
"#;
    command(Path::new("/bin/sh"), user, top)
        .args(["-c", SCRIPT, "sh"])
        .arg(std::process::id().to_string())
        .arg(bindir.join("postgres"))
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

fn wait_ready(bindir: &Path, port: u16, watchdog: &mut Child) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = Command::new(bindir.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"])
            .stdin(Stdio::null())
            .status()?;
        if ready.success() {
            return Ok(());
        }
        if watchdog.try_wait()?.is_some() {
            return Err(io::Error::other(format!(
                "postgres exited at start (port {port})"
            )));
        }
        if Instant::now() > deadline {
            return Err(io::Error::other(format!(
                "postgres not ready after 60 s (port {port})"
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn free_port() -> io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `Some((uid, gid))` of the `postgres` system user when we are root, else `None`.
fn server_user() -> io::Result<Option<(u32, u32)>> {
    let id = Command::new("id").arg("-u").output()?;
    if String::from_utf8_lossy(&id.stdout).trim() != "0" {
        return Ok(None);
    }
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "running as root, and there is no `postgres` user to run the server as \
             (Debian's `postgresql` package creates it)",
            )
        })?;
    let mut fields = line.split(':').skip(2);
    let parse = |f: Option<&str>| {
        f.and_then(|f| f.parse().ok())
            .ok_or_else(|| io::Error::other("bad /etc/passwd"))
    };
    Ok(Some((parse(fields.next())?, parse(fields.next())?)))
}

fn find_bindir() -> io::Result<PathBuf> {
    let has_initdb = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("CTX_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_initdb(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        "no PostgreSQL server found (no `initdb` via pg_config, /usr/lib/postgresql/*/bin or \
         PATH): install one (Debian: `apt-get install postgresql`) or set CTX_PG_BINDIR",
    ))
}
