//! Scenario 4: `--ws-clients` (1,000) websocket clients of `/ws/live-jobs`, authenticated with
//! the admin's access token in `?token=`, while jobs are created at a modest rate
//! (`--ws-jobs-per-second`, 20) through `POST /api/v1/jobs` by one connection.
//!
//! The **delivery delay** of a job to a client is the time from the answer to the job's POST
//! (the job is stored and committed by then) to that client's receipt of the job's `pending`
//! (`job_created`) message, measured on this machine's monotonic clock. Every client and every
//! job of the window counts: 1,000 clients and 200 jobs are 200,000 delays. The delay from the
//! POST's send is reported too (it adds the POST's own latency). A job a client never received
//! within two seconds of the window's end counts as missed.
//!
//! The server's resident memory (`VmRSS`) is sampled every 500 ms while the clients are
//! connected, jobs flowing; the largest sample is reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::{Context, Figure, ScenarioName, Target, Unit};
use crate::server::Backend;

/// Delivery delay p99 target, in milliseconds.
const P99_TARGET_MS: f64 = 100.0;
/// Server RSS target with the clients connected, in megabytes (10^6 bytes).
const RSS_TARGET_MB: f64 = 200.0;
/// Handshakes in flight at once while the clients connect.
const CONNECTING: usize = 100;
/// How long the clients may take to connect, all together.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long after the window's last job the clients keep listening.
const DRAIN: Duration = Duration::from_secs(2);

/// What one client received: each job's `pending` message and when.
struct Received {
    jobs: HashMap<String, Instant>,
    /// The close frame or error that ended the socket early, if one did.
    ended: Option<String>,
}

/// One job created during the run.
struct Sent {
    id: String,
    sent: Instant,
    answered: Instant,
    in_window: bool,
}

pub async fn run(context: &Context, backend: Backend) -> anyhow::Result<Vec<Figure>> {
    let clients = context.ws_clients;
    // Each client is a socket here and one in the server (which inherits this limit).
    let fd_note = raise_fd_limit(2 * clients as u64 + 512).await;
    let running = context.start(backend).await?;
    let workflow = running
        .api()
        .workflow(&running.admin, "bench-websockets")
        .await?;
    let ws_url = format!(
        "{}?token={}",
        running
            .server
            .url("/ws/live-jobs")
            .replacen("http://", "ws://", 1),
        running.admin
    );

    // The clients connect, CONNECTING at a time.
    let (stop_tx, stop_rx) = watch::channel(false);
    let connected = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING));
    let connect_started = Instant::now();
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let (url, gate, connected, stop) = (
            ws_url.clone(),
            Arc::clone(&gate),
            Arc::clone(&connected),
            stop_rx.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let socket = {
                let _permit = gate.acquire().await;
                tokio_tungstenite::connect_async(url.as_str()).await
            };
            match socket {
                Ok((socket, _)) => {
                    connected.fetch_add(1, Ordering::Relaxed);
                    listen(socket, stop).await
                }
                Err(e) => Received {
                    jobs: HashMap::new(),
                    ended: Some(format!("connect: {e}")),
                },
            }
        }));
    }
    while connected.load(Ordering::Relaxed) < clients
        && connect_started.elapsed() < CONNECT_TIMEOUT
        && !tasks.iter().all(tokio::task::JoinHandle::is_finished)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let connect_time = connect_started.elapsed();
    // A refused client is closed at once (4001): give refusals a moment to arrive.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_connected = running.server.rss_bytes()?;

    // Jobs at a steady rate, from one keep-alive connection; RSS sampled meanwhile.
    let client = crate::load::connection();
    let jobs_url = running.server.url("/api/v1/jobs");
    let body = json!({"workflow_id": workflow});
    let mut sent: Vec<Sent> = Vec::new();
    let mut failed_posts = 0u64;
    let mut rss_peak = rss_connected;
    let started = Instant::now();
    let window_start = started + context.warmup;
    let window_end = window_start + context.duration;
    let period = Duration::from_secs_f64(1.0 / f64::from(context.ws_jobs_per_second));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_sample = started;
    while Instant::now() < window_end {
        ticker.tick().await;
        let at = Instant::now();
        let response = client
            .post(&jobs_url)
            .bearer_auth(&running.admin)
            .json(&body)
            .send()
            .await;
        let answered = Instant::now();
        let id = match response {
            Ok(r) if r.status().as_u16() == 201 => r
                .json::<Value>()
                .await
                .ok()
                .and_then(|job| job["job_id"].as_str().map(str::to_owned)),
            _ => None,
        };
        match id {
            Some(id) => sent.push(Sent {
                id,
                sent: at,
                answered,
                in_window: at >= window_start,
            }),
            None => failed_posts += 1,
        }
        if answered.duration_since(last_sample) >= Duration::from_millis(500) {
            last_sample = answered;
            if let Ok(rss) = running.server.rss_bytes() {
                rss_peak = rss_peak.max(rss);
            }
        }
    }
    tokio::time::sleep(DRAIN).await;
    let _ = stop_tx.send(true);
    let mut received = Vec::with_capacity(clients);
    for task in tasks {
        received.push(task.await.context("a websocket client panicked")?);
    }
    running.stop().await?;

    // Every client against every job of the window.
    let measured: Vec<&Sent> = sent.iter().filter(|s| s.in_window).collect();
    let mut from_answer = Vec::with_capacity(measured.len() * clients);
    let mut from_send = Vec::with_capacity(measured.len() * clients);
    let mut missed = 0u64;
    let mut ended: HashMap<String, u64> = HashMap::new();
    for client in &received {
        if let Some(reason) = &client.ended {
            *ended.entry(reason.clone()).or_default() += 1;
        }
        for job in &measured {
            match client.jobs.get(&job.id) {
                Some(&at) => {
                    from_answer.push(signed_ms(at, job.answered));
                    from_send.push(signed_ms(at, job.sent));
                }
                None => missed += 1,
            }
        }
    }
    from_answer.sort_by(f64::total_cmp);
    from_send.sort_by(f64::total_cmp);
    let p = super::schedules::percentile;
    let ended_note = ended
        .iter()
        .map(|(reason, n)| format!("{reason} × {n}"))
        .collect::<Vec<_>>()
        .join(", ");

    let count = super::thousands(clients as f64);
    let figure =
        |what: String, unit| Figure::new(ScenarioName::Websockets, Some(backend), what, unit);
    let window = context.duration.as_secs_f64();
    Ok(vec![
        figure(
            format!("{count} websocket clients connected"),
            Unit::Count("clients"),
        )
        .measured(connected.load(Ordering::Relaxed) as f64)
        .target(Target::AtLeast(clients as f64))
        .note(format!(
            "in {:.1} s, {CONNECTING} handshakes at a time; {fd_note}",
            connect_time.as_secs_f64()
        )),
        figure(
            "jobs created while they listen".to_owned(),
            Unit::PerSecond("jobs"),
        )
        .measured(measured.len() as f64 / window.max(1e-9))
        .note(format!(
            "POST /api/v1/jobs from one connection; {failed_posts} failed"
        )),
        figure(
            format!("{count} clients: job event delivery p50"),
            Unit::Millis,
        )
        .measured(p(&from_answer, 50.0)),
        figure(
            format!("{count} clients: job event delivery p99"),
            Unit::Millis,
        )
        .measured(p(&from_answer, 99.0))
        .target(Target::AtMost(P99_TARGET_MS))
        .note(format!(
            "from the POST's answer to the client's receipt of `pending`, {} deliveries; \
                 from the POST's send: p50 {:.1} ms, p99 {:.1} ms",
            super::thousands(from_answer.len() as f64),
            p(&from_send, 50.0),
            p(&from_send, 99.0)
        )),
        figure(
            "job events never received".to_owned(),
            Unit::Count("events"),
        )
        .measured(missed as f64)
        .target(Target::AtMost(0.0))
        .note(ended_note),
        figure(
            format!("server RSS with {count} websocket clients"),
            Unit::Megabytes,
        )
        .measured(rss_peak as f64 / 1e6)
        .target(Target::AtMost(RSS_TARGET_MB))
        .note(format!(
            "largest VmRSS sampled while jobs flowed; {:.1} MB once connected",
            rss_connected as f64 / 1e6
        )),
    ])
}

/// Reads one client's socket until `stop`, noting when each job's `pending` message arrived.
async fn listen<S>(
    mut socket: tokio_tungstenite::WebSocketStream<S>,
    mut stop: watch::Receiver<bool>,
) -> Received
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut received = Received {
        jobs: HashMap::new(),
        ended: None,
    };
    loop {
        let message = tokio::select! {
            _ = stop.changed() => return received,
            message = socket.next() => message,
        };
        let at = Instant::now();
        match message {
            Some(Ok(Message::Text(text))) => {
                let Ok(update) = serde_json::from_str::<Value>(text.as_str()) else {
                    continue;
                };
                if update["status"] == "pending"
                    && update["event_type"] == "job_created"
                    && let Some(job) = update["job_id"].as_str()
                {
                    received.jobs.entry(job.to_owned()).or_insert(at);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                received.ended = Some(match frame {
                    Some(frame) => format!("closed {}: {}", u16::from(frame.code), frame.reason),
                    None => "closed".to_owned(),
                });
                return received;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                received.ended = Some(format!("error: {e}"));
                return received;
            }
            None => {
                received.ended = Some("ended".to_owned());
                return received;
            }
        }
    }
}

/// `later − earlier` in milliseconds, negative when `later` came first.
fn signed_ms(later: Instant, earlier: Instant) -> f64 {
    if later >= earlier {
        later.duration_since(earlier).as_secs_f64() * 1000.0
    } else {
        -(earlier.duration_since(later).as_secs_f64() * 1000.0)
    }
}

/// Raises this process's soft limit of open files to `needed` (at most the hard limit), so the
/// clients and the server (a child, which inherits it) have a descriptor per socket. The
/// workspace forbids `unsafe`, so `prlimit(1)` does it rather than `setrlimit`. Returns a note.
async fn raise_fd_limit(needed: u64) -> String {
    let Some((soft, hard)) = fd_limits() else {
        return "open-file limit unknown".to_owned();
    };
    if soft >= needed {
        return format!("open files: {soft}");
    }
    let target = hard.map_or(needed, |hard| needed.min(hard));
    let pid = std::process::id().to_string();
    let _ = tokio::process::Command::new("prlimit")
        .args(["--pid", &pid, &format!("--nofile={target}:")])
        .status()
        .await;
    match fd_limits() {
        Some((now, _)) if now >= needed => format!("open files raised from {soft} to {now}"),
        Some((now, _)) => format!(
            "open files {now}, below the {needed} needed: raise `ulimit -n` (hard limit {})",
            hard.map_or("unlimited".to_owned(), |h| h.to_string())
        ),
        None => "open-file limit unknown".to_owned(),
    }
}

/// The soft and hard (`None`: unlimited) limits of open files, from `/proc/self/limits`.
fn fd_limits() -> Option<(u64, Option<u64>)> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    let mut numbers = line["Max open files".len()..].split_whitespace();
    let soft = numbers.next()?;
    let hard = numbers.next()?;
    let soft = if soft == "unlimited" {
        u64::MAX
    } else {
        soft.parse().ok()?
    };
    let hard = if hard == "unlimited" {
        None
    } else {
        Some(hard.parse().ok()?)
    };
    Some((soft, hard))
}
