//! The fan-out of live updates to this server's websocket clients.
//!
//! Each feed is a `tokio::sync::broadcast` channel of ready-to-send JSON texts: the feeds'
//! producers (`LiveFeeds`, among the websocket routes) serialise an update once and every client's task reads it
//! from its own receiver. A send never waits for a receiver, so a client that reads slowly
//! cannot hold up the producers or the other clients: it falls behind alone, and once it is
//! more than [`LiveHub::CAPACITY`] updates behind its task learns so and disconnects it.

use std::sync::Arc;

use tokio::sync::{broadcast, watch};

/// One update as the text frame every client of a feed receives.
pub type Update = Arc<str>;

/// The three websocket feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Feed {
    /// `/ws/live-jobs`: every job status change.
    LiveJobs,
    /// `/ws/robot-status`: every heartbeat and status change of a robot.
    RobotStatus,
    /// `/ws/queue-metrics`: the queue depth, every five seconds.
    QueueMetrics,
}

impl Feed {
    pub const ALL: [Feed; 3] = [Self::LiveJobs, Self::RobotStatus, Self::QueueMetrics];

    /// Where the feed is served.
    pub fn path(self) -> &'static str {
        match self {
            Self::LiveJobs => "/ws/live-jobs",
            Self::RobotStatus => "/ws/robot-status",
            Self::QueueMetrics => "/ws/queue-metrics",
        }
    }
}

/// The feeds' channels and the signal that closes every socket at shutdown. One per server,
/// shared by its workers through `AppState`.
pub struct LiveHub {
    live_jobs: broadcast::Sender<Update>,
    robot_status: broadcast::Sender<Update>,
    queue_metrics: broadcast::Sender<Update>,
    closing: watch::Sender<bool>,
}

impl Default for LiveHub {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveHub {
    /// How many updates a client may fall behind before it is disconnected. A burst of a
    /// thousand job changes between two reads of one client is far beyond what a live client
    /// sees, while the memory it pins stays small (updates are shared, a few hundred bytes each).
    pub const CAPACITY: usize = 1024;

    pub fn new() -> Self {
        Self::with_capacity(Self::CAPACITY)
    }

    /// A hub whose clients may fall `capacity` updates behind (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            live_jobs: broadcast::channel(capacity).0,
            robot_status: broadcast::channel(capacity).0,
            queue_metrics: broadcast::channel(capacity).0,
            closing: watch::channel(false).0,
        }
    }

    fn sender(&self, feed: Feed) -> &broadcast::Sender<Update> {
        match feed {
            Feed::LiveJobs => &self.live_jobs,
            Feed::RobotStatus => &self.robot_status,
            Feed::QueueMetrics => &self.queue_metrics,
        }
    }

    /// A new client's receiver: it gets every update published from now on.
    pub fn subscribe(&self, feed: Feed) -> broadcast::Receiver<Update> {
        self.sender(feed).subscribe()
    }

    /// Hands `update` to every current client of `feed`; returns how many there are. Never
    /// waits: a client that has not read the oldest of its `CAPACITY` pending updates loses it.
    pub fn publish(&self, feed: Feed, update: Update) -> usize {
        // `send` fails only when nobody is subscribed, which is no error for a feed.
        self.sender(feed).send(update).unwrap_or(0)
    }

    /// How many clients `feed` has right now.
    pub fn subscribers(&self, feed: Feed) -> usize {
        self.sender(feed).receiver_count()
    }

    /// Asks every client's task to close its socket (code 1001, "going away"), and every
    /// socket opened from now on to close at once. Called when the server starts to stop: an
    /// open websocket would otherwise hold the graceful shutdown for its whole timeout.
    pub fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Whether [`LiveHub::close_all`] was called.
    pub fn is_closing(&self) -> bool {
        *self.closing.borrow()
    }

    /// A receiver that changes when [`LiveHub::close_all`] is called.
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use tokio::sync::broadcast::error::TryRecvError;

    use super::*;

    #[test]
    fn a_client_that_never_reads_falls_behind_alone() {
        let hub = LiveHub::with_capacity(4);
        let mut idle = hub.subscribe(Feed::LiveJobs);
        let mut reader = hub.subscribe(Feed::LiveJobs);
        for n in 0..10 {
            assert_eq!(hub.publish(Feed::LiveJobs, Arc::from(n.to_string())), 2);
            assert_eq!(
                reader.try_recv().ok().as_deref(),
                Some(n.to_string().as_str())
            );
        }
        assert_eq!(idle.try_recv(), Err(TryRecvError::Lagged(6)));
    }

    #[test]
    fn feeds_are_separate_and_publishing_to_nobody_is_fine() {
        let hub = LiveHub::new();
        assert_eq!(hub.publish(Feed::QueueMetrics, Arc::from("{}")), 0);
        let mut robots = hub.subscribe(Feed::RobotStatus);
        assert_eq!(hub.subscribers(Feed::RobotStatus), 1);
        assert_eq!(hub.subscribers(Feed::LiveJobs), 0);
        hub.publish(Feed::LiveJobs, Arc::from("job"));
        assert_eq!(robots.try_recv(), Err(TryRecvError::Empty));
    }

    #[test]
    fn closing_reaches_clients_that_subscribed_before() {
        let hub = LiveHub::new();
        let closing = hub.closing();
        assert!(!hub.is_closing());
        hub.close_all();
        assert!(hub.is_closing());
        assert!(closing.has_changed().unwrap_or(false));
    }
}
