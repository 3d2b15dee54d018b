//! The `baton` server's composition root: it reads the configuration, opens the database,
//! creates the first user, wires the storage into the HTTP adapter, and serves until stopped.
//! No business rule lives here.

pub mod background;
pub mod bootstrap;
pub mod config;
mod engine;
mod health;
pub mod secrets;
pub mod shutdown;
pub mod telemetry;

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use anyhow::Context;
use baton_domain::ports::Store;
use baton_domain::{Clock, IdGenerator, SystemClock, UuidV7Generator};
use baton_http::AppState;
use baton_http::auth::jwt::{HmacAlgorithm, JwtCodec};
use baton_http::auth::{AccessControl, AuthSettings};
use baton_http::backup::WorkflowBackup;
use baton_http::body_guard::BodyGuard;
use baton_http::live::LiveHub;
use baton_http::prometheus::{Prometheus, ScrapeAccess};
use baton_http::rate_limit::RateLimiter;
use baton_http::server::ServerTimeouts;
use baton_storage::{ConnectOptions, Db};

use crate::background::BackgroundTasks;
use crate::bootstrap::AdminBootstrap;
use crate::config::{Config, JwtAlgorithm, redact_url};
use crate::secrets::{JwtSecret, SecretSource};

/// How long in-flight requests get to finish once a stop is asked for.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// A server that is bound and ready to run.
pub struct Application {
    address: SocketAddr,
    server: Server,
    stop: tokio::sync::oneshot::Sender<()>,
    db: Db,
    admin: AdminBootstrap,
    jwt_secret: JwtSecret,
    background: BackgroundTasks,
}

impl Application {
    /// Checks the configuration, connects to the database and migrates it (unless
    /// `--no-migrate`), creates the first user if there is none, and binds the listener
    /// (port 0 picks a free port). Connections queue on the bound socket until
    /// [`Application::run_until`] or [`Application::run_until_stopped`] serves them.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        tracing::info!(version = env!("CARGO_PKG_VERSION"), "starting baton");
        config.check_for_serving()?;
        warn_about_risky_settings(&config);

        let db = connect(&config).await?;
        if config.no_migrate {
            tracing::info!("--no-migrate: pending migrations are not applied");
        } else {
            db.migrate().await.context("applying database migrations")?;
            tracing::info!("database schema is up to date");
        }

        let (jwt_secret, source) = secrets::resolve_jwt_secret(&config)?;
        log_secret_source(&source);

        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let outcome = bootstrap::ensure_admin(
            Arc::new(db.clone()),
            clock.clone(),
            config.admin_password()?,
        )
        .await
        .context("creating the first user")?;
        report_bootstrap(&outcome)?;

        let state = app_state(&config, &db, &jwt_secret, clock)?;
        let background = engine::start(&config, &state);
        let listener =
            TcpListener::bind(&config.bind).with_context(|| format!("binding {}", config.bind))?;
        let address = listener.local_addr().context("reading the bound address")?;

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let live = state.live.clone();
        let timeouts = config.client_timeouts();
        // A client that connects and sends nothing, sends its headers slowly, idles between
        // requests or never closes its side is cut off after these; the body's own deadline is
        // the body guard's (`BodyGuard`).
        let server_timeouts = ServerTimeouts {
            header: timeouts.header,
            keep_alive: timeouts.keep_alive,
            disconnect: timeouts.disconnect,
            shutdown: SHUTDOWN_TIMEOUT,
        };
        // Either a sent stop or a dropped sender means the server should stop.
        let stop_signal = async move {
            let _ = stopped.await;
            // Open websockets would hold the graceful stop for its whole timeout: close them.
            live.close_all();
        };
        let server = baton_http::server::serve(listener, server_timeouts, stop_signal, move || {
            baton_http::app(state.clone())
        })
        .with_context(|| format!("listening on {address}"))?;
        tracing::info!("baton is listening on http://{address}");

        Ok(Self {
            address,
            server,
            stop,
            db,
            admin: outcome.summary(),
            jwt_secret,
            background,
        })
    }

    /// The port the server listens on (the real one when the configuration asked for port 0).
    pub fn port(&self) -> u16 {
        self.address.port()
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// What start-up did about the first user.
    pub fn admin_bootstrap(&self) -> AdminBootstrap {
        self.admin
    }

    /// The storage the server runs on.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The secret that signs this server's JWTs.
    pub fn jwt_secret(&self) -> &JwtSecret {
        &self.jwt_secret
    }

    /// Serves until SIGINT or SIGTERM, then finishes in-flight requests and returns.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let signals = shutdown::install_signal_handlers().context("listening for signals")?;
        self.run_until(signals).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests (for at most 30 s) and
    /// returns. Tests and embedders use it to stop the server without a signal.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            stop: stop_sender,
            background,
            ..
        } = self;
        tokio::spawn(async move {
            stop.await;
            let _ = stop_sender.send(());
        });
        let served = server.await.context("serving HTTP");
        background.stop().await;
        served?;
        tracing::info!("baton stopped");
        Ok(())
    }
}

/// Wires the storage, the clock and the security settings into what the HTTP adapter needs.
fn app_state(
    config: &Config,
    db: &Db,
    jwt_secret: &JwtSecret,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let store: Arc<dyn Store> = Arc::new(db.clone());
    let ids: Arc<dyn IdGenerator> = Arc::new(UuidV7Generator);
    let algorithm = match config.jwt_algorithm {
        JwtAlgorithm::Hs256 => HmacAlgorithm::Hs256,
        JwtAlgorithm::Hs384 => HmacAlgorithm::Hs384,
        JwtAlgorithm::Hs512 => HmacAlgorithm::Hs512,
    };
    let codec = Arc::new(JwtCodec::new(jwt_secret.expose().as_bytes(), algorithm));
    let proxies = Arc::new(config.trusted_proxy_list()?);
    let access = AccessControl::new(
        store.clone(),
        codec,
        clock.clone(),
        ids.clone(),
        AuthSettings {
            dev_mode: config.jwt_dev_mode,
            robot_auth_enabled: config.robot_auth_enabled,
            robot_tokens: config.robot_token_list()?,
            lifetimes: config.token_lifetimes(),
            brute_force: config.brute_force_policy(),
            trusted_proxies: proxies.clone(),
        },
    )
    .context("preparing authentication")?;
    Ok(AppState {
        store,
        health: Arc::new(health::StorageHealth(db.clone())),
        clock,
        ids,
        access: Arc::new(access),
        rate_limiter: Arc::new(RateLimiter::new(config.rate_limit_policy()?, proxies)),
        workflow_backup: config
            .workflow_backup_enabled
            .then(|| Arc::new(WorkflowBackup::new(config.workflows_dir.clone()))),
        live: Arc::new(LiveHub::new()),
        body_guard: Arc::new(BodyGuard::new(
            config.body_buffer_bytes(),
            config.client_timeouts().body,
        )),
        prometheus: Arc::new(Prometheus::new(if config.metrics_public {
            ScrapeAccess::Public
        } else {
            ScrapeAccess::Read
        })),
    })
}

/// Runs `baton migrate`: applies pending migrations and returns.
pub async fn migrate_only(config: &Config) -> anyhow::Result<()> {
    let db = connect(config).await?;
    db.migrate().await.context("applying database migrations")?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn connect(config: &Config) -> anyhow::Result<Db> {
    let url = config.effective_database_url();
    if config.memory_only() {
        tracing::warn!(
            "DB_ENABLED=false or USE_MEMORY_QUEUE=true: running on an IN-MEMORY database. \
             NOTHING PERSISTS: every user, workflow, queue item and job is lost when this \
             server stops, and no other server can share its data."
        );
    }
    tracing::info!(database = %redact_url(url), "connecting to the database");
    let options = ConnectOptions {
        pool_size: config.db_pool_size.map(|n| n as usize),
    };
    Db::connect(url, options)
        .await
        .with_context(|| format!("connecting to {}", redact_url(url)))
}

fn warn_about_risky_settings(config: &Config) {
    if config.jwt_dev_mode {
        tracing::warn!(
            "JWT_DEV_MODE=true: AUTHENTICATION IS OFF. Every request is served as an admin. \
             Use this only for local testing; it is refused on non-loopback addresses."
        );
    }
    if !config.rate_limits {
        tracing::info!("--rate-limits off: no rate limit applies");
    }
}

fn log_secret_source(source: &SecretSource) {
    match source {
        SecretSource::Configured => tracing::info!("JWT secret: from JWT_SECRET_KEY"),
        SecretSource::File(path) => {
            tracing::info!(path = %path.display(), "JWT secret: read from file")
        }
        SecretSource::Generated(path) => tracing::info!(
            path = %path.display(),
            "JWT secret: generated and saved (keep this file private; set JWT_SECRET_KEY to \
             choose the secret yourself)"
        ),
        SecretSource::Ephemeral => tracing::warn!(
            "JWT secret: generated for this run only; tokens stop working at restart"
        ),
    }
}

fn report_bootstrap(outcome: &bootstrap::Outcome) -> anyhow::Result<()> {
    match outcome {
        bootstrap::Outcome::AlreadyBootstrapped => {
            tracing::debug!("users exist: no first user created")
        }
        bootstrap::Outcome::Created { generated: None } => tracing::info!(
            "created the first user '{}' with the password from BATON_ADMIN_PASSWORD",
            bootstrap::ADMIN_USERNAME
        ),
        bootstrap::Outcome::Created {
            generated: Some(password),
        } => {
            tracing::info!(
                "created the first user '{}' with a random password, printed on standard output",
                bootstrap::ADMIN_USERNAME
            );
            bootstrap::print_generated_password(password, std::io::stdout().lock())
                .context("printing the admin password")?;
        }
    }
    Ok(())
}
