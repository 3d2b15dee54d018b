//! `baton`: serves the API, or with `migrate` only migrates the database.

use baton_server::config::{Cli, Command};
use baton_server::{Application, migrate_only, shutdown, telemetry};
use clap::Parser;

// tokio's multi-threaded runtime, not `#[actix_web::main]`: migrations block, which only the
// multi-threaded runtime allows; actix-web's HttpServer runs on it as well.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    telemetry::init(cli.config.log_format)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => migrate_only(&cli.config).await,
        Command::Serve => {
            // Listening before start-up, so a stop asked for while migrating is honoured.
            let stop = shutdown::install_signal_handlers()?;
            let app = Application::build(cli.config).await?;
            app.run_until(stop).await
        }
    }
}
