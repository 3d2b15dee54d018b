//! Robots: registered worker processes that claim jobs and queue items.

use std::fmt;
use std::str::FromStr;

use crate::clock::Timestamp;
use crate::error::ValidationError;
use crate::ids::JobId;

/// A robot's identifier: `[A-Za-z0-9_-]{1,64}`, chosen by whoever registers it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RobotId(String);

impl RobotId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(value: impl Into<String>) -> Result<Self, ValidationError> {
        let value = value.into();
        let well_formed = !value.is_empty()
            && value.len() <= Self::MAX_CHARS
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if well_formed {
            Ok(Self(value))
        } else {
            Err(ValidationError::field(
                "robot_id",
                "must be 1-64 characters of letters, digits, '_' or '-'",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RobotId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a robot is doing, as the fleet metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RobotStatus {
    Idle,
    Busy,
    Offline,
}

impl RobotStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}

impl fmt::Display for RobotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RobotStatus {
    type Err = ValidationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "idle" => Ok(Self::Idle),
            "busy" => Ok(Self::Busy),
            "offline" => Ok(Self::Offline),
            _ => Err(ValidationError::field(
                "status",
                "must be one of idle, busy, offline",
            )),
        }
    }
}

/// A robot's self-reported load, sent with each heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RobotLoad {
    pub cpu_percent: f64,
    pub memory_mb: f64,
    pub memory_percent: f64,
}

impl RobotLoad {
    /// Percentages lie in 0–100 and memory is not negative; NaN is refused.
    pub fn new(
        cpu_percent: f64,
        memory_mb: f64,
        memory_percent: f64,
    ) -> Result<Self, ValidationError> {
        let mut v = crate::error::Validator::new();
        if !(0.0..=100.0).contains(&cpu_percent) {
            v.push("cpu_percent", "must be between 0 and 100");
        }
        if !(memory_mb >= 0.0 && memory_mb.is_finite()) {
            v.push("memory_mb", "must be a non-negative number");
        }
        if !(0.0..=100.0).contains(&memory_percent) {
            v.push("memory_percent", "must be between 0 and 100");
        }
        v.finish()?;
        Ok(Self {
            cpu_percent,
            memory_mb,
            memory_percent,
        })
    }
}

/// A registered worker.
///
/// Its fields are private: it changes only through its transitions, so its status, holder and
/// dates always agree. Stores move it in and out of storage as a [`RobotRecord`].
#[derive(Debug, Clone, PartialEq)]
pub struct Robot {
    robot_id: RobotId,
    hostname: Option<String>,
    status: RobotStatus,
    load: RobotLoad,
    current_job_id: Option<JobId>,
    last_heartbeat: Option<Timestamp>,
    /// The node types this robot can run; empty means it claims any job.
    capabilities: Vec<String>,
    /// SHA-256 of the robot's token, hex; `None` for robots known only from `ROBOT_TOKENS`.
    token_hash: Option<String>,
    created_at: Timestamp,
}

/// A robot's stored state, field by field: what a store writes and reads back.
///
/// A record is plain data and checks nothing; [`Robot::from_record`] trusts it to be what
/// [`Robot::into_record`] gave, which is why only stores and tests should build one.
#[derive(Debug, Clone, PartialEq)]
pub struct RobotRecord {
    pub robot_id: RobotId,
    pub hostname: Option<String>,
    pub status: RobotStatus,
    pub load: RobotLoad,
    pub current_job_id: Option<JobId>,
    pub last_heartbeat: Option<Timestamp>,
    /// The node types this robot can run; empty means it claims any job.
    pub capabilities: Vec<String>,
    /// SHA-256 of the robot's token, hex; `None` for robots known only from `ROBOT_TOKENS`.
    pub token_hash: Option<String>,
    pub created_at: Timestamp,
}

impl Robot {
    /// The robot as a store kept it.
    pub fn from_record(record: RobotRecord) -> Self {
        let RobotRecord {
            robot_id,
            hostname,
            status,
            load,
            current_job_id,
            last_heartbeat,
            capabilities,
            token_hash,
            created_at,
        } = record;
        Self {
            robot_id,
            hostname,
            status,
            load,
            current_job_id,
            last_heartbeat,
            capabilities,
            token_hash,
            created_at,
        }
    }

    /// Its state for a store to write.
    pub fn into_record(self) -> RobotRecord {
        let Self {
            robot_id,
            hostname,
            status,
            load,
            current_job_id,
            last_heartbeat,
            capabilities,
            token_hash,
            created_at,
        } = self;
        RobotRecord {
            robot_id,
            hostname,
            status,
            load,
            current_job_id,
            last_heartbeat,
            capabilities,
            token_hash,
            created_at,
        }
    }

    /// Changes the record behind the robot directly, bypassing its transitions: for tests
    /// that need a state no short path of transitions reaches. Built only for tests and with
    /// the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    pub fn edit(&mut self, change: impl FnOnce(&mut RobotRecord)) {
        let mut record = self.to_record();
        change(&mut record);
        *self = Self::from_record(record);
    }

    /// [`Robot::into_record`] of a copy.
    pub fn to_record(&self) -> RobotRecord {
        self.clone().into_record()
    }

    pub fn robot_id(&self) -> &RobotId {
        &self.robot_id
    }

    pub fn hostname(&self) -> Option<&str> {
        self.hostname.as_deref()
    }

    pub fn status(&self) -> RobotStatus {
        self.status
    }

    pub fn load(&self) -> RobotLoad {
        self.load
    }

    pub fn current_job_id(&self) -> Option<JobId> {
        self.current_job_id
    }

    pub fn last_heartbeat(&self) -> Option<Timestamp> {
        self.last_heartbeat
    }

    /// The node types this robot can run; empty means it claims any job.
    pub fn capabilities(&self) -> &[String] {
        &self.capabilities
    }

    /// SHA-256 of the robot's token, hex; `None` for robots known only from `ROBOT_TOKENS`.
    pub fn token_hash(&self) -> Option<&str> {
        self.token_hash.as_deref()
    }

    pub fn created_at(&self) -> Timestamp {
        self.created_at
    }
}

impl Robot {
    pub const MAX_HOSTNAME: usize = 255;
    /// Without a heartbeat for this long a robot counts as offline.
    pub const DEFAULT_OFFLINE_AFTER_SECONDS: i64 = 90;

    pub fn register(
        robot_id: RobotId,
        hostname: Option<String>,
        token_hash: Option<String>,
        now: Timestamp,
    ) -> Result<Self, ValidationError> {
        let hostname = crate::text::check_optional("hostname", hostname, Self::MAX_HOSTNAME)?;
        Ok(Self {
            robot_id,
            hostname,
            status: RobotStatus::Offline,
            load: RobotLoad::default(),
            current_job_id: None,
            last_heartbeat: None,
            capabilities: Vec::new(),
            token_hash,
            created_at: now,
        })
    }

    /// A heartbeat brings a robot online; it is busy while it holds a job.
    pub fn heartbeat(&mut self, load: RobotLoad, now: Timestamp) {
        self.load = load;
        self.last_heartbeat = Some(now);
        self.status = if self.current_job_id.is_some() {
            RobotStatus::Busy
        } else {
            RobotStatus::Idle
        };
    }

    /// What a heartbeat says of the robot itself: a hostname or a list of capabilities, when
    /// given, replaces the stored one.
    pub fn describe(
        &mut self,
        hostname: Option<String>,
        capabilities: Option<Vec<String>>,
    ) -> Result<(), ValidationError> {
        if let Some(hostname) =
            crate::text::check_optional("hostname", hostname, Self::MAX_HOSTNAME)?
        {
            self.hostname = Some(hostname);
        }
        if let Some(capabilities) = capabilities {
            self.capabilities = capabilities;
        }
        Ok(())
    }

    pub fn take_job(&mut self, job: JobId) {
        self.current_job_id = Some(job);
        self.status = RobotStatus::Busy;
    }

    pub fn release_job(&mut self) {
        self.current_job_id = None;
        if self.status == RobotStatus::Busy {
            self.status = RobotStatus::Idle;
        }
    }

    /// True when the last heartbeat is older than `offline_after` (or there never was one).
    pub fn is_stale(&self, now: Timestamp, offline_after: time::Duration) -> bool {
        self.last_heartbeat
            .is_none_or(|beat| now - beat > offline_after)
    }

    pub fn mark_offline(&mut self) {
        self.status = RobotStatus::Offline;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn robot_ids_follow_the_documented_alphabet() {
        assert!(RobotId::parse("robot-001_A").is_ok());
        assert!(RobotId::parse("a".repeat(64)).is_ok());
        assert!(RobotId::parse("a".repeat(65)).is_err());
        assert!(RobotId::parse("").is_err());
        assert!(RobotId::parse("robot 1").is_err());
        assert!(RobotId::parse("robot/1").is_err());
        assert!(RobotId::parse("röbot").is_err());
    }

    #[test]
    fn heartbeat_brings_a_robot_online_and_busy_while_it_holds_a_job() {
        let now = datetime!(2025-01-01 00:00 UTC);
        let mut robot = Robot::register(RobotId::parse("r1").unwrap(), None, None, now).unwrap();
        assert_eq!(robot.status, RobotStatus::Offline);
        robot.heartbeat(RobotLoad::new(10.0, 100.0, 5.0).unwrap(), now);
        assert_eq!(robot.status, RobotStatus::Idle);
        robot.take_job(JobId::from_uuid(uuid::Uuid::nil()));
        robot.heartbeat(RobotLoad::default(), now);
        assert_eq!(robot.status, RobotStatus::Busy);
        robot.release_job();
        assert_eq!(robot.status, RobotStatus::Idle);
    }

    #[test]
    fn a_robot_is_stale_after_the_offline_window() {
        let now = datetime!(2025-01-01 00:00 UTC);
        let mut robot = Robot::register(RobotId::parse("r1").unwrap(), None, None, now).unwrap();
        let window = time::Duration::seconds(90);
        assert!(robot.is_stale(now, window), "never seen means stale");
        robot.heartbeat(RobotLoad::default(), now);
        assert!(!robot.is_stale(now + time::Duration::seconds(90), window));
        assert!(robot.is_stale(now + time::Duration::seconds(91), window));
    }

    #[test]
    fn load_values_are_range_checked() {
        assert!(RobotLoad::new(50.0, 10.0, 50.0).is_ok());
        let err = RobotLoad::new(101.0, -1.0, f64::NAN).unwrap_err();
        assert_eq!(err.errors.len(), 3);
    }
}
