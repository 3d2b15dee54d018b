//! [`RobotRepository`] in memory.

use async_trait::async_trait;

use super::{InMemoryStore, State};
use crate::clock::Timestamp;
use crate::error::{RepoError, RepoResult};
use crate::event::Event;
use crate::ports::RobotRepository;
use crate::robot::{Robot, RobotId, RobotStatus};

impl State {
    /// Two robots never share a token hash, as the databases' unique index has it.
    fn check_token_hash(&self, robot: &Robot) -> RepoResult<()> {
        let Some(hash) = &robot.token_hash() else {
            return Ok(());
        };
        let shared = self.robots.values().any(|other| {
            other.robot_id() != robot.robot_id() && other.token_hash().as_ref() == Some(hash)
        });
        if shared {
            return Err(RepoError::Conflict(
                "another robot has this token".to_owned(),
            ));
        }
        Ok(())
    }
}

#[async_trait]
impl RobotRepository for InMemoryStore {
    async fn insert_robot(&self, robot: &Robot) -> RepoResult<()> {
        let mut state = self.state();
        if state.robots.contains_key(robot.robot_id()) {
            return Err(RepoError::Conflict(format!(
                "robot '{}' already exists",
                robot.robot_id()
            )));
        }
        state.check_token_hash(robot)?;
        state.robots.insert(robot.robot_id().clone(), robot.clone());
        Ok(())
    }

    async fn get_robot(&self, id: &RobotId) -> RepoResult<Robot> {
        self.state()
            .robots
            .get(id)
            .cloned()
            .ok_or(RepoError::NotFound("robot"))
    }

    async fn find_robot_by_token_hash(&self, token_hash: &str) -> RepoResult<Robot> {
        self.state()
            .robots
            .values()
            .find(|r| r.token_hash() == Some(token_hash))
            .cloned()
            .ok_or(RepoError::NotFound("robot"))
    }

    async fn list_robots(&self, status: Option<RobotStatus>) -> RepoResult<Vec<Robot>> {
        Ok(self
            .state()
            .robots
            .values()
            .filter(|r| status.is_none_or(|s| r.status() == s))
            .cloned()
            .collect())
    }

    async fn save_robot(&self, robot: &Robot, events: &[Event]) -> RepoResult<()> {
        let mut state = self.state();
        state.check_token_hash(robot)?;
        state.check_events(events)?;
        // Every field is replaced, the creation date too: the last writer wins.
        state.robots.insert(robot.robot_id().clone(), robot.clone());
        state.append_events(events);
        Ok(())
    }

    async fn delete_robot(&self, id: &RobotId) -> RepoResult<()> {
        self.state()
            .robots
            .remove(id)
            .map(drop)
            .ok_or(RepoError::NotFound("robot"))
    }

    async fn stale_robots(&self, before: Timestamp) -> RepoResult<Vec<Robot>> {
        Ok(self
            .state()
            .robots
            .values()
            .filter(|r| r.status() != RobotStatus::Offline)
            .filter(|r| r.last_heartbeat().is_none_or(|seen| seen < before))
            .cloned()
            .collect())
    }

    async fn mark_robot_offline(
        &self,
        id: &RobotId,
        seen_heartbeat: Option<Timestamp>,
        events: &[Event],
    ) -> RepoResult<bool> {
        let mut state = self.state();
        let marks = state.robots.get(id).is_some_and(|r| {
            r.status() != RobotStatus::Offline && r.last_heartbeat() == seen_heartbeat
        });
        if !marks {
            return Ok(false);
        }
        state.check_events(events)?;
        if let Some(robot) = state.robots.get_mut(id) {
            robot.edit(|r| r.status = RobotStatus::Offline);
        }
        state.append_events(events);
        Ok(true)
    }
}
