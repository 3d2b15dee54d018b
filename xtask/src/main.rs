//! Project automation, run as `cargo xtask <command>`: the steps a developer and CI repeat, in
//! Rust so they work the same everywhere. It shells out to cargo and keeps no logic of Baton.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

mod fuzz;

/// The PostgreSQL server the tests use when `BATON_TEST_DATABASE_URL` is not set (the same
/// default as `baton_storage::testing`).
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  migrate [--database-url URL]   apply pending migrations (default: the server's database)
  new-migration NAME             create migrations/{postgres,sqlite}/<timestamp>_NAME/{up,down}.sql
  test [ARGS...]                 check PostgreSQL, build the binaries, run every test
                                 (cargo nextest if installed, else cargo test; ARGS passed on)
  ci                             cargo fmt --check, clippy -D warnings, the OpenAPI check,
                                 cargo doc with warnings denied, the embedding example
                                 (examples/embedding), then `test`
  openapi [--check]              write docs/openapi.json from the code (baton-http's route
                                 table); --check fails when the file is stale instead
  fuzz [SCHEMATHESIS ARGS...]    start `baton` on a fresh SQLite database and fuzz every
                                 operation of its OpenAPI document with schemathesis (from
                                 $SCHEMATHESIS or PATH): fails on any 5xx, or if the server
                                 is not healthy afterwards
  bench [SCENARIO...] [OPTIONS]  build the release server and load generator, measure the
                                 scenarios of docs/performance.md (queue, robots, schedules,
                                 websockets, memory; all by default), print each figure beside its target
                                 and write docs/benchmarks.md. Options: --duration 10s,
                                 --warmup 2s, --databases postgres,sqlite, --report PATH;
                                 `cargo xtask bench -- --help` lists them all";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        bail!("no command given");
    };
    match command.as_str() {
        "migrate" => migrate(rest),
        "new-migration" => new_migration(rest),
        "test" => test(rest),
        "ci" => ci(rest),
        "openapi" => openapi(rest),
        "bench" => bench(rest),
        "fuzz" => fuzz::run(rest),
        "-h" | "--help" | "help" => {
            eprintln!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Runs `cargo ARGS` in the workspace root, failing with the command line if it fails.
fn cargo(args: &[&str]) -> anyhow::Result<()> {
    cargo_with_env(args, &[])
}

/// Runs `cargo ARGS` in the workspace root with extra environment variables.
fn cargo_with_env(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let shown: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v:?} ")).collect();
    eprintln!("xtask: {}cargo {}", shown.concat(), args.join(" "));
    let status = Command::new(&cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(workspace_root())
        .status()
        .with_context(|| format!("running {cargo}"))?;
    if !status.success() {
        bail!("`cargo {}` failed ({status})", args.join(" "));
    }
    Ok(())
}

fn migrate(args: &[String]) -> anyhow::Result<()> {
    let mut cargo_args = vec![
        "run",
        "--quiet",
        "-p",
        "baton-server",
        "--bin",
        "baton",
        "--",
        "migrate",
    ];
    match args {
        [] => {}
        [flag, url] if flag == "--database-url" => cargo_args.extend(["--database-url", url]),
        _ => bail!("usage: cargo xtask migrate [--database-url URL]"),
    }
    cargo(&cargo_args)
}

fn new_migration(args: &[String]) -> anyhow::Result<()> {
    let [name] = args else {
        bail!("usage: cargo xtask new-migration NAME");
    };
    let name = name.replace('-', "_");
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        bail!("a migration name is lower-case letters, digits and underscores, e.g. add_robots");
    }
    let folder = format!("{}_{name}", timestamp(SystemTime::now())?);
    let root = workspace_root().join("migrations");
    for backend in ["postgres", "sqlite"] {
        let dir = root.join(backend).join(&folder);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for (file, what) in [("up.sql", "applies"), ("down.sql", "reverts")] {
            let path = dir.join(file);
            let text = format!(
                "-- {name} ({backend}): {what} the change. Keep the PostgreSQL and SQLite \
                 migrations of one name equal in meaning.\n"
            );
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("xtask: created {}", path.display());
        }
    }
    Ok(())
}

/// `YYYY-MM-DD-HHMMSS` in UTC, diesel's migration folder prefix.
fn timestamp(now: SystemTime) -> anyhow::Result<String> {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .context("the clock is before 1970")?
        .as_secs();
    let days = i64::try_from(secs / 86_400).context("the clock is far in the future")?;
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    Ok(format!(
        "{year:04}-{month:02}-{day:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    ))
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn test(args: &[String]) -> anyhow::Result<()> {
    ensure_postgres()?;
    // The process tests run the real `baton` binary, which `cargo test` does not build for a
    // package other than its own. Building the tests in the same command resolves features
    // once (dev-dependencies included), so the test run that follows compiles nothing again.
    cargo(&["build", "--workspace", "--bins", "--tests"])?;
    let extra: Vec<&str> = args.iter().map(String::as_str).collect();
    let has_nextest = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_nextest {
        let mut cargo_args = vec!["nextest", "run", "--workspace"];
        cargo_args.extend(extra);
        cargo(&cargo_args)
    } else {
        eprintln!("xtask: cargo-nextest is not installed; using cargo test");
        let mut cargo_args = vec!["test", "--workspace"];
        cargo_args.extend(extra);
        cargo(&cargo_args)
    }
}

fn ci(args: &[String]) -> anyhow::Result<()> {
    cargo(&["fmt", "--all", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    openapi(&["--check".to_owned()])?;
    // Documentation without a warning: a broken intra-doc link fails like a failing test. The
    // domain's `testing` feature is on, so the docs of what embedders test with are checked too.
    cargo_with_env(
        &[
            "doc",
            "--workspace",
            "--no-deps",
            "--features",
            "baton-domain/testing",
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // A crate outside the workspace that uses baton-domain as an embedder does, through its
    // public API only; built in the workspace's target directory to reuse its dependencies.
    cargo(&[
        "run",
        "--manifest-path",
        "examples/embedding/Cargo.toml",
        "--target-dir",
        "target",
    ])?;
    test(args)
}

/// The committed OpenAPI document, relative to the workspace root.
const OPENAPI_FILE: &str = "docs/openapi.json";

/// Writes `docs/openapi.json`, or with `--check` fails when it differs from what the code
/// generates. The document comes from baton-http's `openapi` example, which prints what
/// `GET /api/v1/openapi.json` serves; xtask itself stays free of Baton's crates.
fn openapi(args: &[String]) -> anyhow::Result<()> {
    let check = match args {
        [] => false,
        [flag] if flag == "--check" => true,
        _ => bail!("usage: cargo xtask openapi [--check]"),
    };
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let args = [
        "run",
        "--quiet",
        "--package",
        "baton-http",
        "--example",
        "openapi",
    ];
    eprintln!("xtask: cargo {}", args.join(" "));
    let output = Command::new(&cargo)
        .args(args)
        .current_dir(workspace_root())
        .stderr(std::process::Stdio::inherit())
        .output()
        .with_context(|| format!("running {cargo}"))?;
    if !output.status.success() {
        bail!("`cargo {}` failed ({})", args.join(" "), output.status);
    }
    let path = workspace_root().join(OPENAPI_FILE);
    if check {
        let committed = std::fs::read(&path).unwrap_or_default();
        if committed != output.stdout {
            bail!("{OPENAPI_FILE} is stale: run `cargo xtask openapi` and commit the result");
        }
        eprintln!("xtask: {OPENAPI_FILE} is up to date");
    } else {
        std::fs::write(&path, &output.stdout)
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("xtask: wrote {OPENAPI_FILE}");
    }
    Ok(())
}

/// Builds the release `baton` and the load generator (`bins/bench`), then runs the load
/// generator with `args`, writing docs/benchmarks.md unless `--report` says otherwise.
fn bench(args: &[String]) -> anyhow::Result<()> {
    let args: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "--")
        .collect();
    if wants_postgres(&args) {
        ensure_postgres()?;
    }
    cargo(&[
        "build",
        "--release",
        "-p",
        "baton-server",
        "-p",
        "baton-bench",
        "--bins",
    ])?;
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let program = target_dir.join("release").join("baton-bench");
    let mut command = Command::new(&program);
    command.args(&args).current_dir(&root);
    if !args
        .iter()
        .any(|a| *a == "--report" || a.starts_with("--report="))
    {
        command.args(["--report", "docs/benchmarks.md"]);
    }
    let shown = format!("cargo xtask bench {}", args.join(" "));
    command.args(["--command-line", shown.trim_end()]);
    eprintln!("xtask: {}", shown.trim_end());
    let status = command
        .status()
        .with_context(|| format!("running {}", program.display()))?;
    if !status.success() {
        bail!("the benchmark failed ({status})");
    }
    Ok(())
}

/// Whether a bench command line measures on PostgreSQL (the default) rather than SQLite only.
fn wants_postgres(args: &[&str]) -> bool {
    let mut databases = None;
    for (i, arg) in args.iter().enumerate() {
        if let Some(value) = arg.strip_prefix("--databases=") {
            databases = Some(value);
        } else if *arg == "--databases" {
            databases = args.get(i + 1).copied();
        }
    }
    databases.is_none_or(|list| list.split(',').any(|db| db.trim() == "postgres"))
}

/// Makes sure the tests' PostgreSQL answers: it is started with `pg_ctlcluster` if it is down,
/// and its absence is an error, since PostgreSQL tests must never pass by being skipped.
fn ensure_postgres() -> anyhow::Result<()> {
    let url = std::env::var("BATON_TEST_DATABASE_URL")
        .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
    let addrs = server_addresses(&url)?;
    if reachable(&addrs) {
        return Ok(());
    }
    eprintln!(
        "xtask: PostgreSQL at {} is down; trying to start it",
        host_port(&url)
    );
    start_local_clusters();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reachable(&addrs) {
            eprintln!("xtask: PostgreSQL is up");
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!(
        "PostgreSQL is required for the tests but {} cannot be reached, and starting it with \
         pg_ctlcluster did not help. Start PostgreSQL, or point BATON_TEST_DATABASE_URL at one.",
        host_port(&url)
    )
}

/// `host:port` of a PostgreSQL URL, without user or password.
fn host_port(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?']).next().unwrap_or(rest);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host.contains(':') && !host.ends_with(']') {
        host.to_owned()
    } else {
        format!("{host}:5432")
    }
}

fn server_addresses(url: &str) -> anyhow::Result<Vec<SocketAddr>> {
    let target = host_port(url);
    Ok(target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .collect())
}

fn reachable(addrs: &[SocketAddr]) -> bool {
    addrs
        .iter()
        .any(|addr| TcpStream::connect_timeout(addr, Duration::from_secs(2)).is_ok())
}

/// Starts every local cluster named `main` (one per installed PostgreSQL version).
fn start_local_clusters() {
    let Ok(versions) = std::fs::read_dir("/etc/postgresql") else {
        eprintln!("xtask: /etc/postgresql does not exist; cannot start PostgreSQL here");
        return;
    };
    for version in versions.flatten() {
        let version = version.file_name().to_string_lossy().into_owned();
        eprintln!("xtask: pg_ctlcluster --skip-systemctl-redirect {version} main start");
        match Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &version, "main", "start"])
            .status()
        {
            Ok(status) if status.success() => {}
            Ok(status) => eprintln!("xtask: pg_ctlcluster {version} main start: {status}"),
            Err(e) => eprintln!("xtask: cannot run pg_ctlcluster: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_diesel_folder_prefixes() {
        let t = UNIX_EPOCH + Duration::from_secs(1_735_787_045); // 2025-01-02 03:04:05 UTC
        assert_eq!(timestamp(t).unwrap(), "2025-01-02-030405");
        assert_eq!(timestamp(UNIX_EPOCH).unwrap(), "1970-01-01-000000");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29 00:00:00 UTC
        assert_eq!(timestamp(leap).unwrap(), "2000-02-29-000000");
    }

    #[test]
    fn bench_needs_postgres_unless_only_sqlite_is_asked_for() {
        assert!(wants_postgres(&["queue"]));
        assert!(wants_postgres(&["--databases", "postgres"]));
        assert!(wants_postgres(&["--databases=sqlite,postgres"]));
        assert!(!wants_postgres(&["queue", "--databases", "sqlite"]));
        assert!(!wants_postgres(&["--databases=sqlite"]));
    }

    #[test]
    fn host_and_port_come_from_the_url_without_credentials() {
        assert_eq!(host_port(DEFAULT_TEST_DATABASE_URL), "127.0.0.1:5432");
        assert_eq!(
            host_port("postgres://u:p@db.local/x?sslmode=disable"),
            "db.local:5432"
        );
        assert_eq!(host_port("postgresql://u@localhost:6543"), "localhost:6543");
        assert_eq!(host_port("postgres://[::1]:5433/x"), "[::1]:5433");
    }
}
