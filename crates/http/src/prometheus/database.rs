//! The gauges read from the database at each scrape: jobs by status, queue items by queue and
//! status, robots by status. Each is one cheap aggregate query of the storage ports, so a scrape
//! shows what every server sharing the database sees, not only this server's share.

use std::sync::Arc;
use std::time::Duration;

use baton_domain::job::JobStatus;
use baton_domain::ports::Store;
use baton_domain::queue::{QueueItemStatus, QueueSummary, StatusCounts};
use baton_domain::robot::RobotStatus;

use super::text::{Exposition, MetricType};
use crate::detach;
use crate::errors::ApiError;

pub const JOBS: &str = "baton_jobs";
pub const QUEUE_ITEMS: &str = "baton_queue_items";
pub const ROBOTS: &str = "baton_robots";

/// How long a scrape waits for the database. Prometheus' default scrape timeout is 10 s; the
/// request metrics are still worth answering when the database is slow.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

const ROBOT_STATUSES: [RobotStatus; 3] =
    [RobotStatus::Idle, RobotStatus::Busy, RobotStatus::Offline];

/// What the database said at one scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseGauges {
    /// One count per [`JobStatus::ALL`] entry, in that order.
    jobs: [u64; JobStatus::ALL.len()],
    /// Queues by name, with their item counts.
    queues: Vec<QueueSummary>,
    /// One count per [`ROBOT_STATUSES`] entry, in that order.
    robots: [u64; ROBOT_STATUSES.len()],
}

impl DatabaseGauges {
    /// Runs the three aggregate queries on a task of their own: a scrape that times out leaves
    /// the queries to finish rather than dropping a SQLite call half-way (see `detach`).
    pub async fn read(store: Arc<dyn Store>) -> Result<Self, String> {
        let work = detach::detached(async move { Self::query(store.as_ref()).await });
        match actix_web::rt::time::timeout(QUERY_TIMEOUT, work).await {
            Ok(Ok(gauges)) => Ok(gauges),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!(
                "the database did not answer within {} s",
                QUERY_TIMEOUT.as_secs()
            )),
        }
    }

    async fn query(store: &dyn Store) -> Result<Self, ApiError> {
        let by_status = store.count_jobs_by_status().await?;
        let jobs = JobStatus::ALL.map(|status| {
            by_status
                .iter()
                .filter(|(s, _)| *s == status)
                .map(|(_, n)| *n)
                .sum()
        });
        let queues = store.list_queues().await?;
        let listed = store.list_robots(None).await?;
        let robots = ROBOT_STATUSES.map(|status| {
            let n = listed.iter().filter(|r| r.status() == status).count();
            u64::try_from(n).unwrap_or(u64::MAX)
        });
        Ok(Self {
            jobs,
            queues,
            robots,
        })
    }

    pub fn write(&self, doc: &mut Exposition) {
        let mut jobs = doc.family(JOBS, MetricType::Gauge, "Jobs in the database, by status.");
        for (status, count) in JobStatus::ALL.iter().zip(self.jobs) {
            jobs.sample(&[("status", status.as_str())], count);
        }
        let mut items = doc.family(
            QUEUE_ITEMS,
            MetricType::Gauge,
            "Queue items in the database, by queue and status (NEW items are the queue's depth).",
        );
        for summary in &self.queues {
            for status in QueueItemStatus::ALL {
                items.sample(
                    &[
                        ("queue", summary.queue.name.as_str()),
                        ("status", status.as_str()),
                    ],
                    count_of(&summary.counts, status),
                );
            }
        }
        let mut robots = doc.family(ROBOTS, MetricType::Gauge, "Registered robots, by status.");
        for (status, count) in ROBOT_STATUSES.iter().zip(self.robots) {
            robots.sample(&[("status", status.as_str())], count);
        }
    }
}

fn count_of(counts: &StatusCounts, status: QueueItemStatus) -> u64 {
    match status {
        QueueItemStatus::New => counts.new,
        QueueItemStatus::InProgress => counts.in_progress,
        QueueItemStatus::Done => counts.done,
        QueueItemStatus::Failed => counts.failed,
        QueueItemStatus::Abandoned => counts.abandoned,
    }
}

#[cfg(test)]
mod tests {
    use baton_domain::queue::{Queue, QueueName, QueueSettings};

    use super::*;

    #[test]
    fn every_status_is_written_and_queue_names_are_escaped() {
        let gauges = DatabaseGauges {
            jobs: [1, 0, 2, 0, 0, 3],
            queues: vec![QueueSummary {
                queue: Queue {
                    // A name stored before names refused control characters may hold a newline.
                    name: QueueName::from_stored("say \"hi\"\\\nnow").unwrap(),
                    settings: QueueSettings::default(),
                    created_at: time::OffsetDateTime::UNIX_EPOCH,
                },
                counts: StatusCounts {
                    new: 4,
                    in_progress: 1,
                    ..StatusCounts::default()
                },
            }],
            robots: [0, 1, 5],
        };
        let mut doc = Exposition::new();
        gauges.write(&mut doc);
        let text = doc.finish();
        for line in [
            "baton_jobs{status=\"pending\"} 1",
            "baton_jobs{status=\"claimed\"} 0",
            "baton_jobs{status=\"cancelled\"} 3",
            "baton_queue_items{queue=\"say \\\"hi\\\"\\\\\\nnow\",status=\"NEW\"} 4",
            "baton_queue_items{queue=\"say \\\"hi\\\"\\\\\\nnow\",status=\"ABANDONED\"} 0",
            "baton_robots{status=\"idle\"} 0",
            "baton_robots{status=\"offline\"} 5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("baton_jobs{"))
                .count(),
            6
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("baton_queue_items{"))
                .count(),
            5
        );
    }
}
