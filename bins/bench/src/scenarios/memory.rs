//! Scenario 5: the resident memory (`VmRSS` of `/proc/<pid>/status`) of a server that started
//! on a fresh database and has served nothing yet but its own health probe. The other half of
//! the memory target, with 1,000 websocket clients, belongs to the websockets scenario.

use std::time::Duration;

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::server::Backend;

/// Idle RSS target, in megabytes (10^6 bytes).
const IDLE_TARGET_MB: f64 = 50.0;
/// How long the server idles before it is measured: its background loops tick meanwhile.
const SETTLE: Duration = Duration::from_secs(3);

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let (database, server) = context.start_idle(backend).await?;
    tokio::time::sleep(SETTLE).await;
    let rss = server.rss_bytes()?;
    server.stop().await?;
    drop(database);
    Ok(vec![
        Figure::new(
            ScenarioName::Memory,
            Some(backend),
            "idle server RSS",
            Unit::Megabytes,
        )
        .measured(rss as f64 / 1e6)
        .target(Target::AtMost(IDLE_TARGET_MB))
        .note(format!(
            "VmRSS after start-up and {} s idle",
            SETTLE.as_secs()
        )),
    ])
}
