//! Embedded migrations, one folder per backend with the same names and meaning.

use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::pool::{Pools, StorageError, Target};

const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");
const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");

/// An arbitrary constant that all Baton servers use to serialise migrations on PostgreSQL.
const MIGRATION_LOCK: i64 = 0x0BA7_0001;

/// Runs pending migrations on a dedicated thread with its own runtime: diesel's harness is
/// synchronous and blocks, which must not happen on the caller's (possibly single-threaded)
/// runtime.
pub(crate) async fn run(target: Target, pools: &Pools) -> Result<(), StorageError> {
    if target == Target::Sqlite(":memory:".to_owned()) {
        // An in-memory database lives in the pool's single connection: migrate through it.
        return run_in_memory(pools).await;
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("baton-migrations".to_owned())
        .spawn(move || {
            let _ = tx.send(run_blocking(target));
        })
        .map_err(|e| StorageError::Migration(format!("cannot start the migration thread: {e}")))?;
    rx.await.map_err(|_| {
        StorageError::Migration("the migration thread stopped unexpectedly".to_owned())
    })?
}

fn run_blocking(target: Target) -> Result<(), StorageError> {
    match target {
        Target::Sqlite(path) => {
            use diesel::Connection as _;
            use diesel::connection::SimpleConnection as _;
            let mut conn = diesel::SqliteConnection::establish(&path)
                .map_err(|e| StorageError::Connect(e.to_string()))?;
            conn.batch_execute("PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL;")
                .map_err(|e| StorageError::Migration(e.to_string()))?;
            // An immediate transaction serialises concurrent first starts on one file.
            conn.immediate_transaction(|conn| {
                conn.run_pending_migrations(SQLITE)
                    .map(|_| ())
                    .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
            })
            .map_err(|e| StorageError::Migration(e.to_string()))
        }
        Target::Postgres(url) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .map_err(|e| StorageError::Migration(e.to_string()))?;
            runtime.block_on(async move {
                use diesel_async::{
                    AsyncConnection as _, AsyncPgConnection, SimpleAsyncConnection as _,
                };
                let mut conn = AsyncPgConnection::establish(&url)
                    .await
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                conn.batch_execute(&format!("SELECT pg_advisory_lock({MIGRATION_LOCK})"))
                    .await
                    .map_err(|e| StorageError::Migration(e.to_string()))?;
                let mut harness = diesel_async::AsyncMigrationHarness::new(conn);
                let result = tokio::task::block_in_place(|| {
                    harness.run_pending_migrations(POSTGRES).map(|_| ())
                })
                .map_err(|e| StorageError::Migration(e.to_string()));
                let mut conn = harness.into_inner();
                // Closing the session releases the lock too; unlocking explicitly is just tidy.
                let _ = conn
                    .batch_execute(&format!("SELECT pg_advisory_unlock({MIGRATION_LOCK})"))
                    .await;
                result
            })
        }
    }
}

async fn run_in_memory(pools: &Pools) -> Result<(), StorageError> {
    let Pools::Sqlite(pool) = pools else {
        return Err(StorageError::Migration(
            "in-memory databases are SQLite".to_owned(),
        ));
    };
    let mut conn = pool
        .get()
        .await
        .map_err(|e| StorageError::Connect(e.to_string()))?;
    conn.spawn_blocking(|conn| {
        conn.run_pending_migrations(SQLITE)
            .map(|_| ())
            .map_err(|e| diesel::result::Error::QueryBuilderError(e.to_string().into()))
    })
    .await
    .map_err(|e| StorageError::Migration(e.to_string()))
}
