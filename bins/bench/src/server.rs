//! The server under measurement: a fresh database of either backend, and the release `baton`
//! started on it as a process of its own, exactly as an operator would run it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

/// The admin password of every benchmark server.
pub const ADMIN_PASSWORD: &str = "bench-admin-password";
/// The JWT secret of every benchmark server (PostgreSQL requires one to be set).
const JWT_SECRET: &str = "baton-bench-secret-0123456789abcdef0123456789abcdef";
/// How long a server may take to answer `/health` after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a server may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// Which database a measurement runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Postgres => "PostgreSQL",
            Backend::Sqlite => "SQLite",
        }
    }
}

/// A database that exists for one measurement, with a scratch directory that is the server's
/// working directory (and holds the SQLite file). A PostgreSQL database is dropped on drop.
pub struct Database {
    url: String,
    dir: tempfile::TempDir,
    postgres: Option<(String, String)>,
    /// Leave the PostgreSQL database in place when dropped (`--keep-databases`).
    keep: bool,
}

impl Database {
    pub async fn create(backend: Backend, postgres_url: &str, keep: bool) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir().context("creating a scratch directory")?;
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}", dir.path().join("baton.db").display());
                Ok(Database {
                    url,
                    dir,
                    postgres: None,
                    keep,
                })
            }
            Backend::Postgres => {
                let name = format!("baton_bench_{}", uuid::Uuid::new_v4().simple());
                let mut admin = AsyncPgConnection::establish(postgres_url)
                    .await
                    .with_context(|| {
                        format!("connecting to PostgreSQL at {}", redact(postgres_url))
                    })?;
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .with_context(|| format!("creating the database {name}"))?;
                Ok(Database {
                    url: with_database(postgres_url, &name),
                    dir,
                    postgres: Some((postgres_url.to_owned(), name)),
                    keep,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The pids of the PostgreSQL backends connected to this database (none on SQLite, or when
    /// PostgreSQL runs on another machine, where they cannot be measured anyway).
    pub async fn backend_pids(&self) -> Vec<u32> {
        #[derive(diesel::QueryableByName)]
        struct Backend {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            pid: i32,
        }
        let Some((server_url, name)) = &self.postgres else {
            return Vec::new();
        };
        let Ok(mut conn) = AsyncPgConnection::establish(server_url).await else {
            return Vec::new();
        };
        diesel_async::RunQueryDsl::load::<Backend>(
            diesel::sql_query("SELECT pid FROM pg_stat_activity WHERE datname = $1")
                .bind::<diesel::sql_types::Text, _>(name),
            &mut conn,
        )
        .await
        .map(|rows| {
            rows.into_iter()
                .filter_map(|r| u32::try_from(r.pid).ok())
                .collect()
        })
        .unwrap_or_default()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let Some((server_url, name)) = self.postgres.take() else {
            return;
        };
        if self.keep {
            eprintln!("baton-bench: kept the database {name}");
            return;
        }
        // Drop cannot await, and the runtime may be busy or shutting down: a thread with a
        // runtime of its own drops the database. A failure leaves a stray database, named
        // `baton_bench_…`, which is reported.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async move {
                let mut admin = AsyncPgConnection::establish(&server_url)
                    .await
                    .map_err(|e| e.to_string())?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|e| format!("dropping {name}: {e}"))
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("baton-bench: warning: {e}"),
            Err(_) => eprintln!("baton-bench: warning: dropping the database panicked"),
        }
    }
}

/// A running `baton` process. Killed if dropped while running.
pub struct Server {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
}

impl Server {
    /// Starts `binary` on `database` with rate limits off and logs at `warn` (an access log
    /// line per request is an operator's choice, not part of the measured path), and waits
    /// until `/health` answers.
    pub async fn start(
        binary: &Path,
        database: &Database,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let port = free_port()?;
        let base = format!("http://127.0.0.1:{port}");
        let log = database.dir().join("baton.log");
        let stderr = std::fs::File::create(&log).context("creating the server log")?;
        let child = tokio::process::Command::new(binary)
            .args([
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--rate-limits",
                "off",
            ])
            .current_dir(database.dir())
            .env_clear()
            .env("DATABASE_URL", database.url())
            .env("BATON_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("JWT_SECRET_KEY", JWT_SECRET)
            .env("ROBOT_AUTH_ENABLED", "true")
            .env("WORKFLOW_BACKUP_ENABLED", "false")
            .env("RUST_LOG", "warn")
            .envs(extra_env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Server { child, base, log };
        server.wait_until_healthy().await?;
        Ok(server)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The resident set size of the process now, from `/proc/<pid>/status` (`VmRSS`), in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("the server has exited")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .context("reading /proc/<pid>/status")?;
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|n| n.trim().parse().ok())
            .context("no VmRSS line in /proc/<pid>/status")?;
        Ok(kib * 1024)
    }

    /// Stops the server with SIGTERM, as an operator would, and waits for it to exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // The workspace forbids `unsafe`, so the signal is sent by `kill`, not by libc.
            let _ = tokio::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for the server")?;
                if !status.success() {
                    eprintln!(
                        "baton-bench: warning: the server exited with {status}\n{}",
                        self.log_tail()
                    );
                }
                Ok(())
            }
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("the server did not stop within {STOP_TIMEOUT:?} of SIGTERM")
            }
        }
    }

    async fn wait_until_healthy(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().context("polling the server")? {
                bail!(
                    "the server exited with {status} at start-up\n{}",
                    self.log_tail()
                );
            }
            if let Ok(response) = client.get(self.url("/health")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /health within {START_TIMEOUT:?}\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The end of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(20);
        format!(
            "server log ({}):\n{}",
            self.log.display(),
            lines[start..].join("\n")
        )
    }
}

/// A port nothing listens on right now: bound to port 0, then released.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener
        .local_addr()
        .context("reading the bound port")?
        .port())
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

/// A PostgreSQL URL without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.split_once('@') {
        Some((user, host)) => {
            let user = user.split(':').next().unwrap_or(user);
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn passwords_are_left_out_of_messages() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
