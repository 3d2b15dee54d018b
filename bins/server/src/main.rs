//! `baton`: serves the API, or with `migrate` only migrates the database.

use std::process::ExitCode;

use baton_server::config::{Cli, Command};
use baton_server::{Application, migrate_only, shutdown, telemetry};
use clap::Parser;

/// mimalloc rather than glibc's malloc: the server allocates and frees many small buffers per
/// request (rows, JSON, events), and glibc's malloc took about a third of its CPU under the
/// robots benchmark (`cargo xtask bench robots`; docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// tokio's multi-threaded runtime, not `#[actix_web::main]`: migrations block, which only the
// multi-threaded runtime allows; actix-web's HttpServer runs on it as well.
#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = telemetry::init(cli.config.log_format) {
        eprintln!("baton: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate_only(&cli.config).await,
        Command::Serve => serve(cli).await,
    };
    // The whole cause chain on one line, in the chosen log format; no backtrace, since every
    // start-up error says what to change.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    // Listening before start-up, so a stop asked for while migrating is honoured.
    let stop = shutdown::install_signal_handlers()?;
    Application::build(cli.config).await?.run_until(stop).await
}
