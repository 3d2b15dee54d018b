//! [`WorkflowRepository`], [`MessageRepository`] and [`WebhookRepository`] in memory: a
//! workflow owns its agents, their messages, its webhooks and its triggers.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{InMemoryStore, State, StoredAgent};
use crate::agent::{Agent, AgentView, Message};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::ids::{AgentId, MessageId, WorkflowId};
use crate::ports::{MessageRepository, WebhookRepository, WorkflowRepository};
use crate::webhook::Webhook;
use crate::workflow::Workflow;

fn unexpired(message: &Message, now: Timestamp) -> bool {
    message.expires_at.is_none_or(|end| end > now)
}

impl State {
    /// Makes `agents` the workflow's agent set, in their order; agents it no longer has are
    /// deleted with their messages. Checks before it writes.
    fn replace_agents(&mut self, workflow: WorkflowId, agents: &[Agent]) -> RepoResult<()> {
        let foreign = agents.iter().any(|agent| {
            self.agents
                .get(&agent.id)
                .is_some_and(|stored| stored.agent.workflow_id != workflow)
        });
        if foreign {
            return Err(RepoError::Conflict(
                "an agent id belongs to another workflow".to_owned(),
            ));
        }
        let keep: HashSet<AgentId> = agents.iter().map(|agent| agent.id).collect();
        self.remove_agents(|agent| agent.workflow_id == workflow && !keep.contains(&agent.id));
        for (position, agent) in agents.iter().enumerate() {
            self.agents.insert(
                agent.id,
                StoredAgent {
                    agent: Agent {
                        workflow_id: workflow,
                        ..agent.clone()
                    },
                    position,
                },
            );
        }
        Ok(())
    }

    /// Deletes the agents `doomed` picks, with their messages.
    fn remove_agents(&mut self, doomed: impl Fn(&Agent) -> bool) {
        let removed: HashSet<AgentId> = self
            .agents
            .values()
            .filter(|stored| doomed(&stored.agent))
            .map(|stored| stored.agent.id)
            .collect();
        self.agents.retain(|id, _| !removed.contains(id));
        self.messages
            .retain(|_, message| !removed.contains(&message.agent_id));
    }

    fn agent_view(&self, stored: &StoredAgent, now: Timestamp) -> AgentView {
        AgentView {
            agent: stored.agent.clone(),
            messages_count: self
                .messages
                .values()
                .filter(|m| m.agent_id == stored.agent.id && unexpired(m, now))
                .count() as u64,
        }
    }
}

#[async_trait]
impl WorkflowRepository for InMemoryStore {
    async fn insert_workflow(&self, workflow: &Workflow, agents: &[Agent]) -> RepoResult<()> {
        let mut state = self.state();
        if state.workflows.contains_key(&workflow.id) {
            return Err(RepoError::Conflict(
                "a workflow with this id already exists".to_owned(),
            ));
        }
        state.replace_agents(workflow.id, agents)?;
        state.workflows.insert(workflow.id, workflow.clone());
        Ok(())
    }

    async fn get_workflow(&self, id: WorkflowId) -> RepoResult<Workflow> {
        self.state()
            .workflows
            .get(&id)
            .cloned()
            .ok_or(RepoError::NotFound("workflow"))
    }

    async fn list_workflows(&self) -> RepoResult<Vec<Workflow>> {
        let mut workflows: Vec<Workflow> = self.state().workflows.values().cloned().collect();
        workflows.sort_by_key(|w| (w.created_at, w.id));
        Ok(workflows)
    }

    async fn delete_workflow(&self, id: WorkflowId) -> RepoResult<()> {
        let mut state = self.state();
        if state.workflows.remove(&id).is_none() {
            return Err(RepoError::NotFound("workflow"));
        }
        state
            .triggers
            .retain(|_, trigger| trigger.workflow_id != id);
        state
            .webhooks
            .retain(|_, webhook| webhook.workflow_id != id);
        state.remove_agents(|agent| agent.workflow_id == id);
        Ok(())
    }

    async fn list_agents(
        &self,
        workflow: Option<WorkflowId>,
        now: Timestamp,
    ) -> RepoResult<Vec<AgentView>> {
        let state = self.state();
        let mut agents: Vec<(Timestamp, WorkflowId, usize, &StoredAgent)> = state
            .agents
            .values()
            .filter(|stored| workflow.is_none_or(|w| stored.agent.workflow_id == w))
            .filter_map(|stored| {
                let owner = state.workflows.get(&stored.agent.workflow_id)?;
                Some((owner.created_at, owner.id, stored.position, stored))
            })
            .collect();
        agents.sort_by_key(|(created, workflow, position, _)| (*created, *workflow, *position));
        Ok(agents
            .into_iter()
            .map(|(_, _, _, stored)| state.agent_view(stored, now))
            .collect())
    }

    async fn get_agent(&self, id: AgentId, now: Timestamp) -> RepoResult<AgentView> {
        let state = self.state();
        let stored = state.agents.get(&id).ok_or(RepoError::NotFound("agent"))?;
        Ok(state.agent_view(stored, now))
    }
}

#[async_trait]
impl MessageRepository for InMemoryStore {
    async fn insert_messages(&self, messages: &[Message]) -> RepoResult<()> {
        let mut state = self.state();
        if messages
            .iter()
            .any(|m| !state.agents.contains_key(&m.agent_id))
        {
            return Err(RepoError::NotFound("agent"));
        }
        let mut seen = HashSet::new();
        if messages
            .iter()
            .any(|m| state.messages.contains_key(&m.id) || !seen.insert(m.id))
        {
            return Err(RepoError::Conflict(
                "a message with this id already exists".to_owned(),
            ));
        }
        for message in messages {
            state.messages.insert(message.id, message.clone());
        }
        Ok(())
    }

    async fn list_messages(
        &self,
        agent: AgentId,
        after: Option<Timestamp>,
        limit: Option<u32>,
        now: Timestamp,
    ) -> RepoResult<Vec<Message>> {
        let state = self.state();
        let mut messages: Vec<&Message> = state
            .messages
            .values()
            .filter(|m| m.agent_id == agent && unexpired(m, now))
            .filter(|m| after.is_none_or(|after| m.created_at > after))
            .collect();
        messages.sort_by_key(|m| std::cmp::Reverse((m.created_at, m.id)));
        let messages = messages.into_iter().cloned();
        Ok(match limit {
            Some(limit) => super::limited(messages, limit),
            None => messages.collect(),
        })
    }

    async fn get_message(&self, id: MessageId, now: Timestamp) -> RepoResult<Message> {
        self.state()
            .messages
            .get(&id)
            .filter(|m| unexpired(m, now))
            .cloned()
            .ok_or(RepoError::NotFound("message"))
    }

    async fn purge_expired_messages(&self, now: Timestamp) -> RepoResult<u64> {
        let mut state = self.state();
        let before = state.messages.len();
        state.messages.retain(|_, m| unexpired(m, now));
        Ok((before - state.messages.len()) as u64)
    }
}

#[async_trait]
impl WebhookRepository for InMemoryStore {
    async fn insert_webhook(&self, webhook: &Webhook) -> RepoResult<()> {
        let mut state = self.state();
        if !state.workflows.contains_key(&webhook.workflow_id) {
            return Err(RepoError::NotFound("workflow"));
        }
        if state.webhooks.contains_key(&webhook.token_hash) {
            return Err(RepoError::Conflict("the webhook already exists".to_owned()));
        }
        state
            .webhooks
            .insert(webhook.token_hash.clone(), webhook.clone());
        Ok(())
    }

    async fn find_webhook_by_token_hash(&self, token_hash: &str) -> RepoResult<Webhook> {
        self.state()
            .webhooks
            .get(token_hash)
            .cloned()
            .ok_or(RepoError::NotFound("webhook"))
    }

    async fn delete_webhooks_of(&self, workflow: WorkflowId) -> RepoResult<u64> {
        let mut state = self.state();
        let before = state.webhooks.len();
        state.webhooks.retain(|_, w| w.workflow_id != workflow);
        Ok((before - state.webhooks.len()) as u64)
    }
}
