//! [`EventRepository`] in memory: the activity log, each event numbered as it is appended.

use async_trait::async_trait;

use super::{InMemoryStore, limited};
use crate::error::RepoResult;
use crate::event::Event;
use crate::ports::{EventFilter, EventRepository};

#[async_trait]
impl EventRepository for InMemoryStore {
    async fn list_events(&self, filter: &EventFilter) -> RepoResult<(Vec<Event>, u64)> {
        let state = self.state();
        let mut matching: Vec<&Event> = state
            .events
            .iter()
            .filter(|e| filter.event_type.is_none_or(|t| e.event_type == t))
            .filter(|e| filter.since.is_none_or(|since| e.timestamp > since))
            .collect();
        let total = matching.len() as u64;
        matching.sort_by_key(|e| std::cmp::Reverse((e.timestamp, e.seq)));
        Ok((limited(matching.into_iter().cloned(), filter.limit), total))
    }

    async fn events_after(&self, after_seq: i64, limit: u32) -> RepoResult<Vec<Event>> {
        let state = self.state();
        let after = state.events.iter().filter(|e| e.seq > after_seq).cloned();
        Ok(limited(after, limit))
    }

    async fn latest_event_seq(&self) -> RepoResult<i64> {
        Ok(self.state().events.last().map_or(0, |e| e.seq))
    }
}
