//! The robot's command line: `--server`, `--robot-id` and `--token`, fixed so that scripts
//! written against Baton keep working, plus the switches of the reference robot, each also read from its environment variable.

use std::fmt;
use std::time::Duration;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};

/// Where a robot started with nothing set looks for its server: `baton`'s default bind.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8000";

/// `baton-robot [FLAGS]`. Secrets are redacted from its `Debug` output.
#[derive(Clone, PartialEq, Eq, Parser)]
#[command(
    name = "baton-robot",
    version,
    about = "The reference Baton robot: claims jobs and runs their workflows until stopped.",
    long_about = "The reference Baton robot: registers with its token, heartbeats, long-polls \
                  for jobs and runs their workflow graphs until SIGINT or SIGTERM, when it gives \
                  back the job in hand and exits 0.\n\nEvery flag can also be set with the \
                  environment variable named in its help. Prefer the variable for the token: \
                  flags are visible to every user of the machine in its process list."
)]
pub struct Config {
    /// The Baton server, `http://HOST:PORT`.
    #[arg(long, env = "BATON_SERVER", default_value = DEFAULT_SERVER)]
    pub server: String,

    /// This robot's id, as created with `POST /api/v1/robots` or listed in `ROBOT_TOKENS`.
    #[arg(long, env = "BATON_ROBOT_ID")]
    pub robot_id: String,

    /// This robot's token (sent as `X-Api-Token`).
    #[arg(long, env = "BATON_ROBOT_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Allow `Shell` nodes to run commands on this machine (off: they fail).
    #[arg(long, env = "BATON_ROBOT_ENABLE_SHELL", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub enable_shell: bool,

    /// An API key with the operator role, used only by `QueueAdd` nodes: robot tokens hold no
    /// role, and the robot protocol has no call that adds queue items.
    #[arg(long, env = "BATON_ROBOT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Seconds between heartbeats.
    #[arg(long, env = "BATON_ROBOT_HEARTBEAT_SECONDS", default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub heartbeat_seconds: u32,

    /// Seconds one claim waits on the server for a job (the long poll).
    #[arg(long, env = "BATON_ROBOT_CLAIM_WAIT_SECONDS", default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=30))]
    pub claim_wait_seconds: u32,

    /// Seconds between lease renewals while a node runs; keep it well below the server's lease.
    #[arg(long, env = "BATON_ROBOT_RENEW_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub renew_seconds: u32,

    /// Log format on standard error.
    #[arg(long, env = "BATON_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// What must hold before the robot calls anything, so a typo fails at once with the rule
    /// it broke rather than as a stream of refused requests.
    pub fn check(&self) -> anyhow::Result<()> {
        let id_ok = !self.robot_id.is_empty()
            && self.robot_id.len() <= 64
            && self
                .robot_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !id_ok {
            anyhow::bail!(
                "--robot-id/BATON_ROBOT_ID must be 1-64 characters of letters, digits, '_' or '-'"
            );
        }
        if self.token.trim().is_empty() {
            anyhow::bail!("--token/BATON_ROBOT_TOKEN is empty");
        }
        if self.server.starts_with("https://") {
            anyhow::bail!(
                "--server/BATON_SERVER is an https:// URL, but this build of baton-robot has no \
                 TLS: reach the server over http:// (e.g. through a local TLS-terminating proxy)"
            );
        }
        if !self.server.starts_with("http://") {
            anyhow::bail!("--server/BATON_SERVER must be an http:// URL, e.g. {DEFAULT_SERVER}");
        }
        Ok(())
    }

    pub fn heartbeat_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.heartbeat_seconds))
    }

    pub fn renew_every(&self) -> Duration {
        Duration::from_secs(u64::from(self.renew_seconds))
    }
}

/// Shows every setting but the token and the API key, which appear only as set or not.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("server", &self.server)
            .field("robot_id", &self.robot_id)
            .field("token", &"<redacted>")
            .field("enable_shell", &self.enable_shell)
            .field(
                "api_key",
                &self.api_key.as_ref().map_or("<unset>", |_| "<redacted>"),
            )
            .field("heartbeat_seconds", &self.heartbeat_seconds)
            .field("claim_wait_seconds", &self.claim_wait_seconds)
            .field("renew_seconds", &self.renew_seconds)
            .field("log_format", &self.log_format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("baton-robot").chain(args.iter().copied()))
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Config::command().debug_assert();
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let c = parse(&["--robot-id", "r1", "--token", "br_x"]).unwrap();
        assert_eq!(c.server, DEFAULT_SERVER);
        assert!(!c.enable_shell);
        assert_eq!(c.heartbeat_seconds, 15);
        assert_eq!(c.claim_wait_seconds, 20);
        assert_eq!(c.renew_seconds, 5);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.check().is_ok());
        let c = parse(&[
            "--robot-id",
            "r1",
            "--token",
            "t",
            "--enable-shell",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(c.enable_shell);
        assert_eq!(c.log_format, LogFormat::Json);
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(
            parse(&["--robot-id", "r1"]).is_err(),
            "the token is required"
        );
        assert!(
            parse(&[
                "--robot-id",
                "r1",
                "--token",
                "t",
                "--claim-wait-seconds",
                "31"
            ])
            .is_err()
        );
        for (id, server) in [
            ("bad id", DEFAULT_SERVER),
            ("r1", "https://baton.example"),
            ("r1", "baton.example:8000"),
        ] {
            let c = parse(&["--robot-id", id, "--token", "t", "--server", server]).unwrap();
            assert!(c.check().is_err(), "{id} {server}");
        }
    }

    #[test]
    fn debug_output_hides_the_secrets() {
        let c = parse(&[
            "--robot-id",
            "r1",
            "--token",
            "br_secret",
            "--api-key",
            "bk_secret",
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}
