//! The machine a report was measured on: what `nproc`, `/proc/meminfo` and `/proc/cpuinfo`
//! say, the load when the run began (other work on the machine makes figures noisy), the
//! PostgreSQL server's version and commit setting, and the checkout's commit.

use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub memory: String,
    pub kernel: String,
    pub load_average: String,
    pub postgres: Option<String>,
    pub commit: String,
    pub date: String,
}

#[derive(diesel::QueryableByName)]
struct Settings {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Text)]
    synchronous_commit: String,
}

impl Machine {
    /// Reads everything; what cannot be read is shown as `unknown` rather than failing a run.
    pub async fn read(postgres_url: Option<&str>) -> Self {
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpu_model = proc_field("/proc/cpuinfo", "model name").unwrap_or_else(unknown);
        let memory = proc_field("/proc/meminfo", "MemTotal")
            .and_then(|kb| kb.trim_end_matches("kB").trim().parse::<f64>().ok())
            .map_or_else(unknown, |kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0));
        let kernel = read_trimmed("/proc/sys/kernel/osrelease").unwrap_or_else(unknown);
        let load_average = read_trimmed("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(unknown);
        let postgres = match postgres_url {
            Some(url) => Some(
                postgres_settings(url)
                    .await
                    .unwrap_or_else(|e| format!("unknown ({e})")),
            ),
            None => None,
        };
        let date = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| unknown());
        Machine {
            cpus,
            cpu_model,
            memory,
            kernel,
            load_average,
            postgres,
            commit: commit(),
            date,
        }
    }

    pub fn summary(&self) -> String {
        format!(
            "{} CPUs ({}), {} memory, load average {} at start{}",
            self.cpus,
            self.cpu_model,
            self.memory,
            self.load_average,
            self.postgres
                .as_ref()
                .map_or(String::new(), |pg| format!(", PostgreSQL {pg}"))
        )
    }
}

async fn postgres_settings(url: &str) -> Result<String, String> {
    let mut conn = AsyncPgConnection::establish(url)
        .await
        .map_err(|e| e.to_string())?;
    let settings: Settings = diesel::sql_query(
        "SELECT current_setting('server_version') AS version, \
         current_setting('synchronous_commit') AS synchronous_commit",
    )
    .get_result(&mut conn)
    .await
    .map_err(|e| e.to_string())?;
    Ok(format!(
        "{} (synchronous_commit {})",
        settings.version, settings.synchronous_commit
    ))
}

/// The value of the first `name: value` line of a `/proc` file.
fn proc_field(path: &str, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
}

/// The checkout's commit, marked `+ changes` when the work tree differs from it.
fn commit() -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match run(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if !changes.is_empty() => format!("{hash} + uncommitted changes"),
            _ => hash,
        },
        None => unknown(),
    }
}

fn unknown() -> String {
    "unknown".to_owned()
}
