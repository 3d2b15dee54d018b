//! `EventRepository`: the append-only activity log, read newest first or tailed by `seq`.

use async_trait::async_trait;
use baton_domain::RepoResult;
use baton_domain::event::Event;
use baton_domain::ports::{EventFilter, EventRepository};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::event_rows::EventRow;
use super::rows::to_u64;
use crate::db::Db;
use crate::error::DbResult;
use crate::schema::events;
use crate::sql_types::DbTime;

fn rows_to_events(rows: Vec<EventRow>) -> DbResult<Vec<Event>> {
    rows.into_iter().map(EventRow::into_domain).collect()
}

/// The events matching `$filter`, as a boxed query of the backend `load`/`get_result` picks.
/// A macro, so that the page and the count each build their own query from one definition.
macro_rules! matching_events {
    ($filter:expr) => {{
        let mut query = events::table.into_boxed();
        if let Some(event_type) = $filter.event_type {
            query = query.filter(events::event_type.eq(event_type.as_str()));
        }
        if let Some(since) = $filter.since {
            query = query.filter(events::timestamp.gt(DbTime(since)));
        }
        query
    }};
}

#[async_trait]
impl EventRepository for Db {
    async fn list_events(&self, filter: &EventFilter) -> RepoResult<(Vec<Event>, u64)> {
        let (rows, total): (Vec<EventRow>, i64) = crate::with_conn!(self, |conn| {
            // By time, not by `seq`: a writer takes its timestamp before it inserts, so under
            // concurrent writers log order and time order can disagree by a few milliseconds,
            // and a feed is read by time (`since` filters on it too).
            let rows = matching_events!(filter)
                .order((events::timestamp.desc(), events::seq.desc()))
                .limit(i64::from(filter.limit))
                .select(EventRow::as_select())
                .load(conn)
                .await?;
            let total = matching_events!(filter).count().get_result(conn).await?;
            Ok((rows, total))
        })?;
        Ok((rows_to_events(rows)?, to_u64(total, "event count")?))
    }

    async fn events_after(&self, after_seq: i64, limit: u32) -> RepoResult<Vec<Event>> {
        let rows: Vec<EventRow> = crate::with_conn!(self, |conn| {
            Ok(events::table
                .filter(events::seq.gt(after_seq))
                .order(events::seq.asc())
                .limit(i64::from(limit))
                .select(EventRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows_to_events(rows)?)
    }

    async fn latest_event_seq(&self) -> RepoResult<i64> {
        let latest: Option<i64> = crate::with_conn!(self, |conn| {
            Ok(events::table
                .select(diesel::dsl::max(events::seq))
                .first(conn)
                .await?)
        })?;
        Ok(latest.unwrap_or(0))
    }
}
