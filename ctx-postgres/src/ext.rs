//! `ClientExt`: tokio-postgres's query methods with a `&Ctx` first.

use std::future::Future;

use ctx_core::Ctx;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, ToStatement};

use crate::Error;
use crate::call::governed;

/// tokio-postgres's query methods with a [`Ctx`] first: when the ctx ends while the query
/// runs, the server stops it.
///
/// Implemented for [`tokio_postgres::Client`], so it also serves what derefs to one (a pool's
/// object, an `Arc<Client>`). Each method behaves as tokio-postgres's own method of the same
/// name, except that:
///
/// * a ctx that is already done answers [`Error::Done`] and sends nothing;
/// * a ctx that ends while the query runs sends PostgreSQL's cancel request; the call answers
///   [`Error::Done`] once the server has stopped the query and the cancel can no longer land
///   on anything sent after it. The connection stays usable. A query that ends first
///   answers as tokio-postgres does (its rows, or its error);
/// * calls through `ClientExt` on one connection take turns (one at a time on the server,
///   in the order they came), so a cancel never stops another call's query. Plain
///   tokio-postgres calls on the same `Client` are not governed: one running alongside a
///   `*_ctx` call may be stopped by that call's cancel. Share a `Client` between a `*_ctx`
///   call and a plain one only when the plain one cannot overlap it.
///
/// The cancel request goes to where the server says it listens (asked once per connection,
/// on its first `*_ctx` call), without TLS; [`CancelRoute`](crate::CancelRoute) gives another
/// address or a TLS connector. If the server cannot be reached, or does not stop the query
/// within about two seconds of three cancel requests, the call answers [`Error::Done`] and
/// the query runs on (the next `*_ctx` call on that connection waits for it to end).
///
/// Needs a tokio runtime (as tokio-postgres does): a cancel runs in a task of its own.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ctx_postgres::{ClientExt, Error};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// # let client = ctx_postgres::test_server::TestServer::shared().unwrap().connect().await?;
/// let (ctx, _cancel) = ctx_tokio::background().with_timeout(Duration::from_millis(300));
/// match client.query_ctx(&ctx, "SELECT pg_sleep(30)", &[]).await {
///     Err(Error::Done(e)) => assert!(e.is_timeout()), // and the server has stopped it
///     other => panic!("{other:?}"),
/// }
/// # Ok(()) }
/// ```
pub trait ClientExt {
    /// [`Client::query`] under `ctx`: the resulting rows.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_postgres::ClientExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ctx_postgres::Error> {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let client = server.connect().await?;
    /// # let ctx = &ctx_tokio::background();
    /// let rows = client.query_ctx(ctx, "SELECT $1::int4", &[&7i32]).await?;
    /// assert_eq!(rows[0].get::<_, i32>(0), 7);
    /// # Ok(()) }
    /// ```
    fn query_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::query_one`] under `ctx`: exactly one row, else tokio-postgres's error.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_postgres::ClientExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ctx_postgres::Error> {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let client = server.connect().await?;
    /// # let ctx = &ctx_tokio::background();
    /// let row = client.query_one_ctx(ctx, "SELECT 1::int4", &[]).await?;
    /// assert_eq!(row.get::<_, i32>(0), 1);
    /// # Ok(()) }
    /// ```
    fn query_one_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::query_opt`] under `ctx`: zero or one row.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_postgres::ClientExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ctx_postgres::Error> {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let client = server.connect().await?;
    /// # let ctx = &ctx_tokio::background();
    /// let row = client.query_opt_ctx(ctx, "SELECT 1 WHERE false", &[]).await?;
    /// assert!(row.is_none());
    /// # Ok(()) }
    /// ```
    fn query_opt_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::execute`] under `ctx`: the number of rows modified.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_postgres::ClientExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ctx_postgres::Error> {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let client = server.connect().await?;
    /// # let ctx = &ctx_tokio::background();
    /// # client.batch_execute("CREATE TEMP TABLE orders (id int4, paid bool)").await?;
    /// let n = client.execute_ctx(ctx, "UPDATE orders SET paid = true WHERE id = $1", &[&7i32]).await?;
    /// assert_eq!(n, 0);
    /// # Ok(()) }
    /// ```
    fn execute_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync;

    /// [`Client::batch_execute`] under `ctx`: several statements separated by semicolons (the
    /// simple query protocol). A cancel stops the statement running then; those before it
    /// stay done unless the batch runs in one transaction.
    ///
    /// # Examples
    ///
    /// ```
    /// use ctx_postgres::ClientExt;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), ctx_postgres::Error> {
    /// # let server = ctx_postgres::test_server::TestServer::shared().unwrap();
    /// # let client = server.connect().await?;
    /// # let ctx = &ctx_tokio::background();
    /// client.batch_execute_ctx(ctx, "CREATE TEMP TABLE t (id int4); DROP TABLE t").await?;
    /// # Ok(()) }
    /// ```
    fn batch_execute_ctx(&self, ctx: &Ctx, query: &str) -> impl Future<Output = Result<(), Error>> + Send;
}

impl ClientExt for Client {
    fn query_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        governed(self, ctx, self.query(statement, params))
    }

    fn query_one_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        governed(self, ctx, self.query_one(statement, params))
    }

    fn query_opt_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        governed(self, ctx, self.query_opt(statement, params))
    }

    fn execute_ctx<T>(
        &self,
        ctx: &Ctx,
        statement: &T,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, Error>> + Send
    where
        T: ?Sized + ToStatement + Sync,
    {
        governed(self, ctx, self.execute(statement, params))
    }

    fn batch_execute_ctx(&self, ctx: &Ctx, query: &str) -> impl Future<Output = Result<(), Error>> + Send {
        governed(self, ctx, self.batch_execute(query))
    }
}
