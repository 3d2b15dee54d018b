//! `WorkflowRepository` and `MessageRepository`: workflows, the agents that mirror their nodes,
//! and the messages those agents emit.

use std::collections::HashSet;

use async_trait::async_trait;
use baton_domain::agent::{Agent, AgentView, Message};
use baton_domain::ids::{AgentId, JobId, MessageId, WorkflowId};
use baton_domain::ports::{MessageRepository, WorkflowRepository};
use baton_domain::workflow::{Workflow, WorkflowGraph, WorkflowName};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::expression::{SqlLiteral, UncheckedBind};
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;

use super::rows::{object_to_text, text_to_object, text_to_value, to_u64};
use crate::db::Db;
use crate::error::{DbError, DbResult, corrupt, map_diesel};
use crate::schema::{agents, messages, triggers, workflows};
use crate::sql_types::{DbTime, DbUuid, UtcTime};

/// Rows per multi-row INSERT: well below the bind-parameter limits of both backends
/// (65,535 on PostgreSQL, 32,766 on SQLite) for the widest row written here.
const INSERT_CHUNK: usize = 1000;

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = workflows)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct WorkflowRow {
    id: DbUuid,
    name: String,
    description: Option<String>,
    workflow_json: String,
    version: i32,
    metadata: String,
    created_at: DbTime,
    updated_at: DbTime,
}

impl WorkflowRow {
    fn from_domain(workflow: &Workflow) -> Self {
        Self {
            id: DbUuid(*workflow.id.as_uuid()),
            name: workflow.name.as_str().to_owned(),
            description: workflow.description.clone(),
            // The submitted document, so clients read back exactly what they sent; the parsed
            // graph is rebuilt from it on read.
            workflow_json: workflow.graph.source().to_string(),
            version: workflow.version,
            metadata: object_to_text(&workflow.metadata),
            created_at: DbTime(workflow.created_at),
            updated_at: DbTime(workflow.updated_at),
        }
    }

    fn into_domain(self) -> DbResult<Workflow> {
        let source = text_to_value(&self.workflow_json, "workflow graph")?;
        Ok(Workflow {
            id: WorkflowId::from_uuid(self.id.0),
            name: WorkflowName::from_stored(self.name).map_err(|e| corrupt("workflow name", e))?,
            description: self.description,
            graph: WorkflowGraph::parse_stored(source).map_err(|e| corrupt("workflow graph", e))?,
            version: self.version,
            metadata: text_to_object(&self.metadata, "workflow metadata")?,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = agents)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct AgentRow {
    id: DbUuid,
    workflow_id: DbUuid,
    node_id: String,
    position: i32,
    name: String,
    agent_type: String,
    disabled: bool,
    sources: String,
}

impl AgentRow {
    /// `position` is the agent's index in the caller's list, which is the graph's node order.
    fn from_domain(agent: &Agent, workflow: WorkflowId, position: usize) -> Self {
        let sources: Vec<serde_json::Value> = agent
            .sources
            .iter()
            .map(|s| serde_json::Value::String(s.to_string()))
            .collect();
        Self {
            id: DbUuid(*agent.id.as_uuid()),
            // The workflow being written owns the agents, whatever the caller's copies say.
            workflow_id: DbUuid(*workflow.as_uuid()),
            node_id: agent.node_id.clone(),
            position: i32::try_from(position).unwrap_or(i32::MAX),
            name: agent.name.clone(),
            agent_type: agent.agent_type.clone(),
            disabled: agent.disabled,
            sources: serde_json::Value::Array(sources).to_string(),
        }
    }

    fn into_domain(self) -> DbResult<Agent> {
        let sources = match text_to_value(&self.sources, "agent sources")? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => {
                        s.parse::<AgentId>().map_err(|e| corrupt("agent source", e))
                    }
                    other => Err(corrupt("agent source", format!("not a string: {other}"))),
                })
                .collect::<DbResult<Vec<_>>>()?,
            _ => return Err(corrupt("agent sources", "not a JSON array")),
        };
        Ok(Agent {
            id: AgentId::from_uuid(self.id.0),
            workflow_id: WorkflowId::from_uuid(self.workflow_id.0),
            node_id: self.node_id,
            name: self.name,
            agent_type: self.agent_type,
            disabled: self.disabled,
            sources,
        })
    }
}

/// The SQL of [`unexpired_count`]: a correlated subquery, so counts come with the agents in one
/// statement instead of one query per agent.
type UnexpiredCount = SqlLiteral<
    BigInt,
    UncheckedBind<
        SqlLiteral<BigInt>,
        <DbTime as diesel::expression::AsExpression<UtcTime>>::Expression,
    >,
>;

/// The number of the current agent's messages still alive at `now`, as a column of a query
/// over `agents`. Diesel's DSL has no correlated subqueries, so the text is written out; the
/// instant is still a bound parameter, rendered for each backend by diesel.
fn unexpired_count(now: Timestamp) -> UnexpiredCount {
    diesel::dsl::sql::<BigInt>(
        "(SELECT COUNT(*) FROM messages WHERE messages.agent_id = agents.id \
         AND (messages.expires_at IS NULL OR messages.expires_at > ",
    )
    .bind::<UtcTime, _>(DbTime(now))
    .sql("))")
}

fn agent_view((row, count): (AgentRow, i64)) -> DbResult<AgentView> {
    Ok(AgentView {
        agent: row.into_domain()?,
        messages_count: to_u64(count, "message count")?,
    })
}

/// Maps a write's driver error; a uniqueness violation names the record that exists.
fn write_error(what: &'static str) -> impl Fn(diesel::result::Error) -> DbError {
    move |e| match map_diesel(e) {
        RepoError::Conflict(_) => DbError(RepoError::Conflict(format!("{what} already exists"))),
        other => DbError(other),
    }
}

/// Writes the agent set of a workflow inside the caller's transaction: agents whose id is not
/// in `agents` are deleted with their messages, the others are inserted or updated in place, so
/// an agent passed with a known id keeps its messages. Fails with `Conflict` when an id belongs
/// to another workflow's agent, which an upsert by id would otherwise move. A macro so that it expands against each backend's connection.
macro_rules! replace_agents {
    ($conn:expr, $workflow:expr, $agents:expr) => {{
        let workflow_id = DbUuid(*$workflow.id.as_uuid());
        let rows: Vec<AgentRow> = $agents
            .iter()
            .enumerate()
            .map(|(position, agent)| AgentRow::from_domain(agent, $workflow.id, position))
            .collect();
        let keep: Vec<DbUuid> = rows.iter().map(|r| r.id).collect();
        let foreign: i64 = agents::table
            .filter(agents::id.eq_any(keep.clone()))
            .filter(agents::workflow_id.ne(workflow_id))
            .count()
            .get_result($conn)
            .await?;
        if foreign > 0 {
            return Err(
                RepoError::Conflict("an agent id belongs to another workflow".to_owned()).into(),
            );
        }
        let removed = agents::table
            .filter(agents::workflow_id.eq(workflow_id))
            .filter(agents::id.ne_all(keep.clone()))
            .select(agents::id);
        // Messages go first and explicitly: the foreign key's ON DELETE CASCADE would do it too,
        // but only where the connection enforces foreign keys.
        diesel::delete(messages::table.filter(messages::agent_id.eq_any(removed)))
            .execute($conn)
            .await?;
        diesel::delete(
            agents::table
                .filter(agents::workflow_id.eq(workflow_id))
                .filter(agents::id.ne_all(keep)),
        )
        .execute($conn)
        .await?;
        // One upsert per agent: diesel runs a multi-row upsert on SQLite only for synchronous
        // connections, and most agents of a revision are updates with values of their own anyway.
        for row in &rows {
            use diesel::upsert::excluded;
            diesel::insert_into(agents::table)
                .values(row)
                .on_conflict(agents::id)
                .do_update()
                .set((
                    agents::node_id.eq(excluded(agents::node_id)),
                    agents::position.eq(excluded(agents::position)),
                    agents::name.eq(excluded(agents::name)),
                    agents::agent_type.eq(excluded(agents::agent_type)),
                    agents::disabled.eq(excluded(agents::disabled)),
                    agents::sources.eq(excluded(agents::sources)),
                ))
                .execute($conn)
                .await?;
        }
    }};
}

#[async_trait]
impl WorkflowRepository for Db {
    async fn insert_workflow(&self, workflow: &Workflow, agents: &[Agent]) -> RepoResult<()> {
        let row = WorkflowRow::from_domain(workflow);
        crate::transaction!(self, |conn| {
            diesel::insert_into(workflows::table)
                .values(&row)
                .execute(conn)
                .await
                .map_err(write_error("workflow"))?;
            replace_agents!(conn, workflow, agents);
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn get_workflow(&self, id: WorkflowId) -> RepoResult<Workflow> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<WorkflowRow> = crate::with_conn!(self, |conn| {
            Ok(workflows::table
                .find(id)
                .select(WorkflowRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("workflow"))?.into_domain()?)
    }

    async fn list_workflows(&self) -> RepoResult<Vec<Workflow>> {
        let rows: Vec<WorkflowRow> = crate::with_conn!(self, |conn| {
            Ok(workflows::table
                .order((workflows::created_at.asc(), workflows::id.asc()))
                .select(WorkflowRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(WorkflowRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn delete_workflow(&self, id: WorkflowId) -> RepoResult<()> {
        let id = DbUuid(*id.as_uuid());
        crate::transaction!(self, |conn| {
            // Children first and explicitly, so the result does not depend on foreign-key
            // enforcement; jobs keep their records (they have no foreign key to workflows).
            diesel::delete(triggers::table.filter(triggers::workflow_id.eq(id)))
                .execute(conn)
                .await?;
            let owned = agents::table
                .filter(agents::workflow_id.eq(id))
                .select(agents::id);
            diesel::delete(messages::table.filter(messages::agent_id.eq_any(owned)))
                .execute(conn)
                .await?;
            diesel::delete(agents::table.filter(agents::workflow_id.eq(id)))
                .execute(conn)
                .await?;
            let deleted = diesel::delete(workflows::table.find(id))
                .execute(conn)
                .await?;
            if deleted == 0 {
                return Err(RepoError::NotFound("workflow").into());
            }
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn list_agents(
        &self,
        workflow: Option<WorkflowId>,
        now: Timestamp,
    ) -> RepoResult<Vec<AgentView>> {
        let workflow = workflow.map(|w| DbUuid(*w.as_uuid()));
        let rows: Vec<(AgentRow, i64)> = crate::with_conn!(self, |conn| {
            let mut query = agents::table
                .inner_join(workflows::table)
                .select((AgentRow::as_select(), unexpired_count(now)))
                .order((
                    workflows::created_at.asc(),
                    workflows::id.asc(),
                    agents::position.asc(),
                ))
                .into_boxed();
            if let Some(workflow) = workflow {
                query = query.filter(agents::workflow_id.eq(workflow));
            }
            Ok(query.load(conn).await?)
        })?;
        Ok(rows.into_iter().map(agent_view).collect::<DbResult<_>>()?)
    }

    async fn get_agent(&self, id: AgentId, now: Timestamp) -> RepoResult<AgentView> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<(AgentRow, i64)> = crate::with_conn!(self, |conn| {
            Ok(agents::table
                .find(id)
                .select((AgentRow::as_select(), unexpired_count(now)))
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(agent_view(row.ok_or(RepoError::NotFound("agent"))?)?)
    }
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = messages)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
// `None` is written as NULL rather than DEFAULT, which lets SQLite take a batch in one statement
// (it has no DEFAULT inside multi-row VALUES).
#[diesel(treat_none_as_default_value = false)]
struct MessageRow {
    id: DbUuid,
    agent_id: DbUuid,
    job_id: Option<DbUuid>,
    payload: String,
    created_at: DbTime,
    expires_at: Option<DbTime>,
}

impl MessageRow {
    fn from_domain(message: &Message) -> Self {
        Self {
            id: DbUuid(*message.id.as_uuid()),
            agent_id: DbUuid(*message.agent_id.as_uuid()),
            job_id: message.job_id.map(|j| DbUuid(*j.as_uuid())),
            payload: message.payload.to_string(),
            created_at: DbTime(message.created_at),
            expires_at: message.expires_at.map(DbTime),
        }
    }

    fn into_domain(self) -> DbResult<Message> {
        Ok(Message {
            id: MessageId::from_uuid(self.id.0),
            agent_id: AgentId::from_uuid(self.agent_id.0),
            job_id: self.job_id.map(|j| JobId::from_uuid(j.0)),
            payload: text_to_value(&self.payload, "message payload")?,
            created_at: self.created_at.0,
            expires_at: self.expires_at.map(|t| t.0),
        })
    }
}

#[async_trait]
impl MessageRepository for Db {
    async fn insert_messages(&self, messages: &[Message]) -> RepoResult<()> {
        if messages.is_empty() {
            return Ok(());
        }
        let rows: Vec<MessageRow> = messages.iter().map(MessageRow::from_domain).collect();
        let agent_ids: Vec<DbUuid> = rows
            .iter()
            .map(|r| r.agent_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        crate::transaction!(self, |conn| {
            // Checked up front rather than left to the foreign key, so an unknown agent is
            // reported the same way whether or not the connection enforces foreign keys.
            let known: i64 = agents::table
                .filter(agents::id.eq_any(agent_ids.clone()))
                .count()
                .get_result(conn)
                .await?;
            if usize::try_from(known).ok() != Some(agent_ids.len()) {
                return Err(RepoError::NotFound("agent").into());
            }
            for chunk in rows.chunks(INSERT_CHUNK) {
                crate::repos::batch::InsertMany::insert_many(
                    conn,
                    diesel::insert_into(messages::table).values(chunk.to_vec()),
                )
                .await
                .map_err(write_error("message"))?;
            }
            Ok(())
        })
        .map_err(|e: DbError| match e.0 {
            // An agent deleted between the check and the insert trips the foreign key.
            RepoError::NotFound(_) => RepoError::NotFound("agent"),
            other => other,
        })
    }

    async fn list_messages(
        &self,
        agent: AgentId,
        after: Option<Timestamp>,
        limit: Option<u32>,
        now: Timestamp,
    ) -> RepoResult<Vec<Message>> {
        let agent = DbUuid(*agent.as_uuid());
        let rows: Vec<MessageRow> = crate::with_conn!(self, |conn| {
            let mut query = messages::table
                .filter(messages::agent_id.eq(agent))
                .filter(
                    messages::expires_at
                        .is_null()
                        .or(messages::expires_at.gt(DbTime(now))),
                )
                .order((messages::created_at.desc(), messages::id.desc()))
                .select(MessageRow::as_select())
                .into_boxed();
            if let Some(after) = after {
                query = query.filter(messages::created_at.gt(DbTime(after)));
            }
            if let Some(limit) = limit {
                query = query.limit(i64::from(limit));
            }
            Ok(query.load(conn).await?)
        })?;
        Ok(rows
            .into_iter()
            .map(MessageRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn get_message(&self, id: MessageId, now: Timestamp) -> RepoResult<Message> {
        let id = DbUuid(*id.as_uuid());
        let row: Option<MessageRow> = crate::with_conn!(self, |conn| {
            Ok(messages::table
                .find(id)
                .filter(
                    messages::expires_at
                        .is_null()
                        .or(messages::expires_at.gt(DbTime(now))),
                )
                .select(MessageRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("message"))?.into_domain()?)
    }

    async fn purge_expired_messages(&self, now: Timestamp) -> RepoResult<u64> {
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(
                diesel::delete(messages::table.filter(messages::expires_at.le(DbTime(now))))
                    .execute(conn)
                    .await?,
            )
        })?;
        Ok(deleted as u64)
    }
}
