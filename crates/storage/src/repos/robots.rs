//! `RobotRepository`: registered workers, their heartbeats and their offline marking.

use async_trait::async_trait;
use baton_domain::event::Event;
use baton_domain::ids::JobId;
use baton_domain::ports::RobotRepository;
use baton_domain::robot::{Robot, RobotId, RobotLoad, RobotRecord, RobotStatus};
use baton_domain::{RepoError, RepoResult, Timestamp};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

use super::rows::text_to_value;
use crate::db::Db;
use crate::error::{DbError, DbResult, corrupt};
use crate::schema::robots;
use crate::sql_types::{DbTime, DbUuid};

const OFFLINE: &str = "offline";

#[derive(Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = robots)]
#[diesel(primary_key(robot_id))]
// A `None` must overwrite the stored value when a robot is saved (e.g. a released job).
#[diesel(treat_none_as_null = true)]
#[diesel(check_for_backend(diesel::pg::Pg, diesel::sqlite::Sqlite))]
struct RobotRow {
    robot_id: String,
    hostname: Option<String>,
    status: String,
    cpu_percent: f64,
    memory_mb: f64,
    memory_percent: f64,
    current_job_id: Option<DbUuid>,
    last_heartbeat: Option<DbTime>,
    capabilities: String,
    token_hash: Option<String>,
    created_at: DbTime,
}

impl RobotRow {
    fn from_domain(robot: &Robot) -> Self {
        let capabilities: Vec<serde_json::Value> = robot
            .capabilities()
            .iter()
            .map(|c| serde_json::Value::String(c.clone()))
            .collect();
        Self {
            robot_id: robot.robot_id().as_str().to_owned(),
            hostname: robot.hostname().map(str::to_owned),
            status: robot.status().as_str().to_owned(),
            cpu_percent: robot.load().cpu_percent,
            memory_mb: robot.load().memory_mb,
            memory_percent: robot.load().memory_percent,
            current_job_id: robot.current_job_id().map(|j| DbUuid(*j.as_uuid())),
            last_heartbeat: robot.last_heartbeat().map(DbTime),
            capabilities: serde_json::Value::Array(capabilities).to_string(),
            token_hash: robot.token_hash().map(str::to_owned),
            created_at: DbTime(robot.created_at()),
        }
    }

    fn into_domain(self) -> DbResult<Robot> {
        let capabilities = match text_to_value(&self.capabilities, "robot capabilities")? {
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(corrupt(
                        "robot capability",
                        format!("not a string: {other}"),
                    )),
                })
                .collect::<DbResult<Vec<_>>>()?,
            _ => return Err(corrupt("robot capabilities", "not a JSON array")),
        };
        Ok(Robot::from_record(RobotRecord {
            robot_id: RobotId::parse(self.robot_id).map_err(|e| corrupt("robot id", e))?,
            hostname: self.hostname,
            status: self
                .status
                .parse::<RobotStatus>()
                .map_err(|e| corrupt("robot status", e))?,
            // Stored loads were validated when they arrived; they are taken back as they are,
            // so one odd value cannot make a robot unreadable.
            load: RobotLoad {
                cpu_percent: self.cpu_percent,
                memory_mb: self.memory_mb,
                memory_percent: self.memory_percent,
            },
            current_job_id: self.current_job_id.map(|j| JobId::from_uuid(j.0)),
            last_heartbeat: self.last_heartbeat.map(|t| t.0),
            capabilities,
            token_hash: self.token_hash,
            created_at: self.created_at.0,
        }))
    }
}

#[async_trait]
impl RobotRepository for Db {
    async fn insert_robot(&self, robot: &Robot) -> RepoResult<()> {
        let row = RobotRow::from_domain(robot);
        crate::with_conn!(self, |conn| {
            diesel::insert_into(robots::table)
                .values(&row)
                .execute(conn)
                .await?;
            Ok(())
        })
        .map_err(|e: DbError| match e.0 {
            RepoError::Conflict(_) => {
                RepoError::Conflict(format!("robot '{}' already exists", robot.robot_id()))
            }
            other => other,
        })
    }

    async fn get_robot(&self, id: &RobotId) -> RepoResult<Robot> {
        let id = id.as_str().to_owned();
        let row: Option<RobotRow> = crate::with_conn!(self, |conn| {
            Ok(robots::table
                .find(&id)
                .select(RobotRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("robot"))?.into_domain()?)
    }

    async fn find_robot_by_token_hash(&self, token_hash: &str) -> RepoResult<Robot> {
        let hash = token_hash.to_owned();
        let row: Option<RobotRow> = crate::with_conn!(self, |conn| {
            Ok(robots::table
                .filter(robots::token_hash.eq(&hash))
                .select(RobotRow::as_select())
                .first(conn)
                .await
                .optional()?)
        })?;
        Ok(row.ok_or(RepoError::NotFound("robot"))?.into_domain()?)
    }

    async fn list_robots(&self, status: Option<RobotStatus>) -> RepoResult<Vec<Robot>> {
        let rows: Vec<RobotRow> = crate::with_conn!(self, |conn| {
            let mut query = robots::table
                .order(robots::robot_id.asc())
                .select(RobotRow::as_select())
                .into_boxed();
            if let Some(status) = status {
                query = query.filter(robots::status.eq(status.as_str()));
            }
            Ok(query.load(conn).await?)
        })?;
        Ok(rows
            .into_iter()
            .map(RobotRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn save_robot(&self, robot: &Robot, events: &[Event]) -> RepoResult<()> {
        let row = RobotRow::from_domain(robot);
        crate::transaction!(self, |conn| {
            // One statement, so concurrent heartbeats of one robot never fail on the primary
            // key: the last writer's fields win.
            diesel::insert_into(robots::table)
                .values(&row)
                .on_conflict(robots::robot_id)
                .do_update()
                .set(&row)
                .execute(conn)
                .await?;
            crate::append_event_rows!(conn, events);
            Ok(())
        })
        .map_err(Into::into)
    }

    async fn delete_robot(&self, id: &RobotId) -> RepoResult<()> {
        let id = id.as_str().to_owned();
        let deleted: usize = crate::with_conn!(self, |conn| {
            Ok(diesel::delete(robots::table.find(&id))
                .execute(conn)
                .await?)
        })?;
        if deleted == 0 {
            return Err(RepoError::NotFound("robot"));
        }
        Ok(())
    }

    async fn stale_robots(&self, before: Timestamp) -> RepoResult<Vec<Robot>> {
        let rows: Vec<RobotRow> = crate::with_conn!(self, |conn| {
            Ok(robots::table
                .filter(robots::status.ne(OFFLINE))
                .filter(
                    robots::last_heartbeat
                        .is_null()
                        .or(robots::last_heartbeat.lt(DbTime(before))),
                )
                .order(robots::robot_id.asc())
                .select(RobotRow::as_select())
                .load(conn)
                .await?)
        })?;
        Ok(rows
            .into_iter()
            .map(RobotRow::into_domain)
            .collect::<DbResult<_>>()?)
    }

    async fn mark_robot_offline(
        &self,
        id: &RobotId,
        seen_heartbeat: Option<Timestamp>,
        events: &[Event],
    ) -> RepoResult<bool> {
        let id = id.as_str().to_owned();
        crate::transaction!(self, |conn| {
            // The heartbeat condition is the compare-and-set: a heartbeat that arrived since the
            // caller looked moves `last_heartbeat`, and the robot stays online. A robot already
            // offline is not marked again, so concurrent sweepers record one event between them.
            let target = robots::table.find(&id).filter(robots::status.ne(OFFLINE));
            let marked = match seen_heartbeat {
                Some(seen) => {
                    diesel::update(target.filter(robots::last_heartbeat.eq(DbTime(seen))))
                        .set(robots::status.eq(OFFLINE))
                        .execute(conn)
                        .await?
                }
                None => {
                    diesel::update(target.filter(robots::last_heartbeat.is_null()))
                        .set(robots::status.eq(OFFLINE))
                        .execute(conn)
                        .await?
                }
            };
            if marked == 0 {
                return Ok(false);
            }
            crate::append_event_rows!(conn, events);
            Ok(true)
        })
        .map_err(Into::into)
    }
}
