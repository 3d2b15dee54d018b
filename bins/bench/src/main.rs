//! `baton-bench`: the load generator behind `cargo xtask bench` (docs/performance.md). For each selected
//! scenario and database it starts the release `baton` as a process of its own, on a fresh
//! PostgreSQL database it creates and drops or on a fresh SQLite file, drives it over HTTP with
//! keep-alive connections and rate limits off, prints each figure beside its target and writes
//! the results, with the machine they were measured on, to `docs/benchmarks.md`.
//!
//! Each scenario lives in a module of [`scenarios`]; adding one is adding a module and a name.

mod api;
mod cpu;
mod load;
mod machine;
mod report;
mod scenarios;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;

use crate::scenarios::{Context, ScenarioName};
use crate::server::Backend;

/// The PostgreSQL server used when `BATON_TEST_DATABASE_URL` is not set (as the tests do).
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// `baton-bench [SCENARIO...] [--duration 10s] ...`.
#[derive(Debug, Parser)]
#[command(
    name = "baton-bench",
    about = "Measures a release `baton` against its throughput, latency and memory targets \
             (docs/performance.md)."
)]
struct Cli {
    /// Scenarios to run; all of them when none is named.
    #[arg(value_enum)]
    scenarios: Vec<ScenarioName>,

    /// How long each measurement runs: seconds (`10`, `10s`) or minutes (`1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,

    /// Load applied before each measurement starts, not counted (same format as --duration).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,

    /// The databases to measure on, comma-separated.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "postgres,sqlite"
    )]
    databases: Vec<Backend>,

    /// The PostgreSQL server in which a fresh database is created (and dropped) per run.
    #[arg(long, env = "BATON_TEST_DATABASE_URL", default_value = DEFAULT_POSTGRES_URL, hide_env_values = true)]
    postgres_url: String,

    /// The `baton` binary to measure; by default the one beside this program.
    #[arg(long)]
    baton: Option<PathBuf>,

    /// Where to write the Markdown report; nothing is written without it.
    #[arg(long)]
    report: Option<PathBuf>,

    /// Extra environment of the measured server, `NAME=VALUE`, repeatable: for experiments
    /// with its settings (e.g. `--server-env BATON_DB_POOL_SIZE=20`).
    #[arg(long = "server-env", value_name = "NAME=VALUE", value_parser = parse_env)]
    server_env: Vec<(String, String)>,

    /// Per-second schedules created by the schedules scenario (the target's load: 10,000).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    schedules: u32,

    /// Websocket clients of the websockets scenario (the target's load: 1,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    ws_clients: u32,

    /// Jobs created per second while the websocket clients listen.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    ws_jobs_per_second: u32,

    /// Queue items the console scenario makes before timing its pages (the target's: 1,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1_000..=10_000_000))]
    console_items: u32,

    /// Jobs the console scenario makes before timing its pages (the target's: 100,000).
    #[arg(long, default_value_t = 100_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    console_jobs: u32,

    /// Keeps each PostgreSQL database after its run, for a profile to read (`pg_stat_*`,
    /// `pageinspect`); their names are printed. Drop them by hand afterwards.
    #[arg(long)]
    keep_databases: bool,

    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,

    /// The command line the report shows (set by `cargo xtask bench`).
    #[arg(long, hide = true, default_value = "baton-bench")]
    command_line: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.client_threads.max(1))
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("baton-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("baton-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let selection = if cli.scenarios.is_empty() {
        ScenarioName::ALL.to_vec()
    } else {
        let mut named = Vec::new();
        for scenario in &cli.scenarios {
            if !named.contains(scenario) {
                named.push(*scenario);
            }
        }
        named
    };
    if cli.databases.is_empty() {
        bail!("--databases names no database");
    }
    let baton = match cli.baton {
        Some(path) => path,
        None => beside_this_program("baton")?,
    };
    if !baton.is_file() {
        bail!(
            "{} does not exist: build it with `cargo build --release -p baton-server` (or run \
             `cargo xtask bench`, which does)",
            baton.display()
        );
    }
    let machine = machine::Machine::read(
        cli.databases
            .contains(&Backend::Postgres)
            .then_some(cli.postgres_url.as_str()),
    )
    .await;
    eprintln!("baton-bench: {}", machine.summary());

    let context = Context {
        baton,
        server_env: cli.server_env.clone(),
        postgres_url: cli.postgres_url.clone(),
        duration: cli.duration,
        warmup: cli.warmup,
        schedules: cli.schedules as usize,
        ws_clients: cli.ws_clients as usize,
        ws_jobs_per_second: cli.ws_jobs_per_second,
        console_items: cli.console_items as usize,
        console_jobs: cli.console_jobs as usize,
        keep_databases: cli.keep_databases,
    };
    let mut figures = Vec::new();
    for scenario in &selection {
        for &database in &cli.databases {
            let label = format!(" on {}", database.name());
            eprintln!("baton-bench: {}{label} ...", scenario.name());
            let measured = scenarios::run(*scenario, &context, database)
                .await
                .with_context(|| format!("scenario {}{label}", scenario.name()))?;
            report::print(&measured);
            figures.extend(measured);
        }
    }

    eprintln!();
    report::print_all(&figures);
    if let Some(path) = &cli.report {
        let text = report::markdown(&machine, &cli.command_line, &context, &selection, &figures);
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("baton-bench: wrote {}", path.display());
    }
    Ok(())
}

/// A program in the same directory as this one (`target/release/baton` beside
/// `target/release/baton-bench`).
fn beside_this_program(name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating this program")?;
    let dir = exe
        .parent()
        .context("this program has no parent directory")?;
    Ok(dir.join(name))
}

/// `NAME=VALUE`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// `10`, `10s`, `1m` or `500ms`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 10s, 1m or 500ms"))?;
    let duration = match unit {
        "ms" => Duration::from_millis(value),
        "s" => Duration::from_secs(value),
        "m" => Duration::from_secs(value * 60),
        _ => return Err(format!("`{text}`: the unit is ms, s or m")),
    };
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_seconds_minutes_and_milliseconds() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("10h").is_err());
        assert!(parse_duration("").is_err());
    }
}
