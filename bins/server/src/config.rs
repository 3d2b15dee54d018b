//! The server's configuration: Baton's own flags, each also read from its environment variable,
//! plus the CasareRPA document's variables. Defaults work on a laptop with nothing set.
//!
//! The clap attributes below are the one source of every default: `Config::default()`, and so
//! the test harness's configuration, parses an empty command line through them, and a test
//! checks the tables of `docs/configuration.md` and `README.md` against them.

use std::fmt;
use std::net::ToSocketAddrs;
use std::path::PathBuf;

use baton_domain::auth::{Password, parse_robot_tokens};
use baton_domain::robot::RobotId;
use baton_domain::services::credentials::BruteForcePolicy;
use baton_domain::session::TokenLifetimes;
use baton_http::client_ip::TrustedProxies;
use baton_http::rate_limit::RateLimitPolicy;
use clap::builder::{BoolishValueParser, PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{ArgAction, Args, FromArgMatches, Parser, Subcommand, ValueEnum};

pub const DEFAULT_BIND: &str = "127.0.0.1:8000";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./baton-data/baton.db";
/// What `DB_ENABLED=false` and `USE_MEMORY_QUEUE=true` switch to.
pub const MEMORY_DATABASE_URL: &str = "sqlite::memory:";
pub const DEFAULT_WORKFLOWS_DIR: &str = "./workflows";
pub const DEFAULT_ACCESS_TOKEN_MINUTES: u32 = 60;
pub const DEFAULT_REFRESH_TOKEN_DAYS: u32 = 7;
pub const DEFAULT_CONSOLE_SESSION_HOURS: u32 = 12;
/// The brute-force rule: the 5th failed authentication from one address within 60 s bans that
/// address for an hour.
pub const DEFAULT_BAN_THRESHOLD: u32 = 5;
pub const DEFAULT_BAN_WINDOW_SECONDS: u32 = 60;
pub const DEFAULT_BAN_SECONDS: u32 = 3600;
/// Expired leases are recovered, silent robots marked offline and running flows stepped within
/// about this many milliseconds (triggers have a tick of their own, below).
pub const DEFAULT_ENGINE_TICK_MS: u32 = 1000;
/// How often due triggers and schedules are looked for: a schedule must fire within a second of
/// its due time, so the worst case, one period plus one round, must stay well below that. 100 ms
/// leaves a round of 10,000 fires (the schedules benchmark's load, docs/performance.md) most of
/// the second: measured, p99 lag 0.78 s at 100 ms against 0.86–1.03 s at 250 ms, for one cheap
/// indexed query per tick.
pub const DEFAULT_TRIGGER_TICK_MS: u32 = 100;

/// The words `--rate-limits` takes for on and off: `on`/`off`, which `--help` shows, and the
/// words every other switch takes (`BoolishValueParser`'s), so any of them keeps working.
const ON_WORDS: [&str; 6] = ["on", "true", "yes", "y", "t", "1"];
const OFF_WORDS: [&str; 6] = ["off", "false", "no", "n", "f", "0"];

/// A switch spelled `on|off` in `--help` and error messages, accepting the other boolean words
/// as hidden aliases, in any case (with the argument's `ignore_case`).
fn on_off() -> impl TypedValueParser<Value = bool> {
    PossibleValuesParser::new([
        PossibleValue::new(ON_WORDS[0]).aliases(ON_WORDS[1..].iter().copied()),
        PossibleValue::new(OFF_WORDS[0]).aliases(OFF_WORDS[1..].iter().copied()),
    ])
    .map(|word| ON_WORDS.contains(&word.to_ascii_lowercase().as_str()))
}

/// `baton [FLAGS] [COMMAND]`.
#[derive(Debug, Parser)]
#[command(
    name = "baton",
    version,
    about = "Baton: an orchestrator for software robots and automation workflows.",
    long_about = "Baton: an orchestrator for software robots and automation workflows.\n\n\
                  Without a command it serves the API. Every flag can also be set with the \
                  environment variable named in its help."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
}

/// Every setting of the server. Secrets are redacted from its `Debug` output.
///
/// Boolean settings take `true/false`, `yes/no`, `on/off` or `1/0`; anything else is refused, so
/// a typo never flips a switch. Given without a value (`--jwt-dev-mode`) they mean `true`; an
/// explicit value needs `=` (`--jwt-dev-mode=false`) so it is never mistaken for a command.
#[derive(Clone, PartialEq, Eq, Args)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "BATON_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,

    /// Database: `sqlite://PATH` (created on first start) or `postgres://USER:PASSWORD@HOST/DB`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, hide_env_values = true, global = true)]
    pub database_url: String,

    /// Connections in the database pool (the storage's default when unset).
    #[arg(long, env = "BATON_DB_POOL_SIZE", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: Option<u32>,

    /// Password of the `admin` user created on first start (random and printed once if unset).
    #[arg(long, env = "BATON_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Log format on standard error.
    #[arg(
        long,
        env = "BATON_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// Rate limits: `off` turns every limit off (behind a gateway that limits, or for benchmarks).
    #[arg(long, env = "BATON_RATE_LIMITS", default_value = "on", action = ArgAction::Set, value_parser = on_off(), ignore_case = true, value_name = "on|off")]
    pub rate_limits: bool,

    /// Per-route limits replacing the documented ones: `ROUTE=N/unit,...`, where ROUTE is a
    /// path pattern (`/api/trigger`, `/api/v1/metrics/jobs/{job_id}`) or `default`, and unit is
    /// second, minute or hour (e.g. `/api/trigger=20/minute,default=600/minute`).
    #[arg(long, env = "BATON_RATE_LIMIT_RULES", value_name = "ROUTE=N/unit,...")]
    pub rate_limit_rules: Option<String>,

    /// Serve `GET /metrics` without credentials, like the health probes. Off by default: a
    /// scrape then needs the read permission (e.g. a viewer's API key as a bearer token).
    #[arg(long, env = "BATON_METRICS_PUBLIC", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub metrics_public: bool,

    /// Proxies whose `X-Forwarded-For` is believed: IPs and CIDR blocks, comma-separated.
    /// Without any, the client address is always the socket's peer.
    #[arg(long, env = "BATON_TRUSTED_PROXIES", value_name = "IP|CIDR,...")]
    pub trusted_proxies: Option<String>,

    /// Failed authentications from one address, within the window, that ban it.
    #[arg(long, env = "BATON_BAN_THRESHOLD", default_value_t = DEFAULT_BAN_THRESHOLD, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub ban_threshold: u32,

    /// The window, in seconds, in which failed authentications are counted.
    #[arg(long, env = "BATON_BAN_WINDOW_SECONDS", default_value_t = DEFAULT_BAN_WINDOW_SECONDS, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub ban_window_seconds: u32,

    /// How long, in seconds, a banned address is refused.
    #[arg(long, env = "BATON_BAN_SECONDS", default_value_t = DEFAULT_BAN_SECONDS, value_parser = clap::value_parser!(u32).range(1..=31_536_000))]
    pub ban_seconds: u32,

    /// How often, in milliseconds, this server recovers expired leases, marks silent robots
    /// offline and steps running flows.
    #[arg(long, env = "BATON_ENGINE_TICK_MS", default_value_t = DEFAULT_ENGINE_TICK_MS, value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub engine_tick_ms: u32,

    /// How often, in milliseconds, this server fires due triggers and schedules: a schedule
    /// fires at most about this long after its due time.
    #[arg(long, env = "BATON_TRIGGER_TICK_MS", default_value_t = DEFAULT_TRIGGER_TICK_MS, value_parser = clap::value_parser!(u32).range(10..=60_000))]
    pub trigger_tick_ms: u32,

    /// Seconds without a heartbeat after which a robot is marked offline.
    #[arg(long, env = "BATON_ROBOT_OFFLINE_SECONDS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=86_400))]
    pub robot_offline_seconds: u32,

    /// Request-body bytes, in MiB, this server holds in memory at once across every request.
    /// A body that does not fit in what is left is refused with 503 and `Retry-After`.
    #[arg(long, env = "BATON_BODY_BUFFER_MIB", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65_536))]
    pub body_buffer_mib: u32,

    /// Seconds a client has, once connected, to send a request's headers (408 and closed after).
    #[arg(long, env = "BATON_HEADER_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub header_timeout_seconds: u32,

    /// Seconds a client has, after its headers, to send a request's whole body (408 and closed
    /// after).
    #[arg(long, env = "BATON_BODY_TIMEOUT_SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub body_timeout_seconds: u32,

    /// Seconds an idle keep-alive connection stays open waiting for its next request.
    #[arg(long, env = "BATON_KEEP_ALIVE_SECONDS", default_value_t = 75, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub keep_alive_seconds: u32,

    /// Seconds a client has to close its side once the server closed a connection, before the
    /// connection is dropped.
    #[arg(long, env = "BATON_DISCONNECT_TIMEOUT_SECONDS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=3600))]
    pub disconnect_timeout_seconds: u32,

    /// Do not apply pending migrations at start-up.
    #[arg(long, env = "BATON_NO_MIGRATE", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub no_migrate: bool,

    /// Secret that signs JWTs. Required with PostgreSQL (every server must share it); with
    /// SQLite one is generated once and kept beside the database file.
    #[arg(long, env = "JWT_SECRET_KEY", hide_env_values = true)]
    pub jwt_secret_key: Option<String>,

    /// JWT signing algorithm.
    #[arg(
        long,
        env = "JWT_ALGORITHM",
        value_enum,
        default_value = "HS256",
        ignore_case = true
    )]
    pub jwt_algorithm: JwtAlgorithm,

    /// Lifetime of access tokens, in minutes.
    #[arg(long, env = "JWT_ACCESS_TOKEN_EXPIRE_MINUTES", default_value_t = DEFAULT_ACCESS_TOKEN_MINUTES, value_parser = clap::value_parser!(u32).range(1..))]
    pub jwt_access_token_expire_minutes: u32,

    /// Lifetime of refresh tokens, in days.
    #[arg(long, env = "JWT_REFRESH_TOKEN_EXPIRE_DAYS", default_value_t = DEFAULT_REFRESH_TOKEN_DAYS, value_parser = clap::value_parser!(u32).range(1..))]
    pub jwt_refresh_token_expire_days: u32,

    /// Lifetime of a console sign-in (a browser session), in hours.
    #[arg(long, env = "BATON_CONSOLE_SESSION_HOURS", default_value_t = DEFAULT_CONSOLE_SESSION_HOURS, value_parser = clap::value_parser!(u32).range(1..=720))]
    pub console_session_hours: u32,

    /// Bypass authentication, for local testing only; refused with a non-loopback bind.
    #[arg(long, env = "JWT_DEV_MODE", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub jwt_dev_mode: bool,

    /// Require robot tokens (`X-Api-Token`) on the robot protocol.
    #[arg(long, env = "ROBOT_AUTH_ENABLED", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub robot_auth_enabled: bool,

    /// Static robot tokens: `robot-id:sha256hex,...`.
    #[arg(long, env = "ROBOT_TOKENS", hide_env_values = true)]
    pub robot_tokens: Option<String>,

    /// `false` runs on an in-memory database: nothing persists.
    #[arg(long, env = "DB_ENABLED", default_value = "true", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), global = true)]
    pub db_enabled: bool,

    /// Where workflow files are backed up.
    #[arg(long, env = "WORKFLOWS_DIR", default_value = DEFAULT_WORKFLOWS_DIR)]
    pub workflows_dir: PathBuf,

    /// Back workflows up as files in the workflows directory.
    #[arg(long, env = "WORKFLOW_BACKUP_ENABLED", default_value = "true", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new())]
    pub workflow_backup_enabled: bool,

    /// `true` runs on an in-memory database: nothing persists.
    #[arg(long, env = "USE_MEMORY_QUEUE", default_value = "false", action = ArgAction::Set, num_args = 0..=1, require_equals = true, default_missing_value = "true", value_parser = BoolishValueParser::new(), global = true)]
    pub use_memory_queue: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The HMAC algorithms a shared secret can sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "HS384")]
    Hs384,
    #[value(name = "HS512")]
    Hs512,
}

/// A configuration the server refuses to start with.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "JWT_DEV_MODE=true turns authentication off, so it is only allowed on a loopback \
         address, but --bind/BATON_BIND is {bind}. Bind to 127.0.0.1 or turn JWT_DEV_MODE off."
    )]
    DevModeOffLoopback { bind: String },
    #[error(
        "JWT_SECRET_KEY must be set with PostgreSQL: every server on one database must sign \
         tokens with the same secret. Generate one (e.g. `openssl rand -hex 32`) and give it \
         to every server."
    )]
    SharedSecretRequired,
    #[error("BATON_ADMIN_PASSWORD is not usable: {0}")]
    AdminPassword(String),
    #[error("ROBOT_TOKENS is not usable: {0}")]
    RobotTokens(String),
    #[error("--trusted-proxies/BATON_TRUSTED_PROXIES is not usable: {0}")]
    TrustedProxies(String),
    #[error("--rate-limit-rules/BATON_RATE_LIMIT_RULES is not usable: {0}")]
    RateLimitRules(String),
    #[error(
        "--database-url/DATABASE_URL must start with sqlite:// or postgres:// (or postgresql://)"
    )]
    DatabaseUrl,
}

/// The client timeouts of `--header-timeout-seconds`, `--body-timeout-seconds`,
/// `--keep-alive-seconds` and `--disconnect-timeout-seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTimeouts {
    pub header: std::time::Duration,
    pub body: std::time::Duration,
    pub keep_alive: std::time::Duration,
    pub disconnect: std::time::Duration,
}

/// Which database the URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseKind {
    /// A SQLite file at this path.
    SqliteFile(PathBuf),
    SqliteMemory,
    Postgres,
}

impl Config {
    /// Whether `DB_ENABLED`/`USE_MEMORY_QUEUE` asked for a database that does not persist.
    pub fn memory_only(&self) -> bool {
        !self.db_enabled || self.use_memory_queue
    }

    /// The database URL the server will use.
    pub fn effective_database_url(&self) -> &str {
        if self.memory_only() {
            MEMORY_DATABASE_URL
        } else {
            &self.database_url
        }
    }

    /// The effective database, or an error for a URL of an unknown scheme.
    pub fn database_kind(&self) -> Result<DatabaseKind, ConfigError> {
        database_kind(self.effective_database_url())
    }

    /// The JWT secret given in the configuration, if a non-empty one was.
    pub fn jwt_secret(&self) -> Option<&str> {
        self.jwt_secret_key.as_deref().filter(|s| !s.is_empty())
    }

    /// The admin password given in the configuration, checked against the password rules.
    pub fn admin_password(&self) -> Result<Option<Password>, ConfigError> {
        match self.admin_password.as_deref().filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(text) => Password::new(text.to_owned())
                .map(Some)
                .map_err(|e| ConfigError::AdminPassword(e.to_string())),
        }
    }

    /// Everything that must hold before the server touches the database or the network.
    pub fn check_for_serving(&self) -> Result<(), ConfigError> {
        let kind = self.database_kind()?;
        if kind == DatabaseKind::Postgres && self.jwt_secret().is_none() {
            return Err(ConfigError::SharedSecretRequired);
        }
        if self.jwt_dev_mode && !is_loopback_bind(&self.bind) {
            return Err(ConfigError::DevModeOffLoopback {
                bind: self.bind.clone(),
            });
        }
        self.admin_password()?;
        self.robot_token_list()?;
        self.trusted_proxy_list()?;
        self.rate_limit_policy()?;
        Ok(())
    }

    /// `ROBOT_TOKENS` parsed: robot ids with the SHA-256 of their tokens.
    pub fn robot_token_list(&self) -> Result<Vec<(RobotId, String)>, ConfigError> {
        match &self.robot_tokens {
            Some(spec) => {
                parse_robot_tokens(spec).map_err(|e| ConfigError::RobotTokens(e.to_string()))
            }
            None => Ok(Vec::new()),
        }
    }

    /// `--trusted-proxies` parsed.
    pub fn trusted_proxy_list(&self) -> Result<TrustedProxies, ConfigError> {
        match &self.trusted_proxies {
            Some(spec) => TrustedProxies::parse(spec).map_err(ConfigError::TrustedProxies),
            None => Ok(TrustedProxies::none()),
        }
    }

    /// The seeds' rate limits with `--rate-limit-rules` applied, off with `--rate-limits off`.
    pub fn rate_limit_policy(&self) -> Result<RateLimitPolicy, ConfigError> {
        let mut policy = RateLimitPolicy::seeds();
        if let Some(spec) = &self.rate_limit_rules {
            policy = policy
                .with_overrides(spec)
                .map_err(ConfigError::RateLimitRules)?;
        }
        Ok(if self.rate_limits {
            policy
        } else {
            policy.disabled()
        })
    }

    /// The brute-force rule from the `--ban-*` settings.
    pub fn brute_force_policy(&self) -> BruteForcePolicy {
        BruteForcePolicy {
            max_failures: self.ban_threshold,
            window: time::Duration::seconds(i64::from(self.ban_window_seconds)),
            ban: time::Duration::seconds(i64::from(self.ban_seconds)),
        }
    }

    /// How long a client may take over each part of a connection.
    pub fn client_timeouts(&self) -> ClientTimeouts {
        let seconds = |s: u32| std::time::Duration::from_secs(u64::from(s));
        ClientTimeouts {
            header: seconds(self.header_timeout_seconds),
            body: seconds(self.body_timeout_seconds),
            keep_alive: seconds(self.keep_alive_seconds),
            disconnect: seconds(self.disconnect_timeout_seconds),
        }
    }

    /// `--body-buffer-mib` in bytes.
    pub fn body_buffer_bytes(&self) -> usize {
        usize::try_from(u64::from(self.body_buffer_mib) * 1024 * 1024).unwrap_or(usize::MAX)
    }

    /// Token lifetimes from `JWT_ACCESS_TOKEN_EXPIRE_MINUTES` and `JWT_REFRESH_TOKEN_EXPIRE_DAYS`.
    pub fn token_lifetimes(&self) -> TokenLifetimes {
        TokenLifetimes {
            access: time::Duration::minutes(i64::from(self.jwt_access_token_expire_minutes)),
            refresh: time::Duration::days(i64::from(self.jwt_refresh_token_expire_days)),
            browser: time::Duration::hours(i64::from(self.console_session_hours)),
        }
    }
}

impl Default for Config {
    /// The configuration of `baton` started with no flag and no environment variable: an empty
    /// command line parsed through the clap attributes above, which are the one place a default
    /// is written. Every `env` source is removed first, so a variable in the caller's
    /// environment (a developer's `DATABASE_URL`, say) never leaks into it; that is what makes it
    /// the base of the black-box tests' configuration.
    // Safe: every argument of `Config` is optional or has a default, so an empty command line
    // parses and its matches fill every field; `defaults_come_from_an_empty_command_line`
    // fails if an argument ever becomes required.
    #[allow(clippy::expect_used)]
    fn default() -> Self {
        let matches = Self::augment_args(clap::Command::new("baton"))
            .mut_args(|arg| arg.env(None::<&'static str>))
            .try_get_matches_from(["baton"])
            .expect("an empty command line parses: every argument has a default or is optional");
        Self::from_arg_matches(&matches)
            .expect("the matches of an empty command line fill every field")
    }
}

/// Shows every setting but the secrets: the admin password and JWT secret only as set or not,
/// the database URL without its password, robot tokens only as a count.
impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "<redacted>" } else { "<unset>" };
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("database_url", &redact_url(&self.database_url))
            .field("db_pool_size", &self.db_pool_size)
            .field("admin_password", &set(&self.admin_password))
            .field("log_format", &self.log_format)
            .field("rate_limits", &self.rate_limits)
            .field("rate_limit_rules", &self.rate_limit_rules)
            .field("metrics_public", &self.metrics_public)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("ban_threshold", &self.ban_threshold)
            .field("ban_window_seconds", &self.ban_window_seconds)
            .field("ban_seconds", &self.ban_seconds)
            .field("engine_tick_ms", &self.engine_tick_ms)
            .field("trigger_tick_ms", &self.trigger_tick_ms)
            .field("robot_offline_seconds", &self.robot_offline_seconds)
            .field("body_buffer_mib", &self.body_buffer_mib)
            .field("header_timeout_seconds", &self.header_timeout_seconds)
            .field("body_timeout_seconds", &self.body_timeout_seconds)
            .field("keep_alive_seconds", &self.keep_alive_seconds)
            .field(
                "disconnect_timeout_seconds",
                &self.disconnect_timeout_seconds,
            )
            .field("no_migrate", &self.no_migrate)
            .field("jwt_secret_key", &set(&self.jwt_secret_key))
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field(
                "jwt_access_token_expire_minutes",
                &self.jwt_access_token_expire_minutes,
            )
            .field(
                "jwt_refresh_token_expire_days",
                &self.jwt_refresh_token_expire_days,
            )
            .field("console_session_hours", &self.console_session_hours)
            .field("jwt_dev_mode", &self.jwt_dev_mode)
            .field("robot_auth_enabled", &self.robot_auth_enabled)
            .field(
                "robot_tokens",
                &self.robot_tokens.as_deref().map(|s| {
                    format!(
                        "{} entries",
                        s.split(',').filter(|e| !e.trim().is_empty()).count()
                    )
                }),
            )
            .field("db_enabled", &self.db_enabled)
            .field("workflows_dir", &self.workflows_dir)
            .field("workflow_backup_enabled", &self.workflow_backup_enabled)
            .field("use_memory_queue", &self.use_memory_queue)
            .finish()
    }
}

/// Classifies a database URL the way the storage crate accepts them.
pub fn database_kind(url: &str) -> Result<DatabaseKind, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(DatabaseKind::Postgres);
    }
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Err(ConfigError::DatabaseUrl);
    };
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" || query.split('&').any(|p| p == "mode=memory") {
        Ok(DatabaseKind::SqliteMemory)
    } else {
        Ok(DatabaseKind::SqliteFile(PathBuf::from(path)))
    }
}

/// A database URL fit for logs: the password of `scheme://user:password@host` becomes `****`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let masked = if userinfo.contains(':') {
                format!("{user}:****")
            } else {
                user.to_owned()
            };
            format!("{scheme}://{masked}{}", &rest[at..])
        }
        None => url.to_owned(),
    }
}

/// True when every address `bind` resolves to is a loopback address. An address that does not
/// resolve counts as not loopback, so the check fails closed.
pub fn is_loopback_bind(bind: &str) -> bool {
    match bind.to_socket_addrs() {
        Ok(addrs) => {
            let addrs: Vec<_> = addrs.collect();
            !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("baton").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn the_cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_come_from_an_empty_command_line() {
        let c = Config::default();
        assert_eq!(c.bind, "127.0.0.1:8000");
        assert_eq!(c.database_url, "sqlite://./baton-data/baton.db");
        assert_eq!(c.db_pool_size, None);
        assert_eq!(c.admin_password, None);
        assert_eq!(c.log_format, LogFormat::Text);
        assert!(c.rate_limits, "rate limits are on by default");
        assert_eq!(c.rate_limit_rules, None);
        assert!(!c.metrics_public);
        assert_eq!(c.trusted_proxies, None);
        assert_eq!(
            (c.ban_threshold, c.ban_window_seconds, c.ban_seconds),
            (5, 60, 3600)
        );
        assert_eq!(c.engine_tick_ms, 1000);
        assert_eq!(c.trigger_tick_ms, 100);
        assert_eq!(c.robot_offline_seconds, 90);
        assert_eq!(c.body_buffer_mib, 64);
        assert_eq!(
            (
                c.header_timeout_seconds,
                c.body_timeout_seconds,
                c.keep_alive_seconds,
                c.disconnect_timeout_seconds
            ),
            (10, 30, 75, 5)
        );
        assert!(!c.no_migrate);
        assert_eq!(c.jwt_secret_key, None);
        assert_eq!(c.jwt_algorithm, JwtAlgorithm::Hs256);
        assert_eq!(c.jwt_access_token_expire_minutes, 60);
        assert_eq!(c.jwt_refresh_token_expire_days, 7);
        assert!(!c.jwt_dev_mode);
        assert!(!c.robot_auth_enabled, "robot auth is off by default");
        assert_eq!(c.robot_tokens, None);
        assert!(c.db_enabled);
        assert_eq!(c.workflows_dir, PathBuf::from("./workflows"));
        assert!(c.workflow_backup_enabled);
        assert!(!c.use_memory_queue);
    }

    /// The `(flag, variable, default)` cells of each row of the Markdown tables in `markdown`
    /// whose first cell is a flag (`| `--bind` | `BATON_BIND` | `127.0.0.1:8000` | … |`).
    fn documented_settings(markdown: &str) -> Vec<(String, String, String)> {
        markdown
            .lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                let flag = cells.get(1)?.strip_prefix("`--")?.strip_suffix('`')?;
                let variable = cells.get(2)?.trim_matches('`');
                let default = cells.get(3)?;
                Some((flag.to_owned(), variable.to_owned(), (*default).to_owned()))
            })
            .collect()
    }

    /// Checks each documented row against the clap attributes: the flag exists, reads the
    /// variable named, and its default is the one written (a literal in backticks), or it has
    /// none and the row says so in words ("none", "random, printed once", …).
    fn check_documented_settings(doc: &str, markdown: &str) -> Vec<String> {
        use clap::CommandFactory;
        let command = Cli::command();
        let rows = documented_settings(markdown);
        assert!(!rows.is_empty(), "{doc} has no table of settings");
        rows.iter()
            .map(|(flag, variable, default)| {
                let arg = command
                    .get_arguments()
                    .find(|a| a.get_long() == Some(flag.as_str()))
                    .unwrap_or_else(|| panic!("{doc} documents --{flag}, which baton lacks"));
                let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
                assert_eq!(env, variable, "{doc}: the variable of --{flag}");
                let defaults: Vec<_> = arg
                    .get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy().into_owned())
                    .collect();
                match defaults.as_slice() {
                    [value] => assert_eq!(
                        *default,
                        format!("`{value}`"),
                        "{doc}: the default of --{flag}"
                    ),
                    [] => assert!(
                        !default.starts_with('`'),
                        "{doc} gives --{flag} the default {default}, but it has none"
                    ),
                    more => panic!("--{flag} has several defaults: {more:?}"),
                }
                flag.clone()
            })
            .collect()
    }

    #[test]
    fn the_documented_defaults_are_the_ones_clap_applies() {
        use clap::CommandFactory;
        let configuration = include_str!("../../../docs/configuration.md");
        let listed = check_documented_settings("docs/configuration.md", configuration);
        check_documented_settings("README.md", include_str!("../../../README.md"));
        // docs/configuration.md lists every setting, so a new flag cannot go undocumented.
        for arg in Cli::command().get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(
                listed.iter().any(|flag| flag == long),
                "docs/configuration.md does not list --{long}"
            );
        }
    }

    #[test]
    fn rate_limits_are_shown_as_on_off_and_take_every_boolean_word() {
        use clap::CommandFactory;
        let help = Cli::command().render_long_help().to_string();
        let start = help
            .find("--rate-limits <on|off>")
            .expect("--rate-limits in --help");
        let entry = &help[start..];
        let entry = &entry[..entry.find("\n      --").unwrap_or(entry.len())];
        assert!(entry.contains("on, off"), "{entry}");
        assert!(!entry.contains("true"), "{entry}");
        for (word, on) in [
            ("on", true),
            ("off", false),
            ("OFF", false),
            ("true", true),
            ("false", false),
            ("yes", true),
            ("no", false),
            ("1", true),
            ("0", false),
        ] {
            assert_eq!(
                parse(&["--rate-limits", word]).config.rate_limits,
                on,
                "{word}"
            );
        }
    }

    #[test]
    fn flags_parse_into_the_config() {
        let cli = parse(&[
            "--bind",
            "0.0.0.0:9000",
            "--database-url",
            "postgres://baton@db/baton",
            "--log-format",
            "json",
            "--rate-limits",
            "off",
            "--no-migrate",
            "--jwt-algorithm",
            "hs512",
            "--jwt-dev-mode=false",
            "--db-enabled=yes",
            "--use-memory-queue",
            "--jwt-access-token-expire-minutes",
            "15",
        ]);
        assert_eq!(cli.command, None);
        let c = cli.config;
        assert_eq!(c.bind, "0.0.0.0:9000");
        assert_eq!(c.database_url, "postgres://baton@db/baton");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(!c.rate_limits);
        assert!(c.no_migrate);
        assert_eq!(c.jwt_algorithm, JwtAlgorithm::Hs512);
        assert!(!c.jwt_dev_mode);
        assert!(c.db_enabled);
        assert!(
            c.use_memory_queue,
            "a boolean flag without a value means true"
        );
        assert_eq!(c.jwt_access_token_expire_minutes, 15);
    }

    #[test]
    fn migrate_is_a_subcommand_taking_the_database_url_after_it() {
        let cli = parse(&["migrate", "--database-url", "sqlite://x.db"]);
        assert_eq!(cli.command, Some(Command::Migrate));
        assert_eq!(cli.config.database_url, "sqlite://x.db");
    }

    #[test]
    fn bad_values_are_refused() {
        for args in [
            &["--rate-limits", "maybe"][..],
            &["--log-format", "xml"],
            &["--jwt-algorithm", "RS256"],
            &["--jwt-access-token-expire-minutes", "0"],
        ] {
            let argv = std::iter::once("baton").chain(args.iter().copied());
            assert!(Cli::try_parse_from(argv).is_err(), "{args:?}");
        }
    }

    #[test]
    fn memory_mode_replaces_the_database_url() {
        let mut c = Config::default();
        assert_eq!(c.effective_database_url(), DEFAULT_DATABASE_URL);
        c.db_enabled = false;
        assert_eq!(c.effective_database_url(), MEMORY_DATABASE_URL);
        c.db_enabled = true;
        c.use_memory_queue = true;
        assert_eq!(c.database_kind(), Ok(DatabaseKind::SqliteMemory));
    }

    #[test]
    fn database_urls_are_classified() {
        assert_eq!(
            database_kind(DEFAULT_DATABASE_URL),
            Ok(DatabaseKind::SqliteFile("./baton-data/baton.db".into()))
        );
        assert_eq!(
            database_kind("sqlite:///var/lib/baton/b.db?mode=rwc"),
            Ok(DatabaseKind::SqliteFile("/var/lib/baton/b.db".into()))
        );
        assert_eq!(
            database_kind("sqlite::memory:"),
            Ok(DatabaseKind::SqliteMemory)
        );
        assert_eq!(
            database_kind("postgresql://u@h/d"),
            Ok(DatabaseKind::Postgres)
        );
        assert_eq!(
            database_kind("mysql://u@h/d"),
            Err(ConfigError::DatabaseUrl)
        );
    }

    #[test]
    fn postgres_needs_a_shared_jwt_secret() {
        let mut c = Config {
            database_url: "postgres://postgres@127.0.0.1/baton".into(),
            ..Config::default()
        };
        assert_eq!(
            c.check_for_serving(),
            Err(ConfigError::SharedSecretRequired)
        );
        c.jwt_secret_key = Some(String::new());
        assert_eq!(
            c.check_for_serving(),
            Err(ConfigError::SharedSecretRequired)
        );
        c.jwt_secret_key = Some("s".repeat(32));
        assert_eq!(c.check_for_serving(), Ok(()));
    }

    #[test]
    fn dev_mode_is_refused_off_loopback() {
        let mut c = Config {
            jwt_dev_mode: true,
            ..Config::default()
        };
        assert_eq!(c.check_for_serving(), Ok(()));
        c.bind = "[::1]:8000".into();
        assert_eq!(c.check_for_serving(), Ok(()));
        c.bind = "0.0.0.0:8000".into();
        assert!(matches!(
            c.check_for_serving(),
            Err(ConfigError::DevModeOffLoopback { .. })
        ));
        c.jwt_dev_mode = false;
        assert_eq!(c.check_for_serving(), Ok(()));
    }

    #[test]
    fn short_admin_passwords_and_bad_robot_tokens_are_refused() {
        let c = Config {
            admin_password: Some("short".into()),
            ..Config::default()
        };
        assert!(matches!(
            c.check_for_serving(),
            Err(ConfigError::AdminPassword(_))
        ));
        let c = Config {
            robot_tokens: Some("robot-1:nothex".into()),
            ..Config::default()
        };
        assert!(matches!(
            c.check_for_serving(),
            Err(ConfigError::RobotTokens(_))
        ));
    }

    #[test]
    fn debug_output_redacts_every_secret() {
        let c = Config {
            database_url: "postgres://baton:db-pass-123@db:5432/baton".into(),
            admin_password: Some("admin-pass-123".into()),
            jwt_secret_key: Some("jwt-secret-123".into()),
            robot_tokens: Some(format!("r1:{}", "a".repeat(64))),
            ..Config::default()
        };
        let shown = format!("{c:?}");
        for secret in ["db-pass-123", "admin-pass-123", "jwt-secret-123", "aaaa"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(shown.contains("postgres://baton:****@db:5432/baton"));
        assert!(shown.contains("1 entries"));
    }

    #[test]
    fn urls_are_redacted_for_logs() {
        assert_eq!(redact_url("postgres://u:p@h/d"), "postgres://u:****@h/d");
        assert_eq!(redact_url("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(redact_url("postgres://h/d"), "postgres://h/d");
        assert_eq!(
            redact_url("postgres://u:p%40ss@h:5432/d?sslmode=disable"),
            "postgres://u:****@h:5432/d?sslmode=disable"
        );
        assert_eq!(redact_url(DEFAULT_DATABASE_URL), DEFAULT_DATABASE_URL);
    }
}
