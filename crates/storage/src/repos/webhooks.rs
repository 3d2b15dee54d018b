//! `WebhookRepository`: the secret URLs of webhook workflows, kept as the SHA-256 of their token.

use async_trait::async_trait;
use baton_domain::ids::WorkflowId;
use baton_domain::job::Priority;
use baton_domain::ports::WebhookRepository;
use baton_domain::webhook::Webhook;
use baton_domain::workflow::ExecutionMode;
use baton_domain::{RepoError, RepoResult};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use crate::db::Db;
use crate::error::{DbError, DbResult, corrupt};
use crate::schema::{webhooks, workflows};
use crate::sql_types::{DbTime, DbUuid};

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = webhooks)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct WebhookRow {
    token_hash: String,
    workflow_id: DbUuid,
    priority: i32,
    execution_mode: String,
    created_at: DbTime,
}

impl WebhookRow {
    fn from_domain(webhook: &Webhook) -> Self {
        Self {
            token_hash: webhook.token_hash.clone(),
            workflow_id: DbUuid(*webhook.workflow_id.as_uuid()),
            priority: i32::from(webhook.priority.value()),
            execution_mode: webhook.execution_mode.as_str().to_owned(),
            created_at: DbTime(webhook.created_at),
        }
    }

    fn into_domain(self) -> DbResult<Webhook> {
        Ok(Webhook {
            token_hash: self.token_hash,
            workflow_id: WorkflowId::from_uuid(self.workflow_id.0),
            priority: Priority::new(i64::from(self.priority))
                .map_err(|e| corrupt("webhook priority", e))?,
            execution_mode: ExecutionMode::parse(&self.execution_mode)
                .map_err(|e| corrupt("webhook execution mode", e))?,
            created_at: self.created_at.0,
        })
    }
}

#[async_trait]
impl WebhookRepository for Db {
    async fn insert_webhook(&self, webhook: &Webhook) -> RepoResult<()> {
        let row = WebhookRow::from_domain(webhook);
        crate::transaction!(self, |conn| {
            // Checked up front rather than left to the foreign key, so a missing workflow is
            // reported the same way whether or not the connection enforces foreign keys.
            let workflows: i64 = workflows::table
                .find(row.workflow_id)
                .count()
                .get_result(conn)
                .await?;
            if workflows == 0 {
                return Err(RepoError::NotFound("workflow").into());
            }
            diesel::insert_into(webhooks::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(|e: DbError| match e.0 {
            RepoError::Conflict(_) => RepoError::Conflict("the webhook already exists".to_owned()),
            // A workflow deleted between the check and the insert trips the foreign key.
            RepoError::NotFound(_) => RepoError::NotFound("workflow"),
            other => other,
        })
    }

    async fn find_webhook_by_token_hash(&self, token_hash: &str) -> RepoResult<Webhook> {
        let hash = token_hash.to_owned();
        let row: Option<WebhookRow> = crate::with_conn!(self, |conn| {
            Ok(webhooks::table
                .find(&hash)
                .select(WebhookRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("webhook"))?.into_domain()?)
    }

    async fn delete_webhooks_of(&self, workflow: WorkflowId) -> RepoResult<u64> {
        let workflow = DbUuid(*workflow.as_uuid());
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(
                diesel::delete(webhooks::table.filter(webhooks::workflow_id.eq(workflow)))
                    .execute(conn)
                    .await?,
            )
        })?;
        Ok(deleted as u64)
    }
}
