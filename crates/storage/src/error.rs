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
            // `UnableToSendCommand` is how diesel-async reports a PostgreSQL connection that
            // broke under a query (closed by the server, reset, timed out), besides the kind
            // made for it.
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand => {
                RepoError::Unavailable(format!("the database connection broke: {}", info.message()))
            }
            _ if is_connection_lost(info.message()) => RepoError::Unavailable(format!(
                "the database ended the connection: {}",
                info.message()
            )),
            _ if is_busy(info.message()) => {
                RepoError::Unavailable("the database is busy".to_owned())
            }
            _ => RepoError::Internal(info.message().to_owned()),
        },
        // The connection's transaction state was lost with the connection; the pool discards
        // such a connection, so the next request gets a sound one.
        DieselError::BrokenTransactionManager => {
            RepoError::Unavailable("the database connection broke inside a transaction".to_owned())
        }
        DieselError::RollbackErrorOnCommit { commit_error, .. } => map_diesel(*commit_error),
        other => RepoError::Internal(other.to_string()),
    }
}

/// PostgreSQL's messages when it ends a session itself (SQLSTATE class 57, "operator
/// intervention": `pg_terminate_backend`, a restart, a fail-over). diesel does not pass the
/// SQLSTATE on, so the message is what tells them apart; the server that sent it is gone or
/// going, and a retry on a new connection is the remedy.
fn is_connection_lost(message: &str) -> bool {
    [
        "terminating connection due to administrator command",
        "terminating connection due to conflict with recovery",
        "terminating connection due to idle-session timeout",
        "the database system is shutting down",
        "the database system is starting up",
        "the database system is in recovery mode",
        "server closed the connection unexpectedly",
        "connection closed",
    ]
    .iter()
    .any(|known| message.contains(known))
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

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorKind, Error as DieselError};

    use super::*;

    fn database_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn a_broken_or_ended_connection_is_unavailable_not_internal() {
        for err in [
            database_error(DatabaseErrorKind::ClosedConnection, "closed"),
            database_error(DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            database_error(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            database_error(
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
            DieselError::BrokenTransactionManager,
            DieselError::RollbackErrorOnCommit {
                rollback_error: Box::new(DieselError::BrokenTransactionManager),
                commit_error: Box::new(database_error(
                    DatabaseErrorKind::UnableToSendCommand,
                    "error communicating with the server",
                )),
            },
        ] {
            let shown = format!("{err:?}");
            assert!(
                matches!(map_diesel(err), RepoError::Unavailable(_)),
                "{shown}"
            );
        }
    }

    #[test]
    fn other_driver_errors_stay_internal() {
        let err = database_error(
            DatabaseErrorKind::Unknown,
            "relation \"jobs\" does not exist",
        );
        assert!(matches!(map_diesel(err), RepoError::Internal(_)));
    }
}
