//! Where a connection's cancel requests go, and how one is sent so that, once it is done,
//! it can no longer land.
//!
//! PostgreSQL's CancelRequest goes on a new connection; the server process that reads it
//! signals the backend (`kill`) and then exits, closing the socket. So the end of that socket
//! (EOF, or an error: the server end is gone either way) proves that the signal has been sent
//! or never will be. A signal already sent is handled by the backend before it runs again, so
//! it hits the statement running then or, if the backend is between statements, is discarded
//! when it reads the next one (PostgreSQL drops a cancel that arrives while it waits for a
//! command). `send` waits for that end; tokio-postgres's `cancel_query` returns after writing,
//! so its cancel can still land on whatever the connection runs next.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_postgres::config::Host;
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{CancelToken, Client, Config, NoTls};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where the cancel requests of a connection go, and with which TLS connector: what a
/// connection over TLS, through a proxy or a port mapping needs to give ctx-postgres.
///
/// Without one, the first `*_ctx` call on a connection asks the server where it listens
/// (`inet_server_addr()`, or its Unix socket) and sends cancel requests there without TLS:
/// right for a plain connection straight to the server. A cancel request that cannot reach
/// the server only leaves the query running (the call still answers
/// [`Error::Done`](crate::Error::Done) and never cancels anything else).
///
/// # Examples
///
/// ```
/// use ctx_postgres::CancelRoute;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), tokio_postgres::Error> {
/// # let config = ctx_postgres::test_server::TestServer::shared().unwrap().config();
/// let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
/// tokio::spawn(connection);
/// CancelRoute::new(&config).attach(&client); // `.tls(connector)` for TLS connections
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CancelRoute {
    targets: Arc<[Target]>,
    tls: Arc<dyn SendCancel>,
    explicit: bool,
}

#[derive(Clone, Debug)]
enum Target {
    /// A host name (resolved when the cancel is sent) or an address, and the name TLS checks.
    Tcp {
        host: String,
        addr: Option<IpAddr>,
        port: u16,
    },
    /// A Unix socket's full path.
    Unix(PathBuf),
}

// ===== impl CancelRoute =====

impl CancelRoute {
    /// Every host and port of `config` (as `host`, `hostaddr` and `port` list them), without
    /// TLS. The cancel request goes to each of them: a server that does not run this
    /// connection's backend ignores it.
    ///
    /// # Examples
    ///
    /// ```
    /// let config: tokio_postgres::Config = "host=db port=5433 user=app".parse().unwrap();
    /// let route = ctx_postgres::CancelRoute::new(&config);
    /// assert!(format!("{route:?}").contains("5433"));
    /// ```
    pub fn new(config: &Config) -> CancelRoute {
        let ports = config.get_ports();
        let port = |i: usize| ports.get(i).or(ports.first()).copied().unwrap_or(5432);
        let targets = config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| match host {
                Host::Tcp(host) => Target::Tcp {
                    host: host.clone(),
                    addr: config.get_hostaddrs().get(i).copied(),
                    port: port(i),
                },
                #[cfg(unix)]
                Host::Unix(dir) => Target::Unix(dir.join(format!(".s.PGSQL.{}", port(i)))),
            })
            .collect();
        CancelRoute {
            targets,
            tls: Arc::new(Tls(NoTls)),
            explicit: true,
        }
    }

    /// The same route, with `tls` to wrap the cancel request's connection (the connector the
    /// client connected with, e.g. postgres-native-tls's or postgres-openssl's
    /// `MakeTlsConnector`, which accept any stream). Whether TLS is used follows the
    /// connection's `sslmode`, as tokio-postgres's own `cancel_query` does.
    ///
    /// # Examples
    ///
    /// ```
    /// let config: tokio_postgres::Config = "host=db sslmode=disable".parse().unwrap();
    /// let route = ctx_postgres::CancelRoute::new(&config).tls(tokio_postgres::NoTls);
    /// # drop(route);
    /// ```
    pub fn tls<T>(self, tls: T) -> CancelRoute
    where
        T: MakeTlsConnect<CancelStream> + Clone + Send + Sync + 'static,
        T::TlsConnect: Send,
        T::Stream: Send,
        <T::TlsConnect as TlsConnect<CancelStream>>::Future: Send,
    {
        CancelRoute {
            tls: Arc::new(Tls(tls)),
            ..self
        }
    }

    /// Sends the cancel requests of `client`'s connection along this route from now on (for
    /// every `Client` of that connection, wherever it moves; a pool's objects included).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let (config, client) = (server.config(), server.connect().await.unwrap());
    /// ctx_postgres::CancelRoute::new(&config).attach(&client);
    /// # }
    /// ```
    pub fn attach(self, client: &Client) {
        crate::registry::conn(client).set_explicit(self);
    }

    pub(crate) fn is_explicit(&self) -> bool {
        self.explicit
    }

    /// A route found by asking the server, without TLS.
    pub(crate) fn discovered(target: DiscoveredTarget) -> CancelRoute {
        let target = match target {
            DiscoveredTarget::Tcp(addr, port) => Target::Tcp {
                host: addr.to_string(),
                addr: Some(addr),
                port,
            },
            #[cfg(unix)]
            DiscoveredTarget::Unix(path) => Target::Unix(path),
        };
        CancelRoute {
            targets: Arc::new([target]),
            tls: Arc::new(Tls(NoTls)),
            explicit: false,
        }
    }

    /// Sends the cancel request of `token` to every target and waits until each socket has
    /// ended. True if at least one request was written to a server.
    pub(crate) async fn send(&self, token: &CancelToken) -> bool {
        let mut delivered = false;
        for target in self.targets.iter() {
            delivered |= send_one(target, token, &*self.tls).await;
        }
        delivered
    }
}

impl fmt::Debug for CancelRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRoute")
            .field("targets", &self.targets)
            .field("explicit", &self.explicit)
            .finish_non_exhaustive()
    }
}

/// Where the server says it listens (see `call::discover`).
#[derive(Debug)]
pub(crate) enum DiscoveredTarget {
    Tcp(IpAddr, u16),
    #[cfg(unix)]
    Unix(PathBuf),
}

async fn send_one(target: &Target, token: &CancelToken, tls: &dyn SendCancel) -> bool {
    let (transport, host) = match target {
        Target::Tcp { host, addr, port } => {
            let sock = match addr {
                Some(addr) => TcpStream::connect((*addr, *port)).await,
                None => TcpStream::connect((host.as_str(), *port)).await,
            };
            match sock {
                Ok(s) => (Transport::Tcp(s), host.as_str()),
                Err(_) => return false, // nothing was sent
            }
        }
        #[cfg(unix)]
        Target::Unix(path) => match tokio::net::UnixStream::connect(path).await {
            Ok(s) => (Transport::Unix(s), ""),
            Err(_) => return false,
        },
    };
    let home = Arc::new(Mutex::new(None));
    let stream = CancelStream {
        inner: Some(transport),
        home: home.clone(),
    };
    let sent = tls.send(token.clone(), stream, host).await.is_ok();
    // The connector has dropped its stream, which handed the socket back here. End our side
    // (the server may still be waiting for a packet) and wait for the server to close its own.
    let back = home.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(mut transport) = back {
        let _ = transport.shutdown().await;
        let mut buf = [0u8; 64];
        while let Ok(n) = transport.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    }
    sent
}

// ===== the cancel request's connection =====

/// The connection a cancel request is sent on, as a TLS connector given to
/// [`CancelRoute::tls`] sees it (a TCP or Unix socket). When the connector drops it, the
/// socket goes back to ctx-postgres, which waits for the server to close it.
pub struct CancelStream {
    inner: Option<Transport>,
    home: Arc<Mutex<Option<Transport>>>,
}

#[derive(Debug)]
enum Transport {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

impl fmt::Debug for CancelStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelStream")
            .field("inner", &self.inner)
            .finish()
    }
}

impl Drop for CancelStream {
    fn drop(&mut self) {
        if let Some(t) = self.inner.take() {
            *self.home.lock().unwrap_or_else(|p| p.into_inner()) = Some(t);
        }
    }
}

impl CancelStream {
    fn transport(&mut self) -> Pin<&mut Transport> {
        // `inner` is only taken in `drop`.
        Pin::new(
            self.inner
                .as_mut()
                .expect("ctx-postgres: internal error: CancelStream used after drop"),
        )
    }
}

impl AsyncRead for CancelStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport().poll_read(cx, buf)
    }
}

impl AsyncWrite for CancelStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        self.get_mut().transport().poll_write(cx, b)
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport().poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().transport().poll_shutdown(cx)
    }
}

impl AsyncRead for Transport {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_write(cx, b),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s).poll_write(cx, b),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_flush(cx),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(unix)]
            Transport::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

// ===== the TLS connector, type-erased =====

/// Sends one cancel request over a connected stream, with a connector of the user's type.
trait SendCancel: Send + Sync {
    fn send<'a>(
        &'a self,
        token: CancelToken,
        stream: CancelStream,
        host: &'a str,
    ) -> BoxFuture<'a, Result<(), BoxError>>;
}

struct Tls<T>(T);

impl<T> SendCancel for Tls<T>
where
    T: MakeTlsConnect<CancelStream> + Clone + Send + Sync + 'static,
    T::TlsConnect: Send,
    T::Stream: Send,
    <T::TlsConnect as TlsConnect<CancelStream>>::Future: Send,
{
    fn send<'a>(
        &'a self,
        token: CancelToken,
        stream: CancelStream,
        host: &'a str,
    ) -> BoxFuture<'a, Result<(), BoxError>> {
        Box::pin(async move {
            let connect = self.0.clone().make_tls_connect(host).map_err(Into::into)?;
            token.cancel_query_raw(stream, connect).await?;
            Ok(())
        })
    }
}
