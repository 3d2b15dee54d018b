//! The figures as a table on standard output, and as `docs/benchmarks.md`.

use std::fmt::Write as _;
use std::io::Write as _;

use crate::machine::Machine;
use crate::scenarios::{Context, Figure, ScenarioName, Verdict};

/// One scenario's figures, as they come in (on standard error, beside the progress lines).
pub fn print(figures: &[Figure]) {
    for figure in figures {
        eprintln!(
            "    {:<58} {:>22}   target {:<22} {}",
            figure.what,
            figure.measured_text(),
            figure.target_text(),
            figure.verdict().text()
        );
    }
}

/// Every figure, each beside its target, on standard output.
pub fn print_all(figures: &[Figure]) {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<11} {:<11} {:<58} {:>22}   {:<24} verdict",
        "scenario", "database", "figure", "measured", "target"
    );
    for figure in figures {
        let _ = writeln!(
            out,
            "{:<11} {:<11} {:<58} {:>22}   {:<24} {}",
            figure.scenario.name(),
            figure.database.map_or("—", |db| db.name()),
            figure.what,
            figure.measured_text(),
            figure.target_text(),
            figure.verdict().text()
        );
    }
    let missed = figures
        .iter()
        .filter(|f| f.verdict() == Verdict::Missed)
        .count();
    let _ = writeln!(out, "\n{missed} target(s) missed.");
    // A closed standard output (e.g. piped into `head`) loses the table, nothing else.
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// The Markdown report.
pub fn markdown(
    machine: &Machine,
    command_line: &str,
    context: &Context,
    selection: &[ScenarioName],
    figures: &[Figure],
) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# Benchmarks\n");
    let _ = writeln!(
        md,
        "Written by `cargo xtask bench` (the `baton-bench` load generator, `bins/bench`); run it \
         again to refresh this page. Each scenario starts the release `baton` as a process on a \
         fresh database (a PostgreSQL database created and dropped for the run, or a new SQLite \
         file), with `--rate-limits off` and `RUST_LOG=warn`, and drives it over HTTP/1.1 with \
         keep-alive connections, one per simulated client. The load generator runs on the same \
         machine, so it competes with the server and the database for the CPUs.\n"
    );
    let _ = writeln!(md, "## Machine\n");
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| CPUs (`nproc`) | {} |", machine.cpus);
    let _ = writeln!(md, "| CPU model | {} |", machine.cpu_model);
    let _ = writeln!(md, "| memory | {} |", machine.memory);
    let _ = writeln!(md, "| kernel | {} |", machine.kernel);
    if let Some(pg) = &machine.postgres {
        let _ = writeln!(md, "| PostgreSQL | {pg} |");
    }
    let _ = writeln!(
        md,
        "| load average when the run began | {} |",
        machine.load_average
    );
    let _ = writeln!(md, "| commit | {} |", machine.commit);
    let _ = writeln!(md, "| date | {} |\n", machine.date);
    let _ = writeln!(md, "## Command\n");
    let _ = writeln!(md, "```\n{command_line}\n```\n");
    if !context.server_env.is_empty() {
        let env: Vec<String> = context
            .server_env
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect();
        let _ = writeln!(md, "Server environment added: {}.\n", env.join(", "));
    }
    let names: Vec<&str> = selection.iter().map(|s| s.name()).collect();
    let _ = writeln!(
        md,
        "Scenarios: {}; each measurement {:.0} s after {:.0} s of warm-up.\n",
        names.join(", "),
        context.duration.as_secs_f64(),
        context.warmup.as_secs_f64()
    );
    if selection.contains(&ScenarioName::Schedules) {
        let _ = writeln!(
            md,
            "Schedules scenario: {} per-second schedules.\n",
            crate::scenarios::thousands(context.schedules as f64)
        );
    }
    if selection.contains(&ScenarioName::Websockets) {
        let _ = writeln!(
            md,
            "Websockets scenario: {} clients of `/ws/live-jobs`, {} jobs created per second.\n",
            crate::scenarios::thousands(context.ws_clients as f64),
            context.ws_jobs_per_second
        );
    }
    let _ = writeln!(md, "## Results\n");
    let _ = writeln!(
        md,
        "| scenario | database | figure | measured | target | verdict | notes |\n|---|---|---|---:|---|---|---|"
    );
    for figure in figures {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            figure.scenario.name(),
            figure.database.map_or("—", |db| db.name()),
            figure.what,
            figure.measured_text(),
            figure.target_text(),
            figure.verdict().text(),
            figure.note.as_deref().unwrap_or("").replace('|', "\\|")
        );
    }
    md
}
