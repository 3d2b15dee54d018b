//! `Delay`: waits `config.seconds` or `config.milliseconds`. The wait is a plain timer, so a
//! hard cancel or a shutdown, which drop the node's future, ends it at once.

use std::time::Duration;

use serde_json::json;

use super::{NodeContext, NodeError, NodeResult, number};

/// Longer waits belong in a schedule, not in a job holding a robot.
const MAX_DELAY: Duration = Duration::from_secs(24 * 3600);

pub async fn run(cx: NodeContext<'_>) -> NodeResult {
    let wait = match (
        number(cx.config, "seconds")?,
        number(cx.config, "milliseconds")?,
    ) {
        (Some(seconds), None) => seconds * 1000.0,
        (None, Some(milliseconds)) => milliseconds,
        (Some(_), Some(_)) => {
            return Err(NodeError::new(
                "give config.seconds or config.milliseconds, not both",
            ));
        }
        (None, None) => {
            return Err(NodeError::new(
                "config.seconds or config.milliseconds is required",
            ));
        }
    };
    let wait = Duration::from_secs_f64(wait / 1000.0);
    if wait > MAX_DELAY {
        return Err(NodeError::new("a Delay is at most 24 hours"));
    }
    tokio::time::sleep(wait).await;
    let delayed_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
    Ok(Some(json!({ "delayed_ms": delayed_ms })))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::super::NodeKind;
    use super::super::testing::run_node;
    use serde_json::json;

    #[tokio::test]
    async fn waits_and_reports_the_wait() {
        let started = Instant::now();
        let out = run_node(NodeKind::Delay, json!({"milliseconds": 30})).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
        assert_eq!(out, Ok(Some(json!({"delayed_ms": 30}))));
        let out = run_node(NodeKind::Delay, json!({"seconds": 0.01})).await;
        assert_eq!(out, Ok(Some(json!({"delayed_ms": 10}))));
    }

    #[tokio::test]
    async fn refuses_bad_waits() {
        for config in [
            json!({}),
            json!({"seconds": -1}),
            json!({"seconds": "5"}),
            json!({"seconds": 1, "milliseconds": 1}),
            json!({"seconds": 90_000}),
        ] {
            assert!(
                run_node(NodeKind::Delay, config.clone()).await.is_err(),
                "{config}"
            );
        }
    }

    #[tokio::test]
    async fn stops_when_dropped() {
        let started = Instant::now();
        let long = run_node(NodeKind::Delay, json!({"seconds": 60}));
        let cut = tokio::time::timeout(Duration::from_millis(20), long).await;
        assert!(cut.is_err());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
