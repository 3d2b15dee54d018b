//! [`FlowRepository`] in memory.

use std::collections::HashSet;

use async_trait::async_trait;

use super::{InMemoryStore, State};
use crate::error::{RepoError, RepoResult};
use crate::event::Event;
use crate::flow::{Flow, FlowId};
use crate::job::Job;
use crate::ports::FlowRepository;

impl State {
    fn check_flow_version(&self, flow: &Flow) -> RepoResult<()> {
        match self.flows.get(flow.flow_id()) {
            None => Err(RepoError::NotFound("flow")),
            Some(stored) if stored.version() != flow.version() => Err(RepoError::Conflict(
                "the flow changed meanwhile; reload it and retry".to_owned(),
            )),
            Some(_) => Ok(()),
        }
    }

    fn store_flow(&mut self, flow: &Flow) -> Flow {
        let stored = {
            let mut stored = flow.clone();
            stored.mark_stored();
            stored
        };
        self.flows.insert(stored.flow_id().clone(), stored.clone());
        stored
    }
}

fn oldest_first(flows: &mut [&Flow]) {
    flows.sort_by(|a, b| (a.created_at(), a.flow_id()).cmp(&(b.created_at(), b.flow_id())));
}

#[async_trait]
impl FlowRepository for InMemoryStore {
    async fn insert_flows(&self, flows: &[Flow]) -> RepoResult<()> {
        let mut state = self.state();
        let mut seen = HashSet::new();
        for flow in flows {
            if state.flows.contains_key(flow.flow_id()) || !seen.insert(flow.flow_id()) {
                return Err(RepoError::Conflict(
                    "a flow with this id already exists".to_owned(),
                ));
            }
        }
        for flow in flows {
            state.flows.insert(flow.flow_id().clone(), flow.clone());
        }
        Ok(())
    }

    async fn get_flow(&self, id: &FlowId) -> RepoResult<Flow> {
        self.state()
            .flows
            .get(id)
            .cloned()
            .ok_or(RepoError::NotFound("flow"))
    }

    async fn list_flows(&self) -> RepoResult<Vec<Flow>> {
        let state = self.state();
        let mut flows: Vec<&Flow> = state.flows.values().collect();
        oldest_first(&mut flows);
        Ok(flows.into_iter().cloned().collect())
    }

    async fn update_flow(&self, flow: &Flow, events: &[Event]) -> RepoResult<Flow> {
        let mut state = self.state();
        state.check_flow_version(flow)?;
        state.check_events(events)?;
        let stored = state.store_flow(flow);
        state.append_events(events);
        Ok(stored)
    }

    async fn record_flow_job(&self, flow: &Flow, job: &Job, events: &[Event]) -> RepoResult<()> {
        let mut state = self.state();
        state.check_flow_version(flow)?;
        state.check_new_job(job)?;
        state.check_events(events)?;
        state.store_flow(flow);
        state.jobs.insert(job.id(), job.clone());
        state.append_events(events);
        Ok(())
    }

    async fn delete_flow(&self, id: &FlowId) -> RepoResult<()> {
        self.state()
            .flows
            .remove(id)
            .map(drop)
            .ok_or(RepoError::NotFound("flow"))
    }
}
