//! The error of every `*_ctx` call: the ctx ended first, or the database answered an error.

use std::fmt;

/// The error of a `*_ctx` call: the ctx ended first ([`Error::Done`]) or the database (or the
/// connection) answered an error ([`Error::Db`]).
///
/// `Display` is the inner error's; [`source`](std::error::Error::source) is the inner error.
///
/// # Examples
///
/// ```
/// use ctx_postgres::Error;
///
/// let err = Error::Done(ctx_core::Error::DeadlineExceeded);
/// assert_eq!(err.to_string(), "context deadline exceeded");
/// assert!(err.is_done());
/// ```
#[derive(Debug)]
pub enum Error {
    /// The ctx was done: before anything was sent (nothing was), or while the query ran (the
    /// server has stopped it).
    Done(ctx_core::Error),
    /// tokio-postgres's error, as its own method would have answered it.
    Db(tokio_postgres::Error),
}

// ===== impl Error =====

impl Error {
    /// True for [`Error::Done`]: the ctx ended first.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ctx_postgres::Error::Done(ctx_core::Error::Canceled).is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        matches!(self, Error::Done(_))
    }

    /// The database's error, if it is one ([`Error::Db`]).
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(ctx_postgres::Error::Done(ctx_core::Error::Canceled).as_db().is_none());
    /// ```
    pub fn as_db(&self) -> Option<&tokio_postgres::Error> {
        match self {
            Error::Db(e) => Some(e),
            Error::Done(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Done(e) => fmt::Display::fmt(e, f),
            Error::Db(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Done(e) => Some(e),
            Error::Db(e) => Some(e),
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Db(e)
    }
}

impl From<ctx_core::Error> for Error {
    fn from(e: ctx_core::Error) -> Error {
        Error::Done(e)
    }
}
