//! The robot's life: register with a heartbeat, keep heartbeating beside the work, claim jobs
//! with a long poll and run them one at a time, until a stop signal.
//!
//! The robot never gives up on an unreachable server (it retries with backoff, so a server
//! restart is a pause, not a crash); it exits non-zero only when the server refuses its token,
//! which no retry can fix.

use std::time::Duration;

use anyhow::Context;
use reqwest::Url;

use crate::backoff::Backoff;
use crate::client::{CallError, Client, Heartbeat};
use crate::config::Config;
use crate::nodes::{Secret, Services};
use crate::runner::{JobEnd, Runner};
use crate::shutdown::{Stop, listen_for_signals};
use crate::system::{LoadSampler, hostname};

/// Runs the robot until SIGINT/SIGTERM (then `Ok`) or until the server refuses its token.
pub async fn run(config: Config) -> anyhow::Result<()> {
    config.check()?;
    let stop = Stop::new();
    listen_for_signals(stop.clone()).context("listening for stop signals")?;
    let client = Client::new(&config.server, &config.robot_id, config.token.clone())?;
    let services = services(&config)?;
    let capabilities = services.capabilities();
    tracing::info!(
        server = %config.server,
        robot = %config.robot_id,
        ?capabilities,
        "baton-robot starting"
    );
    let beats = Heartbeats {
        client: client.clone(),
        robot_id: config.robot_id.clone(),
        hostname: hostname(),
        capabilities,
        sampler: LoadSampler::default(),
    };
    let Some(beats) = register(beats, &stop).await? else {
        return Ok(());
    };
    let heartbeat = tokio::spawn(beats.every(config.heartbeat_every()));
    let result = work(&config, &client, &services, &stop).await;
    heartbeat.abort();
    if result.is_ok() {
        tracing::info!("baton-robot stopped");
    }
    result
}

fn services(config: &Config) -> anyhow::Result<Services> {
    let http = reqwest::Client::builder()
        .user_agent(concat!("baton-robot/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("building the HTTP client")?;
    Ok(Services {
        http,
        shell_enabled: config.enable_shell,
        server: Url::parse(&config.server).context("--server/BATON_SERVER is not a URL")?,
        api_key: config.api_key.clone().map(Secret),
    })
}

/// The first heartbeat, retried while the server is unreachable: it registers a robot known
/// only from `ROBOT_TOKENS`, and proves the token before any job is claimed. `None` when a stop
/// came first.
async fn register(mut beats: Heartbeats, stop: &Stop) -> anyhow::Result<Option<Heartbeats>> {
    let mut backoff = Backoff::default();
    loop {
        let sent = tokio::select! {
            () = stop.requested() => return Ok(None),
            sent = beats.send() => sent,
        };
        match sent {
            Ok(()) => {
                tracing::info!(robot = %beats.robot_id, "registered with the server");
                return Ok(Some(beats));
            }
            Err(CallError::Transient(why)) => {
                let wait = backoff.next_wait();
                tracing::warn!(error = %why, retry_in_ms = millis(wait), "cannot reach the server; retrying");
                tokio::select! {
                    () = stop.requested() => return Ok(None),
                    () = tokio::time::sleep(wait) => {}
                }
            }
            Err(e) => return Err(refused(&beats.robot_id, &e)),
        }
    }
}

/// Claims and runs jobs until a stop.
async fn work(
    config: &Config,
    client: &Client,
    services: &Services,
    stop: &Stop,
) -> anyhow::Result<()> {
    let runner = Runner {
        api: client,
        services,
        renew_every: config.renew_every(),
        stop,
    };
    let mut backoff = Backoff::default();
    while !stop.is_requested() {
        let claimed = tokio::select! {
            // A claim abandoned mid-poll may have taken a job the robot never hears of; the
            // job's lease running out gives it back, so stopping stays prompt.
            () = stop.requested() => break,
            claimed = client.claim(config.claim_wait_seconds) => claimed,
        };
        match claimed {
            Ok(None) => backoff.reset(),
            Ok(Some(job)) => {
                backoff.reset();
                match runner.run(&job).await {
                    Ok(end @ (JobEnd::Dropped | JobEnd::Released)) => {
                        tracing::debug!(job = %job.job_id, ?end, "job left");
                    }
                    Ok(_) => {}
                    Err(e) => return Err(refused(&config.robot_id, &e)),
                }
            }
            Err(e) if e.is_refused() => return Err(refused(&config.robot_id, &e)),
            Err(e) => {
                let wait = backoff.next_wait();
                tracing::warn!(error = %e, retry_in_ms = millis(wait), "claiming failed; retrying");
                tokio::select! {
                    () = stop.requested() => break,
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
    Ok(())
}

/// The error that ends the robot when the server will not have it, saying what to check.
fn refused(robot_id: &str, error: &CallError) -> anyhow::Error {
    match error {
        CallError::Refused {
            status: 401,
            detail,
        } => anyhow::anyhow!(
            "the server refused the token of robot '{robot_id}' (HTTP 401: {detail}): check \
             --token/BATON_ROBOT_TOKEN, or create the robot with POST /api/v1/robots"
        ),
        CallError::Refused { status, detail } => anyhow::anyhow!(
            "the server refused robot '{robot_id}' (HTTP {status}: {detail}): the token belongs \
             to another robot, or this address is banned"
        ),
        other => anyhow::anyhow!("the server refused robot '{robot_id}': {other}"),
    }
}

fn millis(wait: Duration) -> u64 {
    u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)
}

/// The heartbeat's sender and the state it reports from.
struct Heartbeats {
    client: Client,
    robot_id: String,
    hostname: Option<String>,
    capabilities: Vec<&'static str>,
    sampler: LoadSampler,
}

impl Heartbeats {
    async fn send(&mut self) -> Result<(), CallError> {
        let load = self.sampler.sample();
        let body = Heartbeat {
            cpu_percent: load.cpu_percent,
            memory_mb: load.memory_mb,
            memory_percent: load.memory_percent,
            hostname: self.hostname.clone(),
            capabilities: self.capabilities.clone(),
        };
        self.client.heartbeat(&body).await
    }

    /// Heartbeats every `period` for ever (the task is aborted when the robot stops). Failures
    /// are logged and the next beat tries again; a refused token also ends the claim loop,
    /// which reports it.
    async fn every(mut self, period: Duration) {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is immediate, and registration has just sent a heartbeat.
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(e) = self.send().await {
                tracing::warn!(error = %e, "heartbeat failed");
            }
        }
    }
}
