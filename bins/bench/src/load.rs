//! A closed-loop load generator: `workers` tasks, each with a keep-alive connection of its own,
//! repeat an operation as fast as it is answered. Operations finishing during the warm-up are
//! not measured; the measurement window then runs for the planned time, or until every worker
//! ran out of work (a drained backlog).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How the load is applied.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub workers: usize,
    pub warmup: Duration,
    pub measure: Duration,
}

/// What one operation came to.
pub enum Step {
    /// It succeeded.
    Done,
    /// It succeeded for this many units of work at once (a batched call): each counts towards
    /// the throughput, the call's latency is one sample.
    DoneMany(u64),
    /// It failed, for this reason (e.g. `HTTP 503`); counted under the reason.
    Failed(String),
    /// There was nothing left to do: this worker stops.
    Exhausted,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Successful operations that finished inside the window.
    pub in_window: u64,
    /// Successful operations of the whole run, warm-up and tail included.
    pub succeeded: u64,
    /// Failed operations of the whole run, by reason.
    pub failures: BTreeMap<String, u64>,
    /// The measurement window's length.
    pub window: Duration,
    /// Latencies of the window's successful operations, in microseconds, sorted.
    latencies_us: Vec<u32>,
}

impl Outcome {
    pub fn per_second(&self) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            self.in_window as f64 / secs
        } else {
            0.0
        }
    }

    /// The `p`-th percentile (0–100) latency in milliseconds; 0 without measurements.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let rank = (p / 100.0 * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        f64::from(self.latencies_us[index]) / 1000.0
    }

    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The failures as `reason × n, …`, for notes.
    pub fn failure_summary(&self) -> String {
        self.failures
            .iter()
            .map(|(reason, n)| format!("{reason} × {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one worker saw.
#[derive(Default)]
struct WorkerStats {
    in_window: u64,
    succeeded: u64,
    failures: BTreeMap<String, u64>,
    latencies_us: Vec<u32>,
    /// When the worker ran out of work, if it did before the window's end.
    exhausted_at: Option<Instant>,
}

/// An HTTP client holding at most one keep-alive connection: one per worker, so `workers` is
/// exactly the number of concurrent connections.
pub fn connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
        // Building fails only if the TLS backend or the resolver cannot start; this client has
        // no TLS and resolves nothing (every URL is an IP address), so fall back to the default.
        .unwrap_or_default()
}

/// Runs `operation(worker, sequence, client)` in a loop on each worker until the plan's end.
pub async fn run<F, Fut>(plan: Plan, operation: F) -> Outcome
where
    F: Fn(usize, u64, reqwest::Client) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Step> + Send,
{
    let operation = Arc::new(operation);
    let started = Instant::now();
    let window_start = started + plan.warmup;
    let window_end = window_start + plan.measure;
    let mut tasks = Vec::with_capacity(plan.workers);
    for worker in 0..plan.workers {
        let operation = Arc::clone(&operation);
        tasks.push(tokio::spawn(async move {
            let client = connection();
            let mut stats = WorkerStats::default();
            let mut sequence = 0u64;
            while Instant::now() < window_end {
                let began = Instant::now();
                let step = operation(worker, sequence, client.clone()).await;
                let ended = Instant::now();
                sequence += 1;
                let in_window = ended >= window_start && ended <= window_end;
                match step {
                    Step::Done | Step::DoneMany(_) => {
                        let units = match step {
                            Step::DoneMany(units) => units,
                            _ => 1,
                        };
                        stats.succeeded += units;
                        if in_window {
                            stats.in_window += units;
                            let micros = ended.duration_since(began).as_micros();
                            stats
                                .latencies_us
                                .push(u32::try_from(micros).unwrap_or(u32::MAX));
                        }
                    }
                    Step::Failed(reason) => *stats.failures.entry(reason).or_default() += 1,
                    Step::Exhausted => {
                        stats.exhausted_at = Some(ended);
                        break;
                    }
                }
            }
            stats
        }));
    }

    let mut outcome = Outcome::default();
    let mut all_exhausted = true;
    let mut last_exhausted = window_start;
    for task in tasks {
        // A worker panics only on a bug of this program; its numbers are then missing.
        let Ok(stats) = task.await else {
            *outcome
                .failures
                .entry("worker panicked".to_owned())
                .or_default() += 1;
            continue;
        };
        outcome.in_window += stats.in_window;
        outcome.succeeded += stats.succeeded;
        for (reason, n) in stats.failures {
            *outcome.failures.entry(reason).or_default() += n;
        }
        outcome.latencies_us.extend(stats.latencies_us);
        match stats.exhausted_at {
            Some(at) => last_exhausted = last_exhausted.max(at),
            None => all_exhausted = false,
        }
    }
    // When every worker ran out of work early, the window closes with the last of them.
    let end = if all_exhausted {
        last_exhausted.min(window_end)
    } else {
        window_end
    };
    outcome.window = end.saturating_duration_since(window_start);
    outcome.latencies_us.sort_unstable();
    outcome
}

/// The reason a response counts as failed: its status, or the transport error's kind.
pub fn failure(result: &Result<reqwest::Response, reqwest::Error>) -> String {
    match result {
        Ok(response) => format!("HTTP {}", response.status().as_u16()),
        Err(e) if e.is_timeout() => "timeout".to_owned(),
        Err(e) if e.is_connect() => "connection refused".to_owned(),
        Err(_) => "transport error".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome_with(latencies_us: Vec<u32>) -> Outcome {
        Outcome {
            in_window: latencies_us.len() as u64,
            window: Duration::from_secs(2),
            latencies_us,
            ..Outcome::default()
        }
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let outcome = outcome_with((1..=100).map(|ms| ms * 1000).collect());
        assert_eq!(outcome.percentile_ms(50.0), 50.0);
        assert_eq!(outcome.percentile_ms(99.0), 99.0);
        assert_eq!(outcome.percentile_ms(100.0), 100.0);
        assert_eq!(outcome.per_second(), 50.0);
        assert_eq!(outcome_with(vec![]).percentile_ms(99.0), 0.0);
    }

    #[tokio::test]
    async fn a_drained_backlog_closes_the_window_early() {
        let plan = Plan {
            workers: 2,
            warmup: Duration::ZERO,
            measure: Duration::from_secs(30),
        };
        let outcome = run(plan, |_, sequence, _| async move {
            if sequence < 5 {
                Step::Done
            } else {
                Step::Exhausted
            }
        })
        .await;
        assert_eq!(outcome.succeeded, 10);
        assert_eq!(outcome.in_window, 10);
        assert_eq!(outcome.latencies_us.len(), 10);
        assert!(
            outcome.window < Duration::from_secs(5),
            "{:?}",
            outcome.window
        );
    }

    #[tokio::test]
    async fn a_batched_step_counts_its_units_and_one_latency() {
        let plan = Plan {
            workers: 1,
            warmup: Duration::ZERO,
            measure: Duration::from_secs(30),
        };
        let outcome = run(plan, |_, sequence, _| async move {
            if sequence < 3 {
                Step::DoneMany(50)
            } else {
                Step::Exhausted
            }
        })
        .await;
        assert_eq!((outcome.succeeded, outcome.in_window), (150, 150));
        assert_eq!(outcome.latencies_us.len(), 3);
    }
}
