//! One governed call: the turn on the connection, the query, and — when the ctx ends first —
//! the cancel request, until it can no longer land.
//!
//! # The rules it keeps
//!
//! 1. A governed call sends nothing before it has the connection's turn, and gives the turn
//!    back only when no cancel request of its own can land any more (`route::send` has seen
//!    its socket end). Governed calls on one connection therefore never overlap on the
//!    server: while one holds the turn, whatever the backend runs is that call's own.
//! 2. A query whose call ended without seeing it end (the call's future was dropped, or its
//!    cancels did not stop it) marks the connection `abandoned`; the next call first runs an
//!    empty statement behind it (a fence), so that its own query is at the head before any
//!    cancel of its own is sent.
//! 3. The cancel and its retries run in a task that owns the turn, so dropping the call's
//!    future in the middle keeps rule 1.
//!
//! Plain tokio-postgres calls on the same `Client` are not seen: a cancel may stop one that
//! was pipelined together with a governed call (documented on `ClientExt`).

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Duration;

use ctx_core::Ctx;
use tokio::sync::oneshot;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::Error;
use crate::registry::{self, Conn};
use crate::route::{CancelRoute, DiscoveredTarget};

/// How long to wait for the query to stop after each cancel request has been delivered,
/// before sending another (a cancel that arrives while the backend waits between the
/// messages of one call is discarded by the server). After the last, the call gives up.
const STOP_WAITS: [Duration; 3] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
];

/// Runs `call` (a tokio-postgres future on `client`) under `ctx`.
pub(crate) async fn governed<T, F>(client: &Client, ctx: &Ctx, call: F) -> Result<T, Error>
where
    F: Future<Output = Result<T, tokio_postgres::Error>>,
{
    if let Some(e) = ctx.err() {
        return Err(Error::Done(e));
    }
    let conn = registry::conn(client);
    let mut done = pin!(ctx.done());

    // Rule 1: the turn.
    let turn = match first(pin!(conn.turn.clone().lock_owned()), done.as_mut()).await {
        Ok(turn) => turn,
        Err(e) => return Err(Error::Done(e)),
    };
    // Rule 2: whatever an earlier call left running ends before our query starts.
    if conn.abandoned.load(Ordering::Relaxed) {
        match first(pin!(client.batch_execute("")), done.as_mut()).await {
            Ok(Ok(())) => conn.abandoned.store(false, Ordering::Relaxed),
            Ok(Err(e)) => return Err(Error::Db(e)),
            Err(e) => return Err(Error::Done(e)),
        }
    }
    // Rule 2 again: if this call ends (or its future is dropped) while a statement of its own
    // may still run, say so.
    let mut mark = AbandonMark(Some(&conn));
    if !conn.is_routed() {
        match first(pin!(discover(client)), done.as_mut()).await {
            Ok(Some(found)) => conn.set_discovered(CancelRoute::discovered(found)),
            Ok(None) => {}                        // no route: a cancel cannot be sent
            Err(e) => return Err(Error::Done(e)), // the question may still run: marked
        }
    }
    let mut call = pin!(call);
    let e = match first(call.as_mut(), done.as_mut()).await {
        Ok(out) => {
            mark.clear();
            return out.map_err(Error::Db);
        }
        Err(e) => e,
    };

    // The ctx ended while the query ran. Rule 3: a task owns the turn from here on.
    let Some(route) = conn.route() else {
        // No way to reach the server: the query runs on, as after a plain drop.
        return Err(Error::Done(e));
    };
    // The query counts as abandoned until the task hears that it ended (the task clears the
    // mark, while it still owns the turn).
    mark.clear();
    conn.abandoned.store(true, Ordering::Relaxed);
    let conn = conn.clone();
    let (ended_tx, ended_rx) = oneshot::channel::<()>();
    let token = client.cancel_token();
    let mut canceler = tokio::spawn(async move {
        let _turn = turn;
        if cancel_until_ended(&route, &token, ended_rx).await {
            conn.abandoned.store(false, Ordering::Relaxed);
        }
    });
    let out = poll_fn(|cx| {
        if let Poll::Ready(out) = call.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        // The canceler gave up: the query is abandoned (the mark stays).
        match std::pin::Pin::new(&mut canceler).poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await;
    let Some(out) = out else {
        return Err(Error::Done(e));
    };
    let _ = ended_tx.send(());
    // Answer once the cancel can no longer land on anything the caller sends next.
    let _ = canceler.await;
    match out {
        Err(db) if db.code() == Some(&SqlState::QUERY_CANCELED) => Err(Error::Done(e)),
        other => other.map_err(Error::Db),
    }
}

/// Sends cancel requests until the query has ended, each one only after the previous one's
/// socket has ended, waiting `STOP_WAITS` between them. Returns when the last one sent can no
/// longer land: true if the query was seen to end, false if the call's future was dropped
/// (its sender with it) or the query outlived every wait.
async fn cancel_until_ended(
    route: &CancelRoute,
    token: &tokio_postgres::CancelToken,
    ended: oneshot::Receiver<()>,
) -> bool {
    let mut ended = pin!(ended);
    for wait in STOP_WAITS {
        if !route.send(token).await {
            return false; // the server was not reached: nothing can land, nothing will stop
        }
        match tokio::time::timeout(wait, ended.as_mut()).await {
            Ok(Ok(())) => return true,
            Ok(Err(_)) => return false,
            Err(_) => {}
        }
    }
    false
}

/// Marks the connection `abandoned` when dropped while armed (see rule 2).
struct AbandonMark<'a>(Option<&'a Conn>);

impl AbandonMark<'_> {
    fn clear(&mut self) {
        self.0 = None;
    }
}

impl Drop for AbandonMark<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.0.take() {
            conn.abandoned.store(true, Ordering::Relaxed);
        }
    }
}

/// `a`'s output, or `b`'s as an `Err` if `b` is ready first. `a` is polled first, so an `a`
/// that is ready wins over a `b` that became ready in the same wake.
async fn first<A, B, E>(mut a: std::pin::Pin<&mut A>, mut b: std::pin::Pin<&mut B>) -> Result<A::Output, E>
where
    A: Future + ?Sized,
    B: Future<Output = E> + ?Sized,
{
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Ok(out));
        }
        b.as_mut().poll(cx).map(Err)
    })
    .await
}

/// Asks the server where this connection reached it: its TCP address and port, or its Unix
/// socket. `None` when it cannot say (the cancel then cannot be sent).
async fn discover(client: &Client) -> Option<DiscoveredTarget> {
    const ASK: &str = "SELECT host(inet_server_addr()), inet_server_port(), \
                       current_setting('unix_socket_directories'), current_setting('port')";
    let messages = client.simple_query(ASK).await.ok()?;
    let row = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => Some(row),
        _ => None,
    })?;
    if let (Some(addr), Some(port)) = (row.get(0), row.get(1)) {
        return Some(DiscoveredTarget::Tcp(addr.parse().ok()?, port.parse().ok()?));
    }
    #[cfg(unix)]
    {
        let dir = row.get(2)?.split(',').next()?.trim();
        let port = row.get(3)?;
        if !dir.is_empty() && !dir.starts_with('@') {
            let path = std::path::Path::new(dir).join(format!(".s.PGSQL.{port}"));
            return Some(DiscoveredTarget::Unix(path));
        }
    }
    None
}
