//! The scenarios of the performance targets (docs/performance.md), one module each, and the
//! figures they report.
//!
//! A scenario is an `async fn run(&Context, Backend) -> anyhow::Result<Vec<Figure>>` that starts
//! its own server on a fresh database ([`Context::start`]), measures, and stops it. To add one:
//! write the module, add its name to [`ScenarioName`] and its call to [`run`]. Its figures
//! appear in the printed table and the report without further changes.

mod console;
mod memory;
mod queue;
mod robots;
mod schedules;
mod websockets;

use std::path::PathBuf;
use std::time::Duration;

use crate::api::Api;
use crate::cpu::{self, PerOperation};
use crate::server::{Backend, Database, Server};

/// The scenarios, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScenarioName {
    /// 1: `POST /api/queue` at 64 connections.
    Queue,
    /// 2: 32 robots claiming and completing jobs.
    Robots,
    /// 3: 10,000 per-second schedules (`--schedules`).
    Schedules,
    /// 4: 1,000 websocket clients (`--ws-clients`).
    Websockets,
    /// 5: the idle server's resident memory.
    Memory,
    /// 6: the console's pages over 1,000,000 items and 100,000 jobs (`--console-items`).
    Console,
}

impl ScenarioName {
    pub const ALL: [ScenarioName; 6] = [
        ScenarioName::Queue,
        ScenarioName::Robots,
        ScenarioName::Schedules,
        ScenarioName::Websockets,
        ScenarioName::Memory,
        ScenarioName::Console,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ScenarioName::Queue => "queue",
            ScenarioName::Robots => "robots",
            ScenarioName::Schedules => "schedules",
            ScenarioName::Websockets => "websockets",
            ScenarioName::Memory => "memory",
            ScenarioName::Console => "console",
        }
    }
}

/// Runs one scenario on `backend`.
pub async fn run(
    scenario: ScenarioName,
    context: &Context,
    backend: Backend,
) -> anyhow::Result<Vec<Figure>> {
    match scenario {
        ScenarioName::Queue => queue::run(context, backend).await,
        ScenarioName::Robots => robots::run(context, backend).await,
        ScenarioName::Schedules => schedules::run(context, backend).await,
        ScenarioName::Websockets => websockets::run(context, backend).await,
        ScenarioName::Memory => memory::run(context, backend).await,
        ScenarioName::Console => console::run(context, backend).await,
    }
}

/// What every scenario is given.
pub struct Context {
    pub baton: PathBuf,
    /// Extra environment of the server (`--server-env`).
    pub server_env: Vec<(String, String)>,
    pub postgres_url: String,
    pub duration: Duration,
    pub warmup: Duration,
    /// Per-second schedules of the schedules scenario (`--schedules`).
    pub schedules: usize,
    /// Clients of the websockets scenario (`--ws-clients`).
    pub ws_clients: usize,
    /// Jobs created per second while the websocket clients listen (`--ws-jobs-per-second`).
    pub ws_jobs_per_second: u32,
    /// Queue items and jobs the console scenario makes (`--console-items`, `--console-jobs`).
    pub console_items: usize,
    pub console_jobs: usize,
    /// Whether PostgreSQL databases outlive their run (`--keep-databases`).
    pub keep_databases: bool,
}

/// A server on a fresh database, with the admin's token.
pub struct Running {
    pub server: Server,
    pub admin: String,
    database: Database,
}

impl Context {
    /// The release server on a fresh database of `backend`, logged in as the admin.
    pub async fn start(&self, backend: Backend) -> anyhow::Result<Running> {
        let (database, server) = self.start_idle(backend).await?;
        let admin = Api::new(&server).admin_token().await?;
        Ok(Running {
            server,
            admin,
            database,
        })
    }

    /// The release server on a fresh database of `backend`, before any request.
    pub async fn start_idle(&self, backend: Backend) -> anyhow::Result<(Database, Server)> {
        let database = Database::create(backend, &self.postgres_url, self.keep_databases).await?;
        let server = Server::start(&self.baton, &database, &self.server_env).await?;
        Ok((database, server))
    }
}

impl Running {
    /// The URL of the server's database, for reading back what it stored.
    pub fn database_url(&self) -> &str {
        self.database.url()
    }

    pub fn api(&self) -> Api<'_> {
        Api::new(&self.server)
    }

    /// The CPU time of the server, its PostgreSQL backends and this program, now.
    pub async fn cpu(&self) -> CpuNow {
        CpuNow {
            server: cpu::Snapshot::of(&self.server.pid().into_iter().collect::<Vec<_>>()),
            postgres: cpu::Snapshot::of(&self.database.backend_pids().await),
            client: cpu::Snapshot::of(&[std::process::id()]),
        }
    }

    /// What each party spent per operation since `before`.
    pub async fn cpu_since(
        &self,
        before: &CpuNow,
        operations: u64,
        backend: Backend,
    ) -> PerOperation {
        let now = self.cpu().await;
        PerOperation::new(
            now.server.since(&before.server),
            (backend == Backend::Postgres).then(|| now.postgres.since(&before.postgres)),
            now.client.since(&before.client),
            operations,
        )
    }

    /// Stops the server, then drops its database.
    pub async fn stop(self) -> anyhow::Result<()> {
        let Running {
            server, database, ..
        } = self;
        server.stop().await?;
        drop(database);
        Ok(())
    }
}

/// CPU times at one moment (see [`Running::cpu`]).
pub struct CpuNow {
    server: cpu::Snapshot,
    postgres: cpu::Snapshot,
    client: cpu::Snapshot,
}

/// The CPUs of this machine.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// One measured (or not yet measured) number, with the target it is held to.
#[derive(Debug, Clone)]
pub struct Figure {
    pub scenario: ScenarioName,
    pub database: Option<Backend>,
    pub what: String,
    pub unit: Unit,
    /// `None` until the scenario exists.
    pub value: Option<f64>,
    pub target: Option<Target>,
    /// Anything a reader needs to interpret the number (e.g. the failures seen).
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSecond(&'static str),
    Millis,
    Megabytes,
    Count(&'static str),
}

impl Unit {
    pub fn format(self, amount: f64) -> String {
        match self {
            Unit::PerSecond(what) => format!("{} {what}/s", thousands(amount)),
            Unit::Millis => format!("{amount:.1} ms"),
            Unit::Megabytes => format!("{amount:.1} MB"),
            Unit::Count(what) => format!("{} {what}", thousands(amount)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

/// How a figure compares to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Met,
    Missed,
    NotMeasured,
    /// The figure has no target: it is there to explain the others.
    Informative,
}

impl Verdict {
    pub fn text(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "MISSED",
            Verdict::NotMeasured => "not measured yet",
            Verdict::Informative => "",
        }
    }
}

impl Figure {
    pub fn new(
        scenario: ScenarioName,
        database: Option<Backend>,
        what: impl Into<String>,
        unit: Unit,
    ) -> Self {
        Figure {
            scenario,
            database,
            what: what.into(),
            unit,
            value: None,
            target: None,
            note: None,
        }
    }

    pub fn measured(mut self, amount: f64) -> Self {
        self.value = Some(amount);
        self
    }

    pub fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }

    pub fn note(mut self, note: impl Into<String>) -> Self {
        let note = note.into();
        self.note = (!note.is_empty()).then_some(note);
        self
    }

    pub fn verdict(&self) -> Verdict {
        match (self.value, self.target) {
            (None, _) => Verdict::NotMeasured,
            (Some(_), None) => Verdict::Informative,
            (Some(amount), Some(Target::AtLeast(bound))) => {
                if amount >= bound {
                    Verdict::Met
                } else {
                    Verdict::Missed
                }
            }
            (Some(amount), Some(Target::AtMost(bound))) => {
                if amount <= bound {
                    Verdict::Met
                } else {
                    Verdict::Missed
                }
            }
        }
    }

    pub fn measured_text(&self) -> String {
        match self.value {
            Some(amount) => self.unit.format(amount),
            None => "not measured yet".to_owned(),
        }
    }

    pub fn target_text(&self) -> String {
        match self.target {
            Some(Target::AtLeast(bound)) => format!("≥ {}", self.unit.format(bound)),
            Some(Target::AtMost(bound)) => format!("≤ {}", self.unit.format(bound)),
            None => "—".to_owned(),
        }
    }
}

/// `12345.6` → `12,346`.
pub fn thousands(amount: f64) -> String {
    let rounded = amount.round();
    let digits = format!("{:.0}", rounded.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0.0 {
        format!("-{out}")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(12_345.6), "12,346");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }

    #[test]
    fn verdicts_compare_with_the_target() {
        let figure = |amount, target| {
            Figure::new(ScenarioName::Queue, None, "x", Unit::Millis)
                .measured(amount)
                .target(target)
        };
        assert_eq!(figure(25.0, Target::AtMost(25.0)).verdict(), Verdict::Met);
        assert_eq!(
            figure(25.1, Target::AtMost(25.0)).verdict(),
            Verdict::Missed
        );
        assert_eq!(figure(10.0, Target::AtLeast(10.0)).verdict(), Verdict::Met);
        assert_eq!(
            Figure::new(ScenarioName::Queue, None, "x", Unit::Millis).verdict(),
            Verdict::NotMeasured
        );
    }
}
