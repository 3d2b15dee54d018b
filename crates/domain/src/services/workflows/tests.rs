use std::sync::Mutex;

use serde_json::json;
use time::macros::datetime;

use super::*;
use crate::event::EventType;
use crate::job::JobStatus;
use crate::ports::{
    MockJobRepository, MockTriggerRepository, MockWebhookRepository, MockWorkflowRepository,
};

const NOW: Timestamp = datetime!(2025-12-01 10:30 UTC);

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        NOW
    }
}

struct Counter(std::sync::atomic::AtomicU64);
impl IdGenerator for Counter {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1,
        ))
    }
}

/// The four mocks, each expecting nothing until a test says otherwise.
#[derive(Default)]
struct Mocks {
    workflows: MockWorkflowRepository,
    jobs: MockJobRepository,
    triggers: MockTriggerRepository,
    webhooks: MockWebhookRepository,
}

impl Mocks {
    fn service(self) -> WorkflowService {
        WorkflowService::new(
            Arc::new(self.workflows),
            Arc::new(self.jobs),
            Arc::new(self.triggers),
            Arc::new(self.webhooks),
            Arc::new(FixedClock),
            Arc::new(Counter(0.into())),
        )
    }

    fn storing_the_workflow(mut self) -> Self {
        self.workflows
            .expect_insert_workflow()
            .times(1)
            .returning(|_, _| Ok(()));
        self
    }
}

fn raw(trigger_type: Option<&str>) -> RawSubmission {
    RawSubmission {
        workflow_name: Some("My Workflow".to_owned()),
        workflow_json: Some(json!({
            "nodes": [{"id": "start", "type": "StartNode"}, {"id": "end", "type": "EndNode"}],
            "connections": [{"from": "start", "to": "end"}]
        })),
        trigger_type: trigger_type.map(str::to_owned),
        ..RawSubmission::default()
    }
}

fn fields(err: ValidationError) -> Vec<String> {
    err.errors.into_iter().map(|e| e.field).collect()
}

#[test]
fn defaults_are_manual_lan_and_priority_10() {
    let s = Submission::parse(raw(None)).unwrap();
    assert_eq!(s.start, Start::Manual);
    assert_eq!(s.execution_mode, ExecutionMode::Lan);
    assert_eq!(s.priority, Priority::default());
    assert_eq!(s.description, None);
}

#[test]
fn the_description_comes_from_metadata_unless_given() {
    let mut r = raw(None);
    r.metadata
        .insert("description".to_owned(), json!("Example workflow"));
    assert_eq!(
        Submission::parse(r.clone()).unwrap().description.as_deref(),
        Some("Example workflow")
    );
    r.description = Some("top level".to_owned());
    assert_eq!(
        Submission::parse(r).unwrap().description.as_deref(),
        Some("top level")
    );
}

#[test]
fn every_broken_rule_is_reported_at_once() {
    let r = RawSubmission {
        workflow_name: Some("x".repeat(256)),
        workflow_json: None,
        trigger_type: Some("sometimes".to_owned()),
        execution_mode: Some("cloud".to_owned()),
        priority: Some(21),
        ..RawSubmission::default()
    };
    assert_eq!(
        fields(Submission::parse(r).unwrap_err()),
        vec![
            "workflow_name",
            "workflow_json",
            "trigger_type",
            "execution_mode",
            "priority"
        ]
    );
}

#[test]
fn scheduled_needs_a_valid_cron_named_schedule_cron() {
    let err = Submission::parse(raw(Some("scheduled"))).unwrap_err();
    assert_eq!(
        err.errors[0].message,
        "is required when trigger_type is scheduled"
    );
    let mut bad = raw(Some("scheduled"));
    bad.schedule_cron = Some("61 * * * *".to_owned());
    assert_eq!(
        fields(Submission::parse(bad).unwrap_err()),
        vec!["schedule_cron"]
    );
    let mut manual = raw(Some("manual"));
    manual.schedule_cron = Some("not looked at".to_owned());
    assert!(Submission::parse(manual).is_ok());
}

#[tokio::test]
async fn manual_submissions_store_the_workflow_and_queue_a_pending_job_with_its_event() {
    let mut mocks = Mocks::default().storing_the_workflow();
    mocks
        .jobs
        .expect_insert_job()
        .withf(|job, events| {
            job.status() == JobStatus::Pending
                && job.origin() == &JobOrigin::Manual
                && job.priority() == Priority::new(5).unwrap()
                && events.len() == 1
                && events[0].event_type == EventType::JobCreated
                && events[0].job_id == Some(job.id())
        })
        .times(1)
        .returning(|_, _| Ok(()));
    let mut r = raw(None);
    r.priority = Some(5);
    let submitted = mocks
        .service()
        .submit(Submission::parse(r).unwrap())
        .await
        .unwrap();
    assert_eq!(submitted.workflow.created_at, NOW);
    assert_eq!(submitted.workflow.version, 1);
    let Started::Job(job) = submitted.started else {
        panic!("expected a job, got {:?}", submitted.started);
    };
    assert_eq!(job.workflow_id(), submitted.workflow.id);
}

#[tokio::test]
async fn a_schedule_whose_name_is_taken_is_named_after_the_workflow_id() {
    let mut mocks = Mocks::default().storing_the_workflow();
    let names = Arc::new(Mutex::new(Vec::new()));
    let seen = names.clone();
    mocks
        .triggers
        .expect_insert_trigger()
        .times(2)
        .returning(move |trigger| {
            let mut seen = seen.lock().unwrap();
            seen.push(trigger.name.to_string());
            if seen.len() == 1 {
                Err(RepoError::Conflict("name taken".to_owned()))
            } else {
                Ok(())
            }
        });
    let mut r = raw(Some("scheduled"));
    r.schedule_cron = Some("0 9 * * *".to_owned());
    let submitted = mocks
        .service()
        .submit(Submission::parse(r).unwrap())
        .await
        .unwrap();
    let Started::Schedule(trigger) = submitted.started else {
        panic!("expected a schedule");
    };
    let id = submitted.workflow.id;
    assert_eq!(
        *names.lock().unwrap(),
        vec!["My Workflow".to_owned(), format!("My Workflow ({id})")]
    );
    assert_eq!(trigger.next_run, Some(datetime!(2025-12-02 09:00 UTC)));
    assert!(trigger.enabled);
}

#[test]
fn schedule_names_fit_255_characters() {
    let name = WorkflowName::parse("é".repeat(255)).unwrap();
    let id = WorkflowId::from_uuid(uuid::Uuid::nil());
    let names = schedule_names(&name, id);
    assert_eq!(names.len(), 2);
    assert_eq!(names[1].as_str().chars().count(), 255);
    assert!(names[1].as_str().ends_with(&format!(" ({id})")));
}

#[tokio::test]
async fn a_failed_start_deletes_the_workflow_again() {
    let mut mocks = Mocks::default().storing_the_workflow();
    mocks
        .jobs
        .expect_insert_job()
        .returning(|_, _| Err(RepoError::Unavailable("down".to_owned())));
    mocks
        .workflows
        .expect_delete_workflow()
        .times(1)
        .returning(|_| Ok(()));
    let err = mocks
        .service()
        .submit(Submission::parse(raw(None)).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::Unavailable(_))));
}

#[tokio::test]
async fn a_cron_that_never_fires_again_is_refused_before_anything_is_stored() {
    let mut r = raw(Some("scheduled"));
    // 30 February never comes.
    r.schedule_cron = Some("0 0 30 2 *".to_owned());
    let Ok(submission) = Submission::parse(r) else {
        // croner may refuse the expression outright, which is as good.
        return;
    };
    let err = Mocks::default()
        .service()
        .submit(submission)
        .await
        .unwrap_err();
    let ServiceError::Invalid(err) = err else {
        panic!("expected a validation error, got {err:?}");
    };
    assert_eq!(fields(err), vec!["schedule_cron"]);
}

#[tokio::test]
async fn webhook_submissions_store_only_the_hash_of_the_token_they_return() {
    let mut mocks = Mocks::default().storing_the_workflow();
    let stored = Arc::new(Mutex::new(None));
    let keep = stored.clone();
    mocks
        .webhooks
        .expect_insert_webhook()
        .times(1)
        .returning(move |w| {
            *keep.lock().unwrap() = Some(w.clone());
            Ok(())
        });
    let submitted = mocks
        .service()
        .submit(Submission::parse(raw(Some("webhook"))).unwrap())
        .await
        .unwrap();
    let Started::Webhook { token } = submitted.started else {
        panic!("expected a webhook");
    };
    let webhook = stored.lock().unwrap().clone().unwrap();
    assert_eq!(webhook.token_hash, crate::auth::sha256_hex(&token));
    assert_eq!(webhook.workflow_id, submitted.workflow.id);
}

fn stored_workflow() -> Workflow {
    let s = Submission::parse(raw(None)).unwrap();
    Workflow::new(
        WorkflowId::from_uuid(uuid::Uuid::from_u128(77)),
        s.name,
        None,
        s.graph,
        Map::new(),
        NOW,
    )
    .unwrap()
}

#[tokio::test]
async fn a_webhook_call_queues_a_job_with_the_body_as_input() {
    let (webhook, token) = Webhook::issue(
        stored_workflow().id,
        Priority::new(3).unwrap(),
        ExecutionMode::Internet,
        NOW,
    )
    .unwrap();
    let mut mocks = Mocks::default();
    let hash = webhook.token_hash.clone();
    mocks
        .webhooks
        .expect_find_webhook_by_token_hash()
        .withf(move |h| h == hash)
        .returning(move |_| Ok(webhook.clone()));
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Ok(stored_workflow()));
    mocks
        .jobs
        .expect_insert_job()
        .times(1)
        .returning(|_, _| Ok(()));
    let mut input = Map::new();
    input.insert("order".to_owned(), json!(42));
    let job = mocks
        .service()
        .run_webhook(&token, input.clone())
        .await
        .unwrap();
    assert_eq!(job.origin(), &JobOrigin::Webhook);
    assert_eq!(job.input(), &input);
    assert_eq!(job.priority(), Priority::new(3).unwrap());
    assert_eq!(job.execution_mode(), ExecutionMode::Internet);
}

#[tokio::test]
async fn unknown_and_orphaned_webhooks_are_not_found() {
    let mut mocks = Mocks::default();
    mocks
        .webhooks
        .expect_find_webhook_by_token_hash()
        .returning(|_| Err(RepoError::NotFound("webhook")));
    let err = mocks
        .service()
        .run_webhook("bw_nope", Map::new())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Repo(RepoError::NotFound("webhook"))
    ));

    let (webhook, token) = Webhook::issue(
        stored_workflow().id,
        Priority::default(),
        ExecutionMode::Lan,
        NOW,
    )
    .unwrap();
    let mut mocks = Mocks::default();
    mocks
        .webhooks
        .expect_find_webhook_by_token_hash()
        .returning(move |_| Ok(webhook.clone()));
    mocks
        .workflows
        .expect_get_workflow()
        .returning(|_| Err(RepoError::NotFound("workflow")));
    let err = mocks
        .service()
        .run_webhook(&token, Map::new())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ServiceError::Repo(RepoError::NotFound("webhook"))
    ));

    let overlong = "x".repeat(513);
    let err = Mocks::default()
        .service()
        .run_webhook(&overlong, Map::new())
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}

#[tokio::test]
async fn deleting_removes_the_workflow_then_its_webhooks() {
    let mut mocks = Mocks::default();
    mocks
        .workflows
        .expect_delete_workflow()
        .times(1)
        .returning(|_| Ok(()));
    mocks
        .webhooks
        .expect_delete_webhooks_of()
        .times(1)
        .returning(|_| Ok(1));
    mocks
        .service()
        .delete(WorkflowId::from_uuid(uuid::Uuid::nil()))
        .await
        .unwrap();

    let mut mocks = Mocks::default();
    mocks
        .workflows
        .expect_delete_workflow()
        .returning(|_| Err(RepoError::NotFound("workflow")));
    let err = mocks
        .service()
        .delete(WorkflowId::from_uuid(uuid::Uuid::nil()))
        .await
        .unwrap_err();
    assert!(matches!(err, ServiceError::Repo(RepoError::NotFound(_))));
}
