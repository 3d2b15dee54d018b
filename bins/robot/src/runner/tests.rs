//! The runner against a scripted protocol: no server, every call recorded.

use std::sync::Mutex;
use std::sync::atomic::AtomicU32;

use serde_json::json;

use super::*;
use crate::client::JobAnswer;
use crate::nodes::testing::services;

/// Records every call; answers as scripted.
#[derive(Default)]
struct FakeApi {
    calls: Mutex<Vec<String>>,
    reports: Mutex<Vec<Progress>>,
    completed: Mutex<Option<Value>>,
    failed: Mutex<Option<(String, String)>>,
    start_cancel: Option<Cancel>,
    /// `(node id, cancel)`: the progress of that node answers the cancel.
    progress_cancel: Option<(&'static str, Cancel)>,
    renew_cancel: Option<Cancel>,
    /// The call answered 409.
    gone_on: Option<&'static str>,
    /// How many of the first progress calls fail for want of a server.
    transient_progress: AtomicU32,
    refused: bool,
}

impl FakeApi {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    fn record(&self, call: String) -> Result<(), CallError> {
        self.calls.lock().unwrap().push(call.clone());
        if self.refused {
            return Err(CallError::Refused {
                status: 401,
                detail: "bad token".into(),
            });
        }
        if self.gone_on.is_some_and(|gone| call.starts_with(gone)) {
            return Err(CallError::Gone {
                status: 409,
                detail: "the job is cancelled".into(),
            });
        }
        Ok(())
    }
}

impl JobApi for FakeApi {
    async fn start(&self, _: &str) -> Result<JobAnswer, CallError> {
        self.record("start".into())?;
        Ok(JobAnswer {
            cancel: self.start_cancel,
        })
    }

    async fn progress(&self, _: &str, progress: &Progress) -> Result<JobAnswer, CallError> {
        if self
            .transient_progress
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(CallError::Transient("connection refused".into()));
        }
        self.record(format!("progress:{}", progress.node_id))?;
        self.reports.lock().unwrap().push(progress.clone());
        let cancel = self
            .progress_cancel
            .filter(|(node, _)| *node == progress.node_id)
            .map(|(_, cancel)| cancel);
        Ok(JobAnswer { cancel })
    }

    async fn renew(&self, _: &str) -> Result<JobAnswer, CallError> {
        self.record("renew".into())?;
        Ok(JobAnswer {
            cancel: self.renew_cancel,
        })
    }

    async fn complete(&self, _: &str, output: Option<&Value>) -> Result<(), CallError> {
        self.record("complete".into())?;
        *self.completed.lock().unwrap() = output.cloned();
        Ok(())
    }

    async fn fail(&self, _: &str, error_type: &str, message: &str) -> Result<(), CallError> {
        self.record(format!("fail:{error_type}"))?;
        *self.failed.lock().unwrap() = Some((error_type.into(), message.into()));
        Ok(())
    }

    async fn cancelled(&self, _: &str) -> Result<(), CallError> {
        self.record("cancelled".into())
    }

    async fn release(&self, _: &str) -> Result<(), CallError> {
        self.record("release".into())
    }
}

fn job(workflow_json: Value) -> ClaimedJob {
    ClaimedJob {
        job_id: "job-1".into(),
        workflow_name: Some("w".into()),
        workflow_json,
        input: json!({}),
        retry_count: 0,
        attempt: 1,
    }
}

async fn run(api: &FakeApi, workflow_json: Value) -> Result<JobEnd, CallError> {
    run_with_stop(api, workflow_json, &Stop::new()).await
}

async fn run_with_stop(
    api: &FakeApi,
    workflow_json: Value,
    stop: &Stop,
) -> Result<JobEnd, CallError> {
    let services = services();
    let runner = Runner {
        api,
        services: &services,
        renew_every: Duration::from_millis(20),
        stop,
    };
    runner.run(&job(workflow_json)).await
}

fn linear() -> Value {
    json!({
        "nodes": [
            {"id": "end", "type": "EndNode"},
            {"id": "log", "type": "Log", "config": {"message": "hello"}},
            {"id": "set", "type": "SetData", "config": {"data": {"n": 1}}},
            {"id": "start", "type": "StartNode"}
        ],
        "connections": [
            {"from": "start", "to": "set"}, {"from": "set", "to": "log"},
            {"source": "log", "target": "end"}
        ]
    })
}

fn long_delay() -> Value {
    json!({"nodes": [{"id": "wait", "type": "Delay", "config": {"seconds": 60}}]})
}

#[tokio::test]
async fn runs_nodes_in_topological_order_and_emits_their_outputs() {
    let api = FakeApi::default();
    assert_eq!(run(&api, linear()).await, Ok(JobEnd::Completed));
    assert_eq!(
        api.calls(),
        [
            "start",
            "progress:start",
            "progress:set",
            "progress:log",
            "progress:end",
            "complete"
        ]
    );
    let reports = api.reports.lock().unwrap().clone();
    let messages: Vec<_> = reports.iter().map(|r| r.messages.clone()).collect();
    assert_eq!(
        messages,
        [
            vec![],
            vec![json!({"n": 1})],
            vec![json!({"message": "hello"})],
            vec![]
        ]
    );
    assert!(reports.iter().all(|r| r.status == NodeStatus::Completed));
    assert_eq!(reports[1].node_type, "SetData");
    assert_eq!(
        *api.completed.lock().unwrap(),
        Some(json!({"set": {"n": 1}, "log": {"message": "hello"}}))
    );
}

#[tokio::test]
async fn a_failing_node_fails_the_job_with_its_type() {
    let api = FakeApi::default();
    let graph = json!({"nodes": [
        {"id": "a", "type": "SetData"},
        {"id": "b", "type": "Log", "config": {"message": "never"}}
    ], "connections": [{"from": "a", "to": "b"}]});
    assert_eq!(run(&api, graph).await, Ok(JobEnd::Failed));
    assert_eq!(api.calls(), ["start", "progress:a", "fail:SetDataError"]);
    let report = api.reports.lock().unwrap()[0].clone();
    assert_eq!(report.status, NodeStatus::Failed);
    assert_eq!(report.error.as_deref(), Some("config.data is required"));
    assert!(report.messages.is_empty());
    assert_eq!(
        api.failed.lock().unwrap().clone().unwrap().1,
        "config.data is required"
    );
}

#[tokio::test]
async fn unknown_node_types_and_cycles_fail_before_any_node_runs() {
    let api = FakeApi::default();
    let graph =
        json!({"nodes": [{"id": "a", "type": "StartNode"}, {"id": "b", "type": "Teleport"}]});
    assert_eq!(run(&api, graph).await, Ok(JobEnd::Failed));
    assert_eq!(api.calls(), ["start", "fail:UnknownNodeType"]);

    let api = FakeApi::default();
    let cycle = json!({
        "nodes": [{"id": "a", "type": "Log"}, {"id": "b", "type": "Log"}],
        "connections": [{"from": "a", "to": "b"}, {"from": "b", "to": "a"}]
    });
    assert_eq!(run(&api, cycle).await, Ok(JobEnd::Failed));
    assert_eq!(api.calls(), ["start", "fail:InvalidWorkflow"]);
}

#[tokio::test]
async fn disabled_nodes_are_reported_skipped() {
    let api = FakeApi::default();
    let graph = json!({"nodes": [
        {"id": "a", "type": "SetData", "disabled": true},
        {"id": "b", "type": "Unknown", "disabled": true}
    ]});
    assert_eq!(run(&api, graph).await, Ok(JobEnd::Completed));
    let reports = api.reports.lock().unwrap().clone();
    assert!(
        reports
            .iter()
            .all(|r| r.status == NodeStatus::Skipped && r.messages.is_empty())
    );
}

#[tokio::test]
async fn a_hard_cancel_aborts_a_long_node_within_a_renewal() {
    let api = FakeApi {
        renew_cancel: Some(Cancel::Hard),
        ..FakeApi::default()
    };
    let started = Instant::now();
    assert_eq!(run(&api, long_delay()).await, Ok(JobEnd::Dropped));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(api.calls(), ["start", "renew"]);
}

#[tokio::test]
async fn a_soft_cancel_stops_after_the_current_node() {
    let api = FakeApi {
        progress_cancel: Some(("set", Cancel::Soft)),
        ..FakeApi::default()
    };
    assert_eq!(run(&api, linear()).await, Ok(JobEnd::Cancelled));
    assert_eq!(
        api.calls(),
        ["start", "progress:start", "progress:set", "cancelled"]
    );

    // Learnt from a renewal: the node still finishes and is reported.
    let api = FakeApi {
        renew_cancel: Some(Cancel::Soft),
        ..FakeApi::default()
    };
    let graph = json!({"nodes": [
        {"id": "wait", "type": "Delay", "config": {"milliseconds": 100}},
        {"id": "after", "type": "Log", "config": {"message": "never"}}
    ]});
    assert_eq!(run(&api, graph).await, Ok(JobEnd::Cancelled));
    let calls = api.calls();
    assert_eq!(calls.first().map(String::as_str), Some("start"));
    assert!(calls.contains(&"renew".to_owned()));
    assert_eq!(&calls[calls.len() - 2..], ["progress:wait", "cancelled"]);

    let api = FakeApi {
        start_cancel: Some(Cancel::Soft),
        ..FakeApi::default()
    };
    assert_eq!(run(&api, linear()).await, Ok(JobEnd::Cancelled));
    assert_eq!(api.calls(), ["start", "cancelled"]);
}

#[tokio::test]
async fn a_conflict_drops_the_job() {
    let api = FakeApi {
        gone_on: Some("progress:set"),
        ..FakeApi::default()
    };
    assert_eq!(run(&api, linear()).await, Ok(JobEnd::Dropped));
    assert_eq!(api.calls(), ["start", "progress:start", "progress:set"]);

    let api = FakeApi {
        gone_on: Some("renew"),
        ..FakeApi::default()
    };
    assert_eq!(run(&api, long_delay()).await, Ok(JobEnd::Dropped));
}

#[tokio::test]
async fn calls_are_retried_while_the_server_is_away() {
    let api = FakeApi {
        transient_progress: AtomicU32::new(1),
        ..FakeApi::default()
    };
    assert_eq!(run(&api, linear()).await, Ok(JobEnd::Completed));
    assert_eq!(api.calls().len(), 6, "{:?}", api.calls());
}

#[tokio::test]
async fn a_refused_token_ends_the_run() {
    let api = FakeApi {
        refused: true,
        ..FakeApi::default()
    };
    assert!(matches!(
        run(&api, linear()).await,
        Err(CallError::Refused { status: 401, .. })
    ));
}

#[tokio::test]
async fn stopping_aborts_the_node_and_releases_the_job() {
    let api = FakeApi::default();
    let stop = Stop::new();
    let later = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        later.request();
    });
    let started = Instant::now();
    assert_eq!(
        run_with_stop(&api, long_delay(), &stop).await,
        Ok(JobEnd::Released)
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(api.calls().last().map(String::as_str), Some("release"));
    assert!(!api.calls().iter().any(|c| c.starts_with("progress")));
}

#[tokio::test]
async fn oversized_outputs_fail_their_node() {
    let api = FakeApi::default();
    let big = "x".repeat(MAX_OUTPUT_BYTES + 1);
    let graph = json!({"nodes": [{"id": "a", "type": "SetData", "config": {"data": big}}]});
    assert_eq!(run(&api, graph).await, Ok(JobEnd::Failed));
    assert_eq!(api.calls(), ["start", "progress:a", "fail:SetDataError"]);
}

#[cfg(unix)]
#[tokio::test]
async fn nodes_run_in_the_attempt_of_their_claim() {
    let api = FakeApi::default();
    let mut services = services();
    services.shell_enabled = true;
    let stop = Stop::new();
    let runner = Runner {
        api: &api,
        services: &services,
        renew_every: Duration::from_secs(60),
        stop: &stop,
    };
    let rerun = ClaimedJob {
        attempt: 3,
        ..job(json!({"nodes": [{"id": "sh", "type": "Shell",
                               "config": {"command": "echo \"$BATON_NODE_ID $BATON_ATTEMPT\""}}]}))
    };
    assert_eq!(runner.run(&rerun).await, Ok(JobEnd::Completed));
    let output = api.completed.lock().unwrap().clone().unwrap();
    assert_eq!(output["sh"]["stdout"], "sh 3\n");
}
