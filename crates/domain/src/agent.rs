//! Agents and messages: a workflow's nodes and their outputs, as the ActiveWorkflow API shows them.

use serde_json::Value;

use crate::clock::Timestamp;
use crate::ids::{AgentId, JobId, MessageId, WorkflowId};
use crate::workflow::Workflow;

/// One node of a workflow, with a stable global id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub workflow_id: WorkflowId,
    /// The node's id within its workflow's graph.
    pub node_id: String,
    pub name: String,
    pub agent_type: String,
    pub disabled: bool,
    /// Upstream agents, from the workflow's connections.
    pub sources: Vec<AgentId>,
}

/// An agent with how many unexpired messages it has emitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentView {
    pub agent: Agent,
    pub messages_count: u64,
}

impl Agent {
    /// The agents of a workflow's graph. `existing` maps node ids already known to their agent
    /// ids, so an agent keeps its id (and its messages) across workflow versions.
    pub fn from_workflow(
        workflow: &Workflow,
        existing: &[(String, AgentId)],
        mut new_id: impl FnMut() -> AgentId,
    ) -> Vec<Agent> {
        let ids: Vec<(String, AgentId)> = workflow
            .graph
            .nodes()
            .iter()
            .map(|node| {
                let id = existing
                    .iter()
                    .find(|(node_id, _)| *node_id == node.id)
                    .map(|(_, id)| *id)
                    .unwrap_or_else(&mut new_id);
                (node.id.clone(), id)
            })
            .collect();
        let id_of = |node_id: &str| ids.iter().find(|(n, _)| n == node_id).map(|(_, id)| *id);
        workflow
            .graph
            .nodes()
            .iter()
            .filter_map(|node| {
                Some(Agent {
                    id: id_of(&node.id)?,
                    workflow_id: workflow.id,
                    node_id: node.id.clone(),
                    name: node.display_name().to_owned(),
                    agent_type: node.node_type.clone(),
                    disabled: node.disabled,
                    sources: workflow
                        .graph
                        .sources_of(&node.id)
                        .into_iter()
                        .filter_map(id_of)
                        .collect(),
                })
            })
            .collect()
    }
}

/// A payload emitted by an agent while a job ran.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub agent_id: AgentId,
    pub job_id: Option<JobId>,
    pub payload: Value,
    pub created_at: Timestamp,
    /// `None`: never expires.
    pub expires_at: Option<Timestamp>,
}

impl Message {
    /// Payloads are bounded so one node cannot fill the database: 1 MB of JSON.
    pub const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;

    pub fn new(
        id: MessageId,
        agent_id: AgentId,
        job_id: Option<JobId>,
        payload: Value,
        keep_for: Option<time::Duration>,
        now: Timestamp,
    ) -> Result<Self, crate::ValidationError> {
        if payload.to_string().len() > Self::MAX_PAYLOAD_BYTES {
            return Err(crate::ValidationError::field(
                "payload",
                "must be at most 1 MB of JSON",
            ));
        }
        Ok(Self {
            id,
            agent_id,
            job_id,
            payload,
            created_at: now,
            expires_at: keep_for.map(|d| now + d),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{WorkflowGraph, WorkflowName};
    use serde_json::json;

    fn workflow() -> Workflow {
        let graph = WorkflowGraph::parse(json!({
            "nodes": [{"id": "fetch", "type": "HttpRequest", "name": "Retrieve"},
                      {"id": "mail", "type": "Log", "disabled": true}],
            "connections": [{"from": "fetch", "to": "mail"}]
        }))
        .unwrap();
        Workflow::new(
            WorkflowId::from_uuid(uuid::Uuid::nil()),
            WorkflowName::parse("w").unwrap(),
            None,
            graph,
            serde_json::Map::new(),
            time::macros::datetime!(2025-01-01 00:00 UTC),
        )
        .unwrap()
    }

    #[test]
    fn agents_mirror_nodes_and_their_sources() {
        let mut n = 0u128;
        let agents = Agent::from_workflow(&workflow(), &[], || {
            n += 1;
            AgentId::from_uuid(uuid::Uuid::from_u128(n))
        });
        assert_eq!(agents.len(), 2);
        assert_eq!(agents[0].name, "Retrieve");
        assert_eq!(agents[1].name, "mail", "a node without a name shows its id");
        assert!(agents[1].disabled);
        assert_eq!(agents[1].sources, vec![agents[0].id]);
        assert!(agents[0].sources.is_empty());
    }

    #[test]
    fn agents_keep_their_ids_across_versions() {
        let keep = AgentId::from_uuid(uuid::Uuid::from_u128(77));
        let agents = Agent::from_workflow(&workflow(), &[("mail".to_owned(), keep)], || {
            AgentId::from_uuid(uuid::Uuid::from_u128(1))
        });
        assert_eq!(agents[1].id, keep);
        assert_eq!(
            agents[1].sources,
            vec![AgentId::from_uuid(uuid::Uuid::from_u128(1))]
        );
    }

    #[test]
    fn messages_expire_after_keep_for_or_never() {
        let now = time::macros::datetime!(2025-01-01 00:00 UTC);
        let id = MessageId::from_uuid(uuid::Uuid::nil());
        let agent = AgentId::from_uuid(uuid::Uuid::nil());
        let m = Message::new(
            id,
            agent,
            None,
            json!({}),
            Some(time::Duration::days(1)),
            now,
        )
        .unwrap();
        assert_eq!(m.expires_at, Some(now + time::Duration::days(1)));
        let forever = Message::new(id, agent, None, json!({}), None, now).unwrap();
        assert_eq!(forever.expires_at, None);
    }
}
