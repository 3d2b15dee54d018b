//! The periodic work every server does beside answering requests: firing due triggers and
//! recovering expired leases. Each task runs on its own tokio task until the server stops; a
//! failing round is logged and retried next period, never fatal.

use std::future::Future;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Running periodic tasks, stopped together.
pub struct BackgroundTasks {
    stop: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
}

impl Default for BackgroundTasks {
    fn default() -> Self {
        Self::new()
    }
}

impl BackgroundTasks {
    pub fn new() -> Self {
        Self {
            stop: watch::channel(false).0,
            handles: Vec::new(),
        }
    }

    /// Runs `round` every `period` (the first time at once) until [`BackgroundTasks::stop`].
    /// A round that errs is logged with `name`; rounds never overlap.
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, mut round: F)
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let mut stop = self.stop.subscribe();
        self.handles.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            // After a slow round, carry on from now rather than firing the missed ticks at once.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticks.tick() => {}
                    _ = stop.changed() => break,
                }
                if let Err(e) = round().await {
                    tracing::warn!(task = name, error = %format!("{e:#}"), "background round failed; retrying next period");
                }
            }
            tracing::debug!(task = name, "background task stopped");
        }));
    }

    /// Stops every task after its current round and waits for them.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for handle in self.handles {
            let _ = handle.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn rounds_repeat_survive_errors_and_stop() {
        let rounds = Arc::new(AtomicU32::new(0));
        let mut tasks = BackgroundTasks::new();
        let counter = rounds.clone();
        tasks.every("test", Duration::from_millis(5), move || {
            let counter = counter.clone();
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                anyhow::ensure!(n.is_multiple_of(2), "odd rounds fail");
                Ok(())
            }
        });
        tokio::time::sleep(Duration::from_millis(60)).await;
        tasks.stop().await;
        let after_stop = rounds.load(Ordering::SeqCst);
        assert!(
            after_stop >= 3,
            "an erring round does not end the task: {after_stop}"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(
            rounds.load(Ordering::SeqCst),
            after_stop,
            "no round after stop"
        );
    }
}
