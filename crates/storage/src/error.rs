//! Translation of driver and pool errors into the domain's [`RepoError`], in one place.

use baton_domain::RepoError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// The error type inside adapter code: `?` works on diesel results and on domain errors alike,
/// and transactions roll back on either.
#[derive(Debug)]
pub struct DbError(pub(crate) RepoError);

impl From<DieselError> for DbError {
    fn from(err: DieselError) -> Self {
        DbError(map_diesel(err))
    }
}

impl From<RepoError> for DbError {
    fn from(err: RepoError) -> Self {
        DbError(err)
    }
}

impl From<DbError> for RepoError {
    fn from(err: DbError) -> Self {
        err.0
    }
}

/// The result type inside adapter code.
pub type DbResult<T> = Result<T, DbError>;

/// Maps a driver error to the port's contract. Driver text is kept for logs only: the HTTP
/// adapter never shows `Internal` messages to clients.
pub(crate) fn map_diesel(err: DieselError) -> RepoError {
    match err {
        DieselError::NotFound => RepoError::NotFound("record"),
        DieselError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::UniqueViolation => RepoError::Conflict("already exists".to_owned()),
            DatabaseErrorKind::ForeignKeyViolation => RepoError::NotFound("referenced record"),
            DatabaseErrorKind::SerializationFailure => {
                RepoError::Conflict("a concurrent change came first; retry".to_owned())
            }
            DatabaseErrorKind::ClosedConnection => {
                RepoError::Unavailable("the database connection closed".to_owned())
            }
            _ if is_busy(info.message()) => {
                RepoError::Unavailable("the database is busy".to_owned())
            }
            _ => RepoError::Internal(info.message().to_owned()),
        },
        other => RepoError::Internal(other.to_string()),
    }
}

/// SQLite reports lock timeouts as generic errors; they mean "try again later", not a bug.
fn is_busy(message: &str) -> bool {
    message.contains("database is locked") || message.contains("database table is locked")
}

/// Pool failures mean the database cannot be reached or is saturated: retryable, 503.
pub(crate) fn map_pool(err: diesel_async::pooled_connection::deadpool::PoolError) -> DbError {
    DbError(RepoError::Unavailable(err.to_string()))
}

/// A stored value that no longer parses into the domain type: the data is corrupt or was written
/// by a newer version. Never the client's fault.
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> DbError {
    DbError(RepoError::Internal(format!(
        "stored {what} is invalid: {detail}"
    )))
}
