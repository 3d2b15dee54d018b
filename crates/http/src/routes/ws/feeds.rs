//! The producers of the live feeds. The server's engine runs one of each per server (see
//! `bins/server/src/engine.rs`); each reads the shared database, so a client sees what every
//! server sharing it did:
//!
//! - job updates come from the event log, tailed by `seq` ([`EventTail`] deals with the seqs
//!   that PostgreSQL commits out of order);
//! - robot updates come from the robots themselves: heartbeats are not events (they would
//!   flood the activity log), so the robots are listed every second and each one whose
//!   heartbeat, status or job changed since the last look is sent;
//! - queue metrics are counted every five seconds while someone listens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_domain::ids::JobId;
use baton_domain::ports::Store;
use baton_domain::robot::{RobotId, RobotStatus};
use baton_domain::{Clock, RepoResult, Timestamp};
use tokio::sync::Mutex;

use super::messages;
use super::tail::EventTail;
use crate::live::{Feed, LiveHub, Update};
use crate::state::AppState;

/// What one round of tailing the event log did, for the engine's log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventRound {
    /// Job updates sent.
    pub published: usize,
    /// Of those, events that committed after events with higher seqs and were found by
    /// re-reading a gap.
    pub late: usize,
    /// Gaps given up on (rolled-back transactions, most likely).
    pub abandoned_gaps: usize,
}

/// How a robot stood at the last look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    status: RobotStatus,
    last_heartbeat: Option<Timestamp>,
    current_job_id: Option<JobId>,
}

/// The event log's read position, and when the head was last looked up while nobody listened.
#[derive(Debug)]
struct Tailing {
    tail: EventTail,
    head_read_at: Instant,
}

/// The feeds' producers over one server's storage and hub.
pub struct LiveFeeds {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<LiveHub>,
    /// `None` until the first round has found the log's head. Rounds of one task never
    /// overlap, so the locks are never contended; they only make the feeds shareable.
    tail: Mutex<Option<Tailing>>,
    /// `None` until the first look at the robots.
    robots: Mutex<Option<HashMap<RobotId, Seen>>>,
}

impl LiveFeeds {
    /// How often the event log is read while someone listens: job updates reach clients
    /// within about this long (the target is 100 ms at the 99th percentile, docs/performance.md),
    /// at the cost of
    /// one indexed query per round, twenty a second.
    pub const EVENT_POLL: Duration = Duration::from_millis(50);
    /// How often the head of the log is looked up while nobody listens: an idle server costs
    /// one query a second, and the first client may receive up to a second of recent updates.
    pub const IDLE_HEAD_PERIOD: Duration = Duration::from_secs(1);
    /// How often the robots are listed. Robots heartbeat every 5–10 s, so a second adds little
    /// delay, and the list is one query per second whatever the number of clients.
    pub const ROBOT_POLL: Duration = Duration::from_secs(1);
    /// The CasareRPA document's period for queue metrics.
    pub const QUEUE_METRICS_PERIOD: Duration = Duration::from_secs(5);
    /// Events read per query, and at most per round: a burst larger than this is delivered
    /// over the next rounds, never skipped.
    const PAGE: u32 = 500;
    const MAX_PAGES: usize = 20;

    pub fn new(state: &AppState) -> Self {
        Self {
            store: state.store.clone(),
            clock: state.clock.clone(),
            hub: state.live.clone(),
            tail: Mutex::new(None),
            robots: Mutex::new(None),
        }
    }

    /// One round of tailing the event log: re-reads the open gaps, then reads what was appended
    /// since the last round, and sends every job status change to `/ws/live-jobs`. The first
    /// round only finds the head of the log. While nobody listens, the cursor follows the head
    /// once every [`Self::IDLE_HEAD_PERIOD`], so no backlog is read when a client comes.
    pub async fn poll_events(&self) -> RepoResult<EventRound> {
        let mut guard = self.tail.lock().await;
        let now = Instant::now();
        let Some(Tailing { tail, head_read_at }) = guard.as_mut() else {
            let head = self.store.latest_event_seq().await?;
            *guard = Some(Tailing {
                tail: EventTail::starting_after(head),
                head_read_at: now,
            });
            return Ok(EventRound::default());
        };
        if self.hub.subscribers(Feed::LiveJobs) == 0 {
            if now.saturating_duration_since(*head_read_at) >= Self::IDLE_HEAD_PERIOD {
                tail.skip_to(self.store.latest_event_seq().await?);
                *head_read_at = now;
            }
            return Ok(EventRound::default());
        }
        let mut round = EventRound::default();
        for window in tail.gap_windows() {
            let events = self.store.events_after(window.after, window.limit).await?;
            for event in tail.fill(events) {
                if self.publish_job_event(&event) {
                    round.published += 1;
                    round.late += 1;
                }
            }
        }
        round.abandoned_gaps = tail.expire(now);
        for _ in 0..Self::MAX_PAGES {
            let events = self.store.events_after(tail.cursor(), Self::PAGE).await?;
            let full = events.len() >= Self::PAGE as usize;
            for event in tail.advance(events, now) {
                if self.publish_job_event(&event) {
                    round.published += 1;
                }
            }
            if !full {
                break;
            }
        }
        Ok(round)
    }

    fn publish_job_event(&self, event: &baton_domain::event::Event) -> bool {
        match messages::job_update(event) {
            Some(update) => {
                self.hub.publish(Feed::LiveJobs, update);
                true
            }
            None => false,
        }
    }

    /// One look at the robots: sends to `/ws/robot-status` every robot whose heartbeat, status
    /// or current job changed since the last look (and every robot that appeared). The first
    /// look only takes stock. Returns how many updates were sent.
    pub async fn poll_robots(&self) -> RepoResult<usize> {
        let robots = self.store.list_robots(None).await?;
        let now = self.clock.now();
        let mut guard = self.robots.lock().await;
        let before = guard.take();
        let mut seen = HashMap::with_capacity(robots.len());
        let mut published = 0;
        for robot in &robots {
            let now_seen = Seen {
                status: robot.status(),
                last_heartbeat: robot.last_heartbeat(),
                current_job_id: robot.current_job_id(),
            };
            if let Some(before) = &before {
                let previous = before.get(robot.robot_id());
                if previous != Some(&now_seen) {
                    // A heartbeat is dated by the robot's beat; any other change by this look.
                    let beat = robot
                        .last_heartbeat()
                        .filter(|beat| previous.is_none_or(|p| p.last_heartbeat != Some(*beat)));
                    let update = messages::robot_update(robot, beat.unwrap_or(now));
                    self.hub.publish(Feed::RobotStatus, update);
                    published += 1;
                }
            }
            seen.insert(robot.robot_id().clone(), now_seen);
        }
        *guard = Some(seen);
        Ok(published)
    }

    /// Sends the queue metrics to `/ws/queue-metrics` if anyone listens; returns whether it did.
    pub async fn publish_queue_metrics(&self) -> RepoResult<bool> {
        if self.hub.subscribers(Feed::QueueMetrics) == 0 {
            return Ok(false);
        }
        let update = queue_metrics_now(self.store.as_ref(), self.clock.as_ref()).await?;
        self.hub.publish(Feed::QueueMetrics, update);
        Ok(true)
    }
}

/// The queue metrics as they stand: what the feed sends every period, and each new client
/// first, so that it need not wait for the next period.
pub async fn queue_metrics_now(store: &dyn Store, clock: &dyn Clock) -> RepoResult<Update> {
    let jobs = store.count_jobs_by_status().await?;
    let queues = store.list_queues().await?;
    Ok(messages::queue_metrics(&jobs, &queues, clock.now()))
}
