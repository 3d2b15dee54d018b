//! `WorkflowRepository`, and the builders the trigger, message and flow suites share.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]
// The builders are shared with the other suites, and not every one uses each of them.
#![allow(dead_code)]

use super::SharedStore;
use baton_domain::agent::{Agent, Message};
use baton_domain::event::{Event, EventType};
use baton_domain::ids::{AgentId, EventId, JobId, MessageId, TriggerId, WorkflowId};
use baton_domain::job::{Job, JobOrigin, NewJob, Priority};
use baton_domain::trigger::{Trigger, TriggerKind, TriggerName};
use baton_domain::workflow::{ExecutionMode, Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{RepoError, Timestamp};
use serde_json::{Value, json};
use time::Duration;

use super::fixtures::{T0, at, uuid};

/// `t` plus `us` microseconds: every stored instant must keep them.
pub fn micros(t: Timestamp, us: i64) -> Timestamp {
    t + Duration::microseconds(us)
}

pub fn workflow_id(n: u128) -> WorkflowId {
    WorkflowId::from_uuid(uuid(0x1000 + n))
}

pub fn agent_id(n: u128) -> AgentId {
    AgentId::from_uuid(uuid(0x2000 + n))
}

pub fn message_id(n: u128) -> MessageId {
    MessageId::from_uuid(uuid(0x3000 + n))
}

pub fn job_id(n: u128) -> JobId {
    JobId::from_uuid(uuid(0x4000 + n))
}

pub fn event_id(n: u128) -> EventId {
    EventId::from_uuid(uuid(0x5000 + n))
}

pub fn trigger_id(n: u128) -> TriggerId {
    TriggerId::from_uuid(uuid(0x6000 + n))
}

/// A chain of nodes `ids[0] -> ids[1] -> …`, each with a name and a config.
pub fn chain(ids: &[&str]) -> WorkflowGraph {
    let nodes: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "type": "Log", "name": format!("Node {id}"), "config": {"level": "info"}}))
        .collect();
    let connections: Vec<Value> = ids
        .windows(2)
        .map(|w| json!({"from": w[0], "to": w[1]}))
        .collect();
    WorkflowGraph::parse(
        json!({"nodes": nodes, "connections": connections, "extra": {"kept": true}}),
    )
    .unwrap()
}

/// Workflow `n` over `graph`, created at `created`, with a description and metadata.
pub fn workflow_with(n: u128, graph: WorkflowGraph, created: Timestamp) -> Workflow {
    let mut metadata = serde_json::Map::new();
    metadata.insert("owner".to_owned(), json!("ops"));
    metadata.insert("tags".to_owned(), json!(["nightly", 3]));
    Workflow::new(
        workflow_id(n),
        WorkflowName::parse(format!("workflow {n}")).unwrap(),
        Some("Moves invoices".to_owned()),
        graph,
        metadata,
        created,
    )
    .unwrap()
}

pub fn workflow(n: u128) -> Workflow {
    workflow_with(n, chain(&["start", "end"]), micros(at(n as i64), 123_456))
}

/// The agents of `workflow`, reusing the ids of `existing` nodes and numbering new ones from
/// `first_new`.
pub fn agents_of(
    workflow: &Workflow,
    existing: &[(String, AgentId)],
    first_new: u128,
) -> Vec<Agent> {
    let mut next = first_new;
    Agent::from_workflow(workflow, existing, || {
        next += 1;
        agent_id(next - 1)
    })
}

/// Stores workflow `n` (nodes start → end) with its agents and returns both.
pub async fn stored_workflow(db: &SharedStore, n: u128) -> (Workflow, Vec<Agent>) {
    let wf = workflow(n);
    let agents = agents_of(&wf, &[], n * 100);
    db.insert_workflow(&wf, &agents).await.unwrap();
    (wf, agents)
}

pub fn message(n: u128, agent: AgentId, created: Timestamp, expires: Option<Timestamp>) -> Message {
    Message {
        id: message_id(n),
        agent_id: agent,
        job_id: Some(job_id(n)),
        payload: json!({"n": n as u64, "nested": {"list": [1, "two", null]}}),
        created_at: created,
        expires_at: expires,
    }
}

/// A pending job `n` of workflow 1 started by `origin`.
pub fn job(n: u128, origin: JobOrigin, now: Timestamp) -> Job {
    NewJob {
        workflow_id: workflow_id(1),
        workflow_name: WorkflowName::parse("workflow 1").unwrap(),
        priority: Priority::new(4).unwrap(),
        execution_mode: ExecutionMode::Internet,
        input: serde_json::Map::from_iter([("answer".to_owned(), json!(42))]),
        origin,
        max_retries: NewJob::DEFAULT_MAX_RETRIES,
    }
    .into_job(job_id(n), now)
}

pub fn event(n: u128, event_type: EventType, now: Timestamp) -> Event {
    Event::new(event_id(n), event_type, format!("event {n}"), now)
}

pub fn single_trigger(n: u128, workflow: WorkflowId) -> Trigger {
    Trigger::new(
        trigger_id(n),
        TriggerName::parse_trigger(format!("trigger {n}")).unwrap(),
        TriggerKind::Single,
        workflow,
        true,
        Priority::default(),
        ExecutionMode::Lan,
        micros(T0, n as i64),
    )
}

fn node_ids(agents: &[Agent]) -> Vec<(String, AgentId)> {
    agents.iter().map(|a| (a.node_id.clone(), a.id)).collect()
}

pub async fn a_workflow_and_its_agents_read_back_as_written(db: SharedStore) {
    let wf = workflow_with(1, chain(&["fetch", "parse", "store"]), micros(T0, 654_321));
    let agents = agents_of(&wf, &[], 10);
    db.insert_workflow(&wf, &agents).await.unwrap();

    let read = db.get_workflow(wf.id).await.unwrap();
    assert_eq!(read, wf);
    assert_eq!(
        read.graph.source(),
        wf.graph.source(),
        "the document is kept as submitted"
    );

    let views = db.list_agents(Some(wf.id), T0).await.unwrap();
    let listed: Vec<Agent> = views.iter().map(|v| v.agent.clone()).collect();
    assert_eq!(
        listed, agents,
        "agents come back in node order, every field intact"
    );
    assert!(views.iter().all(|v| v.messages_count == 0));
    assert_eq!(listed[2].sources, vec![agents[1].id]);

    let one = db.get_agent(agents[1].id, T0).await.unwrap();
    assert_eq!(one.agent, agents[1]);
    assert_eq!(one.messages_count, 0);
}

pub async fn optional_fields_read_back_as_none(db: SharedStore) {
    let graph =
        WorkflowGraph::parse(json!({"nodes": [{"id": 7, "type": "Start", "disabled": true}]}))
            .unwrap();
    let wf = Workflow::new(
        workflow_id(2),
        WorkflowName::parse("bare").unwrap(),
        None,
        graph,
        serde_json::Map::new(),
        T0,
    )
    .unwrap();
    let agents = agents_of(&wf, &[], 20);
    db.insert_workflow(&wf, &agents).await.unwrap();
    assert_eq!(db.get_workflow(wf.id).await.unwrap(), wf);
    let agent = db.get_agent(agents[0].id, T0).await.unwrap().agent;
    assert_eq!(agent, agents[0]);
    assert!(agent.disabled);
    assert_eq!(agent.node_id, "7");
}

pub async fn an_existing_workflow_id_conflicts(db: SharedStore) {
    let (wf, agents) = stored_workflow(&db, 1).await;
    let mut twin = workflow_with(1, chain(&["other"]), T0);
    twin.name = WorkflowName::parse("twin").unwrap();
    let twin_agents = agents_of(&twin, &[], 500);
    let err = db.insert_workflow(&twin, &twin_agents).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(
        db.get_workflow(wf.id).await.unwrap(),
        wf,
        "the first one is untouched"
    );
    let listed: Vec<Agent> = db
        .list_agents(None, T0)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.agent)
        .collect();
    assert_eq!(
        listed, agents,
        "the refused workflow's agents were not written"
    );
}

pub async fn an_agent_id_of_another_workflow_conflicts(db: SharedStore) {
    let (_, first_agents) = stored_workflow(&db, 1).await;
    let wf = workflow(2);
    let mut agents = agents_of(&wf, &[], 200);
    agents[0].id = first_agents[0].id;
    let err = db.insert_workflow(&wf, &agents).await.unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert!(
        matches!(db.get_workflow(wf.id).await, Err(RepoError::NotFound(_))),
        "nothing was written"
    );
    let kept = db.get_agent(first_agents[0].id, T0).await.unwrap().agent;
    assert_eq!(
        kept, first_agents[0],
        "the other workflow's agent did not move"
    );
}

pub async fn missing_workflows_and_agents_are_not_found(db: SharedStore) {
    assert!(matches!(
        db.get_workflow(workflow_id(1)).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.get_agent(agent_id(1), T0).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.delete_workflow(workflow_id(1)).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(db.list_workflows().await.unwrap().is_empty());
}

pub async fn workflows_list_oldest_first(db: SharedStore) {
    for (n, created) in [(1, 30), (2, 10), (3, 20)] {
        let wf = workflow_with(n, chain(&["x"]), micros(at(created), 7));
        db.insert_workflow(&wf, &agents_of(&wf, &[], n * 100))
            .await
            .unwrap();
    }
    let ids: Vec<WorkflowId> = db
        .list_workflows()
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, [workflow_id(2), workflow_id(3), workflow_id(1)]);
}

pub async fn deleting_a_workflow_removes_agents_messages_and_triggers_but_not_jobs(
    db: SharedStore,
) {
    let (wf, agents) = stored_workflow(&db, 1).await;
    let (other, other_agents) = stored_workflow(&db, 2).await;
    db.insert_messages(&[
        message(1, agents[0].id, at(1), None),
        message(2, other_agents[0].id, at(1), None),
    ])
    .await
    .unwrap();
    db.insert_trigger(&single_trigger(1, wf.id)).await.unwrap();
    db.insert_trigger(&single_trigger(2, other.id))
        .await
        .unwrap();
    let job = job(1, JobOrigin::Manual, T0);
    db.insert_job(&job, &[]).await.unwrap();

    db.delete_workflow(wf.id).await.unwrap();

    assert!(matches!(
        db.get_workflow(wf.id).await,
        Err(RepoError::NotFound(_))
    ));
    for agent in &agents {
        assert!(matches!(
            db.get_agent(agent.id, T0).await,
            Err(RepoError::NotFound(_))
        ));
    }
    assert!(matches!(
        db.get_message(message_id(1), T0).await,
        Err(RepoError::NotFound(_))
    ));
    assert!(matches!(
        db.get_trigger(trigger_id(1)).await,
        Err(RepoError::NotFound(_))
    ));
    assert_eq!(
        db.get_job(job.id()).await.unwrap(),
        job,
        "jobs keep their records"
    );

    // The other workflow is untouched.
    assert_eq!(db.get_workflow(other.id).await.unwrap(), other);
    assert_eq!(
        db.get_agent(other_agents[0].id, T0)
            .await
            .unwrap()
            .messages_count,
        1
    );
    assert!(db.get_trigger(trigger_id(2)).await.is_ok());
    assert!(
        matches!(db.delete_workflow(wf.id).await, Err(RepoError::NotFound(_))),
        "deleting twice"
    );
}

pub async fn agents_list_in_workflow_then_node_order_with_unexpired_counts(db: SharedStore) {
    // Workflow 2 is older than workflow 1, so its agents come first.
    let older = workflow_with(2, chain(&["p", "q"]), at(1));
    let newer = workflow_with(1, chain(&["z", "y", "x"]), at(2));
    let older_agents = agents_of(&older, &[], 200);
    let newer_agents = agents_of(&newer, &[], 100);
    db.insert_workflow(&newer, &newer_agents).await.unwrap();
    db.insert_workflow(&older, &older_agents).await.unwrap();

    let now = micros(at(1_000), 500);
    let q = older_agents[1].id;
    db.insert_messages(&[
        message(1, q, at(1), None),
        message(2, q, at(2), Some(micros(now, 1))),
        message(3, q, at(3), Some(now)),
        message(4, q, at(4), Some(at(10))),
        message(5, newer_agents[2].id, at(5), Some(at(5_000))),
    ])
    .await
    .unwrap();

    let views = db.list_agents(None, now).await.unwrap();
    let ids: Vec<AgentId> = views.iter().map(|v| v.agent.id).collect();
    let expected: Vec<AgentId> = older_agents
        .iter()
        .chain(&newer_agents)
        .map(|a| a.id)
        .collect();
    assert_eq!(ids, expected);
    let counts: Vec<u64> = views.iter().map(|v| v.messages_count).collect();
    assert_eq!(
        counts,
        [0, 2, 0, 0, 1],
        "a message expiring exactly at now no longer counts"
    );
    assert_eq!(db.get_agent(q, now).await.unwrap().messages_count, 2);
    assert_eq!(db.get_agent(q, at(0)).await.unwrap().messages_count, 4);
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_workflows {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(workflows [
    a_workflow_and_its_agents_read_back_as_written,
    optional_fields_read_back_as_none,
    an_existing_workflow_id_conflicts,
    an_agent_id_of_another_workflow_conflicts,
    missing_workflows_and_agents_are_not_found,
    workflows_list_oldest_first,
    deleting_a_workflow_removes_agents_messages_and_triggers_but_not_jobs,
    agents_list_in_workflow_then_node_order_with_unexpired_counts,
        ] $($backend => $fixture),+);
    };
}
