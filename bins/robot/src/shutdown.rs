//! Stopping: SIGINT or SIGTERM asks the robot to stop claiming, abort the node in hand, give
//! its job back and exit 0. A second signal exits at once, for a release that hangs.

use std::sync::Arc;

use tokio::sync::watch;

/// A stop request every part of the robot can check or wait for.
#[derive(Debug, Clone)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Stop {
    pub fn new() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }

    pub fn request(&self) {
        self.0.send_replace(true);
    }

    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested (at once if it already was).
    pub async fn requested(&self) {
        let mut changes = self.0.subscribe();
        // The sender lives in `self`, so waiting cannot end with a closed channel.
        let _ = changes.wait_for(|stop| *stop).await;
    }
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}

/// Requests `stop` on the first SIGINT or SIGTERM and exits the process on the second.
pub fn listen_for_signals(stop: Stop) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            let mut asked = false;
            loop {
                let name = tokio::select! {
                    _ = interrupt.recv() => "SIGINT",
                    _ = terminate.recv() => "SIGTERM",
                };
                if asked {
                    tracing::warn!(signal = name, "second stop signal: exiting at once");
                    std::process::exit(1);
                }
                asked = true;
                tracing::info!(
                    signal = name,
                    "stopping: no more claims; the job in hand is given back"
                );
                stop.request();
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::info!("stopping: no more claims; the job in hand is given back");
            stop.request();
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiters_wake_on_request_and_after_it() {
        let stop = Stop::new();
        assert!(!stop.is_requested());
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        stop.request();
        tokio::time::timeout(Duration::from_secs(1), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(stop.is_requested());
        tokio::time::timeout(Duration::from_secs(1), stop.requested())
            .await
            .unwrap();
    }
}
