//! `baton-robot`: the reference robot. It runs until SIGINT or SIGTERM, then exits 0; it exits
//! non-zero only when it cannot work at all (bad settings, a token the server refuses).

use std::process::ExitCode;

use baton_robot::config::Config;
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(e) = baton_robot::telemetry::init(config.log_format) {
        eprintln!("baton-robot: {e:#}");
        return ExitCode::FAILURE;
    }
    match baton_robot::run(config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
