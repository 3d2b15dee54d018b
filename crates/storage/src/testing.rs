//! Per-test database isolation, after crates.io's `crates_io_test_db`: every test gets a fresh,
//! migrated database of its own, so tests run in parallel without sharing rows.
//!
//! PostgreSQL: a template database is migrated once per migration set (under an advisory lock,
//! since test processes run concurrently), then each test's database is a copy of it, dropped
//! when the test ends. SQLite: a fresh file in a temporary directory.
//!
//! This is test support: a failure to set a database up is the test's failure, so it panics
//! with a message naming what went wrong rather than returning errors no test would handle.
#![allow(clippy::expect_used, clippy::panic)]

use std::hash::{Hash, Hasher};

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

use crate::db::Db;
use crate::pool::ConnectOptions;

/// The server tests use when `BATON_TEST_DATABASE_URL` is not set.
pub const DEFAULT_TEST_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Serialises template creation and copying across test processes.
const TEMPLATE_LOCK: i64 = 0x0BA7_0002;

/// A database that exists for one test.
pub struct TestDatabase {
    url: String,
    cleanup: Cleanup,
}

enum Cleanup {
    Postgres { server_url: String, name: String },
    Sqlite { _dir: tempfile::TempDir },
}

#[derive(diesel::QueryableByName)]
struct Exists {
    #[diesel(sql_type = diesel::sql_types::Bool)]
    exists: bool,
}

impl TestDatabase {
    /// A fresh migrated PostgreSQL database. Panics, naming the URL, when the server cannot be
    /// reached: tests that need PostgreSQL must fail, never skip.
    pub async fn postgres() -> TestDatabase {
        let server_url = std::env::var("BATON_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_SERVER.to_owned());
        let template = format!("baton_template_{:016x}", migrations_fingerprint());
        let name = format!("baton_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = AsyncPgConnection::establish(&server_url).await.unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test but {server_url} cannot be reached: {e}. Start it, or set BATON_TEST_DATABASE_URL.")
        });
        admin
            .batch_execute(&format!("SELECT pg_advisory_lock({TEMPLATE_LOCK})"))
            .await
            .expect("take the template lock");
        let exists = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS exists",
        )
        .bind::<Text, _>(&template)
        .get_result::<Exists>(&mut admin)
        .await
        .expect("look up the template database")
        .exists;
        if !exists {
            admin
                .batch_execute(&format!("CREATE DATABASE {template}"))
                .await
                .expect("create the template database");
            let db = Db::connect(
                &with_database(&server_url, &template),
                ConnectOptions { pool_size: Some(1) },
            )
            .await
            .expect("connect to the template database");
            db.migrate().await.expect("migrate the template database");
            drop(db);
            // The pool's connection closes asynchronously; copying needs it gone.
            admin
                .batch_execute(&format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{template}' AND pid <> pg_backend_pid()"
                ))
                .await
                .expect("close template connections");
        }
        admin
            .batch_execute(&format!("CREATE DATABASE {name} TEMPLATE {template}"))
            .await
            .expect("copy the template database");
        admin
            .batch_execute(&format!("SELECT pg_advisory_unlock({TEMPLATE_LOCK})"))
            .await
            .expect("release the template lock");
        TestDatabase {
            url: with_database(&server_url, &name),
            cleanup: Cleanup::Postgres { server_url, name },
        }
    }

    /// A fresh migrated SQLite database file in a temporary directory.
    pub async fn sqlite() -> TestDatabase {
        let dir = tempfile::tempdir().expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("baton.db").display());
        let db = Db::connect(&url, ConnectOptions::default())
            .await
            .expect("open the SQLite database");
        db.migrate().await.expect("migrate the SQLite database");
        TestDatabase {
            url,
            cleanup: Cleanup::Sqlite { _dir: dir },
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new pool on this database.
    pub async fn connect(&self) -> Db {
        self.connect_with(ConnectOptions::default()).await
    }

    pub async fn connect_with(&self, options: ConnectOptions) -> Db {
        Db::connect(&self.url, options)
            .await
            .expect("connect to the test database")
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Cleanup::Postgres { server_url, name } = &self.cleanup else {
            return;
        };
        let (server_url, name) = (server_url.clone(), name.clone());
        // Drop cannot await, and the test's runtime may be shutting down: use a thread with a
        // runtime of its own. A failure only leaves a stray database behind.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut admin) = AsyncPgConnection::establish(&server_url).await {
                    let _ = admin
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Replaces the database name at the end of a PostgreSQL URL, keeping any query string.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let root = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{database}?{q}"),
        None => format!("{root}/{database}"),
    }
}

/// Changes whenever a PostgreSQL migration changes, so a stale template is never reused.
fn migrations_fingerprint() -> u64 {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations/postgres");
    let mut files: Vec<_> = walk(&dir);
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(&file).unwrap_or_default().hash(&mut hasher);
    }
    hasher.finish()
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .flat_map(|e| {
            let path = e.path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_names_replace_the_path_of_the_url() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}
