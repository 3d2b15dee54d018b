//! Stopping on SIGINT or SIGTERM.

use std::future::Future;

use tokio::signal::unix::{SignalKind, signal};

/// Starts listening for SIGINT and SIGTERM now, and returns a future that completes at the
/// first of them. Listening begins at the call, not at the first poll, so a signal that arrives
/// while the server is still starting is not lost: it stops the server as soon as it runs.
pub fn install_signal_handlers() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name} received: finishing in-flight requests, then stopping");
    })
}
