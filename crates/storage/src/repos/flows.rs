//! `FlowRepository`: long-running flows and the jobs they start.

use std::collections::HashSet;

use async_trait::async_trait;
use baton_domain::event::Event;
use baton_domain::flow::{Flow, FlowConfig, FlowId, FlowRecord, FlowStatus};
use baton_domain::ids::JobId;
use baton_domain::job::Job;
use baton_domain::ports::FlowRepository;
use baton_domain::{RepoError, RepoResult};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::rows::{object_to_text, text_to_value};
use crate::db::Db;
use crate::error::{DbError, DbResult, corrupt};
use crate::schema::flows;
use crate::sql_types::{DbTime, DbUuid};

#[derive(Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = flows)]
#[diesel(primary_key(flow_id))]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// On update a `None` must clear the stored value (e.g. the finished current job).
#[diesel(treat_none_as_null = true)]
// On insert a `None` is written as NULL rather than DEFAULT, which lets SQLite take a batch in
// one statement (it has no DEFAULT inside multi-row VALUES).
#[diesel(treat_none_as_default_value = false)]
struct FlowRow {
    flow_id: String,
    config: String,
    workflow_id: DbUuid,
    status: String,
    current_job_id: Option<DbUuid>,
    next_run_at: Option<DbTime>,
    /// A flow's creation does not move when it is updated.
    #[diesel(skip_update)]
    created_at: DbTime,
    updated_at: DbTime,
    version: i64,
}

impl FlowRow {
    fn from_domain(flow: &Flow) -> Self {
        Self {
            flow_id: flow.flow_id().as_str().to_owned(),
            // The configuration exactly as the user gave it; the typed fields are parsed from it
            // again on read, so the two can never disagree.
            config: object_to_text(flow.config().document()),
            workflow_id: DbUuid(*flow.config().workflow_id().as_uuid()),
            status: flow.status().as_str().to_owned(),
            current_job_id: flow.current_job_id().map(|j| DbUuid(*j.as_uuid())),
            next_run_at: flow.next_run_at().map(DbTime),
            created_at: DbTime(flow.created_at()),
            updated_at: DbTime(flow.updated_at()),
            version: flow.version(),
        }
    }

    fn into_domain(self) -> DbResult<Flow> {
        let config = FlowConfig::parse_stored(text_to_value(&self.config, "flow config")?)
            .map_err(|e| corrupt("flow config", e))?;
        if config.flow_id().as_str() != self.flow_id {
            return Err(corrupt("flow config", "its flow_id differs from the row's"));
        }
        Ok(Flow::from_record(FlowRecord {
            config,
            status: self
                .status
                .parse::<FlowStatus>()
                .map_err(|e| corrupt("flow status", e))?,
            current_job_id: self.current_job_id.map(|j| JobId::from_uuid(j.0)),
            next_run_at: self.next_run_at.map(|t| t.0),
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
            version: self.version,
        }))
    }
}

/// Stores `$row` (already carrying the bumped version) if the stored version is still
/// `$expected`, inside the caller's transaction; otherwise returns `NotFound` or `Conflict` from
/// the enclosing body, which rolls the transaction back.
macro_rules! update_flow_checked {
    ($conn:expr, $row:expr, $expected:expr) => {{
        let updated = diesel::update(
            flows::table
                .find(&$row.flow_id)
                .filter(flows::version.eq($expected)),
        )
        .set($row)
        .execute($conn)
        .await?;
        if updated == 0 {
            let exists: bool =
                diesel::select(diesel::dsl::exists(flows::table.find(&$row.flow_id)))
                    .get_result($conn)
                    .await?;
            return Err(if exists {
                RepoError::Conflict("the flow changed meanwhile; reload it and retry".to_owned())
            } else {
                RepoError::NotFound("flow")
            }
            .into());
        }
    }};
}

#[async_trait]
impl FlowRepository for Db {
    async fn insert_flows(&self, flows: &[Flow]) -> RepoResult<()> {
        let mut seen = HashSet::new();
        if let Some(twice) = flows.iter().find(|f| !seen.insert(f.flow_id())) {
            return Err(RepoError::Conflict(format!(
                "flow '{twice}' appears twice",
                twice = twice.flow_id()
            )));
        }
        if flows.is_empty() {
            return Ok(());
        }
        let rows: Vec<FlowRow> = flows.iter().map(FlowRow::from_domain).collect();
        crate::transaction!(self, |conn| {
            crate::repos::batch::InsertMany::insert_many(
                conn,
                diesel::insert_into(flows::table).values(rows.clone()),
            )
            .await?;
            Ok(())
        })
        .map_err(|e: DbError| match e.0 {
            RepoError::Conflict(_) => {
                RepoError::Conflict("a flow with this id already exists".to_owned())
            }
            other => other,
        })
    }

    async fn get_flow(&self, id: &FlowId) -> RepoResult<Flow> {
        let id = id.as_str().to_owned();
        let row: Option<FlowRow> = crate::with_conn!(self, |conn| {
            Ok(flows::table
                .find(&id)
                .select(FlowRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("flow"))?.into_domain()?)
    }

    async fn list_flows(&self) -> RepoResult<Vec<Flow>> {
        let rows: Vec<FlowRow> = crate::with_conn!(self, |conn| {
            Ok(flows::table
                .order((flows::created_at.asc(), flows::flow_id.asc()))
                .select(FlowRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(FlowRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn update_flow(&self, flow: &Flow, events: &[Event]) -> RepoResult<Flow> {
        let mut row = FlowRow::from_domain(flow);
        row.version = flow.version() + 1;
        crate::transaction!(self, |conn| {
            update_flow_checked!(conn, &row, flow.version());
            crate::append_event_rows!(conn, events);
            Ok(())
        })?;
        Ok({
            let mut stored = flow.clone();
            stored.mark_stored();
            stored
        })
    }

    async fn record_flow_job(&self, flow: &Flow, job: &Job, events: &[Event]) -> RepoResult<()> {
        let mut row = FlowRow::from_domain(flow);
        row.version = flow.version() + 1;
        crate::transaction!(self, |conn| {
            update_flow_checked!(conn, &row, flow.version());
            // The jobs repository's own row mapping, so a job is stored one way only.
            crate::insert_job_row!(conn, job);
            crate::append_event_rows!(conn, events);
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn delete_flow(&self, id: &FlowId) -> RepoResult<()> {
        let id = id.as_str().to_owned();
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::delete(flows::table.find(&id)).execute(conn).await?)
        })?;
        if deleted == 0 {
            return Err(RepoError::NotFound("flow"));
        }
        Ok(())
    }
}
