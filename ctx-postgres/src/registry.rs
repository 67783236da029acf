//! Which connection a `Client` talks to, and the per-connection state every `*_ctx` call on it
//! shares: the turn (one governed call at a time), the route of its cancel requests, and
//! whether an abandoned query may still be running on it.
//!
//! A connection is known by its backend's cancel key (process id and secret key), read from
//! `Client::cancel_token()` without any I/O: the token writes its CancelRequest packet into an
//! in-memory stream (`capture`). The key is the same for every `&Client` of one connection,
//! wherever the `Client` has moved to, and differs between connections.

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::Client;
use tokio_postgres::tls::{ChannelBinding, TlsConnect, TlsStream};

use crate::route::CancelRoute;

/// The CancelRequest packet of a connection: length 16, code 80877102, process id, secret key.
pub(crate) type Key = [u8; 16];

/// Above this many known connections, the registry forgets those not in use (their route is
/// found again on their next call).
const MAX_CONNS: usize = 4096;

/// What every governed call on one connection shares.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The turn: held by one governed call from before its query is sent until no cancel of
    /// its own can land any more. FIFO (tokio's `Mutex` is fair).
    pub(crate) turn: Arc<tokio::sync::Mutex<()>>,
    /// A query of a governed call may still be running although its call has ended (the call's
    /// future was dropped, or its cancel did not stop it). Read and written only while holding
    /// `turn`; the next call first waits for it to end (a fence).
    pub(crate) abandoned: Arc<AtomicBool>,
    /// Where this connection's cancel requests go. Guarded by its mutex, never held across an
    /// `.await`. Set by `CancelRoute::attach` (explicit, kept) or found by the first governed
    /// call (discovered).
    route: Mutex<Option<Arc<CancelRoute>>>,
    /// `route` is set (it is never unset): lets a call skip the lock when it only needs to
    /// know.
    routed: AtomicBool,
}

impl Conn {
    fn new() -> Conn {
        Conn {
            turn: Arc::new(tokio::sync::Mutex::new(())),
            abandoned: Arc::new(AtomicBool::new(false)),
            route: Mutex::new(None),
            routed: AtomicBool::new(false),
        }
    }

    /// The route of this connection's cancel requests, if one is known.
    pub(crate) fn route(&self) -> Option<Arc<CancelRoute>> {
        lock(&self.route).clone()
    }

    /// True once a route is known (it then stays known).
    pub(crate) fn is_routed(&self) -> bool {
        self.routed.load(Ordering::Acquire)
    }

    /// Sets the route found by a governed call, unless one was attached meanwhile.
    pub(crate) fn set_discovered(&self, route: CancelRoute) {
        lock(&self.route).get_or_insert_with(|| Arc::new(route));
        self.routed.store(true, Ordering::Release);
    }

    /// Sets the route given by the user; it replaces any other.
    pub(crate) fn set_explicit(&self, route: CancelRoute) {
        *lock(&self.route) = Some(Arc::new(route));
        self.routed.store(true, Ordering::Release);
    }

    fn is_explicit(&self) -> bool {
        lock(&self.route).as_ref().is_some_and(|r| r.is_explicit())
    }
}

/// The shared state of `client`'s connection, created on first use.
///
/// # Panics
///
/// Never: a `Client` whose cancel key cannot be read (which tokio-postgres never produces)
/// gets a state of its own that nothing else shares.
pub(crate) fn conn(client: &Client) -> Arc<Conn> {
    let Some(key) = capture(client) else {
        return Arc::new(Conn::new());
    };
    let mut conns = lock(registry());
    if let Some(conn) = conns.get(&key) {
        return conn.clone();
    }
    if conns.len() >= MAX_CONNS {
        // Forget the connections nobody is using: discovered ones first, then attached ones.
        conns.retain(|_, c| Arc::strong_count(c) > 1 || c.is_explicit());
        if conns.len() >= MAX_CONNS {
            conns.retain(|_, c| Arc::strong_count(c) > 1);
        }
    }
    conns.entry(key).or_insert_with(|| Arc::new(Conn::new())).clone()
}

type Conns = HashMap<Key, Arc<Conn>, BuildHasherDefault<KeyHasher>>;

fn registry() -> &'static Mutex<Conns> {
    static CONNS: std::sync::OnceLock<Mutex<Conns>> = std::sync::OnceLock::new();
    CONNS.get_or_init(|| Mutex::new(Conns::default()))
}

/// Hashes a `Key` by its process id and secret key: the server draws the secret at random,
/// so folding the words together is mixing enough, and nobody but the server chooses it.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_ne_bytes(word);
        }
    }
}

/// A poisoned lock only means a panic elsewhere; the data (a map, an `Option`) stays valid.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

// ===== reading the cancel key =====

/// The connection's CancelRequest packet, read by letting its `CancelToken` write it into
/// memory. Every step of `cancel_query_raw` on this stream is ready at once, so one poll
/// finishes it.
pub(crate) fn capture(client: &Client) -> Option<Key> {
    let token = client.cancel_token();
    let mut sink = Capture {
        written: [0; 32],
        len: 0,
    };
    let done = {
        let fut = pin!(token.cancel_query_raw(&mut sink, Plain));
        matches!(
            fut.poll(&mut Context::from_waker(Waker::noop())),
            Poll::Ready(Ok(()))
        )
    };
    // An SSLRequest (8 bytes) may come first; the CancelRequest is the last 16 bytes.
    let start = sink.len.checked_sub(16)?;
    done.then(|| sink.written[start..sink.len].try_into().ok())
        .flatten()
}

/// An in-memory stream that records what is written (an SSLRequest and a CancelRequest at
/// most: 24 bytes; more is an error) and answers `S` (TLS accepted) to an SSLRequest, so that
/// a token of a TLS connection writes its packet through `Plain` too.
#[derive(Debug)]
struct Capture {
    written: [u8; 32],
    len: usize,
}

impl AsyncRead for &mut Capture {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        buf.put_slice(b"S");
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for &mut Capture {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let Some(to) = this.written.get_mut(this.len..this.len + b.len()) else {
            return Poll::Ready(Err(io::Error::other("not a cancel request")));
        };
        to.copy_from_slice(b);
        this.len += b.len();
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl TlsStream for &mut Capture {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// A "TLS" connector that leaves the stream as it is (for `capture` only).
struct Plain;

impl<'a> TlsConnect<&'a mut Capture> for Plain {
    type Stream = &'a mut Capture;
    type Error = io::Error;
    type Future = std::future::Ready<io::Result<&'a mut Capture>>;

    fn connect(self, stream: &'a mut Capture) -> Self::Future {
        std::future::ready(Ok(stream))
    }
}
