//! The metrics endpoints' query parameters, parsed into values that cannot be out of range.
//!
//! Adapters hand over each parameter as the text the client sent (`None` when absent); every
//! broken rule of one request is reported at once, each under the parameter's name. An empty
//! filter (`status=`) reads as not given; an empty number (`limit=`) is not a number.

use crate::error::{ValidationError, Validator};
use crate::event::EventType;
use crate::ids::WorkflowId;
use crate::instant::{self, parse_query_instant};
use crate::job::JobStatus;
use crate::ports::{EventFilter, JobFilter};
use crate::robot::{RobotId, RobotStatus};

/// `/metrics/jobs`: at most this many jobs per answer, 50 unless asked.
pub const JOBS_LIMIT: Range = Range {
    min: 1,
    max: 500,
    default: 50,
};

/// `/metrics/activity`: at most this many events per answer, 50 unless asked.
pub const EVENTS_LIMIT: Range = Range {
    min: 1,
    max: 200,
    default: 50,
};

/// `/metrics/analytics`: the window in days, 7 unless asked.
pub const ANALYTICS_DAYS: Range = Range {
    min: 1,
    max: 90,
    default: 7,
};

/// The accepted values of a whole-number parameter, and its value when it is left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub min: u32,
    pub max: u32,
    pub default: u32,
}

impl Range {
    /// The number in `text`, the default when absent. Records a broken rule under `name` and
    /// yields the default when it is not a whole number within the range.
    fn read(self, name: &str, text: Option<&str>, v: &mut Validator) -> u32 {
        let Some(text) = text else {
            return self.default;
        };
        match text.parse::<u32>() {
            Ok(n) if (self.min..=self.max).contains(&n) => n,
            _ => {
                v.push(
                    name,
                    format!(
                        "must be a whole number from {} to {} (default {}), not '{text}'",
                        self.min, self.max, self.default
                    ),
                );
                self.default
            }
        }
    }
}

/// How many days `/metrics/analytics` looks back: 1 to 90.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnalyticsDays(u32);

impl AnalyticsDays {
    /// Errors: `days` when it is not a whole number from 1 to 90.
    pub fn parse(days: Option<&str>) -> Result<Self, ValidationError> {
        let mut v = Validator::new();
        let days = ANALYTICS_DAYS.read("days", days, &mut v);
        v.finish()?;
        Ok(Self(days))
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

impl Default for AnalyticsDays {
    fn default() -> Self {
        Self(ANALYTICS_DAYS.default)
    }
}

/// The `status` filter of `/metrics/robots`: `idle`, `busy` or `offline`.
pub fn robot_status_filter(status: Option<&str>) -> Result<Option<RobotStatus>, ValidationError> {
    given(status).map(str::parse).transpose()
}

/// The query of `/metrics/jobs` as the client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobParams {
    pub limit: Option<String>,
    pub status: Option<String>,
    pub workflow_id: Option<String>,
    pub robot_id: Option<String>,
}

impl JobParams {
    /// Errors: each of `limit`, `status`, `workflow_id`, `robot_id` that is not acceptable.
    pub fn parse(self) -> Result<JobFilter, ValidationError> {
        let mut v = Validator::new();
        let limit = JOBS_LIMIT.read("limit", self.limit.as_deref(), &mut v);
        let status = given(self.status.as_deref()).and_then(|s| v.check(s.parse::<JobStatus>()));
        let workflow_id = given(self.workflow_id.as_deref()).and_then(|s| {
            v.check(s.parse::<WorkflowId>().map_err(|_| {
                ValidationError::field("workflow_id", "must be a workflow id (a UUID)")
            }))
        });
        let robot_id =
            given(self.robot_id.as_deref()).and_then(|s| v.check(RobotId::parse(s.to_owned())));
        v.finish()?;
        Ok(JobFilter {
            status,
            workflow_id,
            robot_id,
            limit,
            ..JobFilter::default()
        })
    }
}

/// The query of `/metrics/activity` as the client sent it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityParams {
    pub limit: Option<String>,
    pub since: Option<String>,
    pub event_type: Option<String>,
}

impl ActivityParams {
    /// Errors: each of `limit`, `since`, `event_type` that is not acceptable.
    pub fn parse(self) -> Result<EventFilter, ValidationError> {
        let mut v = Validator::new();
        let limit = EVENTS_LIMIT.read("limit", self.limit.as_deref(), &mut v);
        let since = given(self.since.as_deref()).and_then(|text| {
            let parsed = parse_query_instant(text);
            if parsed.is_none() {
                v.push("since", instant::refusal());
            }
            parsed
        });
        let event_type = given(self.event_type.as_deref()).and_then(|text| {
            let parsed = EventType::ALL.into_iter().find(|t| t.as_str() == text);
            if parsed.is_none() {
                let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                v.push(
                    "event_type",
                    format!("must be one of {}, not '{text}'", names.join(", ")),
                );
            }
            parsed
        });
        v.finish()?;
        Ok(EventFilter {
            event_type,
            since,
            limit,
        })
    }
}

/// A filter's text, `None` when absent or empty.
fn given(text: Option<&str>) -> Option<&str> {
    text.filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn fields(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn some(text: &str) -> Option<String> {
        Some(text.to_owned())
    }

    #[test]
    fn ranges_accept_their_edges_and_refuse_one_beyond() {
        for (range, name) in [
            (JOBS_LIMIT, "limit"),
            (EVENTS_LIMIT, "limit"),
            (ANALYTICS_DAYS, "days"),
        ] {
            let read = |text: &str| {
                let mut v = Validator::new();
                let n = range.read(name, Some(text), &mut v);
                v.finish().map(|()| n)
            };
            assert_eq!(read(&range.min.to_string()), Ok(range.min));
            assert_eq!(read(&range.max.to_string()), Ok(range.max));
            for bad in [
                (range.min - 1).to_string(),
                (range.max + 1).to_string(),
                "-1".to_owned(),
                "1.5".to_owned(),
                "ten".to_owned(),
                String::new(),
                "99999999999999999999".to_owned(),
            ] {
                let err = read(&bad).unwrap_err();
                assert_eq!(fields(&err), [name], "{bad:?}");
                assert!(err.errors[0].message.contains(&bad), "{bad:?}");
            }
            let mut v = Validator::new();
            assert_eq!(range.read(name, None, &mut v), range.default);
        }
    }

    #[test]
    fn analytics_days_default_to_seven() {
        assert_eq!(AnalyticsDays::parse(None).unwrap().get(), 7);
        assert_eq!(AnalyticsDays::default().get(), 7);
        assert_eq!(AnalyticsDays::parse(Some("90")).unwrap().get(), 90);
        assert_eq!(
            fields(&AnalyticsDays::parse(Some("0")).unwrap_err()),
            ["days"]
        );
    }

    #[test]
    fn robot_status_filters_are_the_three_statuses() {
        assert_eq!(robot_status_filter(None).unwrap(), None);
        assert_eq!(robot_status_filter(Some("")).unwrap(), None);
        assert_eq!(
            robot_status_filter(Some("busy")).unwrap(),
            Some(RobotStatus::Busy)
        );
        let err = robot_status_filter(Some("asleep")).unwrap_err();
        assert_eq!(fields(&err), ["status"]);
    }

    #[test]
    fn job_params_name_every_broken_parameter_at_once() {
        let err = JobParams {
            limit: some("0"),
            status: some("done"),
            workflow_id: some("wf-1"),
            robot_id: some("robot 1"),
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&err), ["limit", "status", "workflow_id", "robot_id"]);
    }

    #[test]
    fn job_params_read_filters_and_defaults() {
        let filter = JobParams::default().parse().unwrap();
        assert_eq!(
            filter,
            JobFilter {
                limit: 50,
                ..JobFilter::default()
            }
        );
        let id = "0195a3a8-7e44-7c4e-9c55-7d0b0c6c1a2b";
        let filter = JobParams {
            limit: some("500"),
            status: some("failed"),
            workflow_id: some(id),
            robot_id: some("robot-1"),
        }
        .parse()
        .unwrap();
        assert_eq!(filter.limit, 500);
        assert_eq!(filter.status, Some(JobStatus::Failed));
        assert_eq!(filter.workflow_id.unwrap().to_string(), id);
        assert_eq!(filter.robot_id.unwrap().as_str(), "robot-1");
        let empty = JobParams {
            status: some(""),
            workflow_id: some(""),
            robot_id: some(""),
            ..JobParams::default()
        };
        assert_eq!(empty.parse().unwrap().status, None);
    }

    #[test]
    fn activity_params_read_filters_and_name_every_broken_one() {
        let filter = ActivityParams {
            limit: some("200"),
            since: some("2025-12-01T10:30:00Z"),
            event_type: some("robot_offline"),
        }
        .parse()
        .unwrap();
        assert_eq!(
            filter,
            EventFilter {
                event_type: Some(EventType::RobotOffline),
                since: Some(datetime!(2025-12-01 10:30 UTC)),
                limit: 200,
            }
        );
        assert_eq!(ActivityParams::default().parse().unwrap().limit, 50);
        let err = ActivityParams {
            limit: some("201"),
            since: some("yesterday"),
            event_type: some("job_exploded"),
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&err), ["limit", "since", "event_type"]);
        assert!(err.errors[2].message.contains("schedule_triggered"));
    }

    /// The forms themselves are `crate::instant`'s to test; this shows `since` reads the query
    /// spellings (a `+` decoded to a space, surrounding blanks).
    #[test]
    fn instants_are_read_in_every_iso_form_clients_send() {
        let expected = datetime!(2025-12-01 10:30:00.25 UTC);
        for text in [
            "2025-12-01T10:30:00.25Z",
            "2025-12-01T11:30:00.25+01:00",
            "2025-12-01T11:30:00.25 01:00",
            "2025-12-01T10:30:00.250000",
            "2025-12-01 10:30:00.25",
            " 2025-12-01T10:30:00.25Z ",
        ] {
            assert_eq!(parse_query_instant(text), Some(expected), "{text}");
        }
        assert_eq!(
            parse_query_instant("2025-12-01"),
            Some(datetime!(2025-12-01 00:00 UTC))
        );
        assert_eq!(
            parse_query_instant("2025-12-01T10:30:00.1234567Z"),
            Some(datetime!(2025-12-01 10:30:00.123456 UTC)),
            "kept to the microsecond, as stored"
        );
        for bad in ["", "now", "2025-13-01T00:00:00Z", "10000-01-01T00:00:00Z"] {
            assert_eq!(parse_query_instant(bad), None, "{bad}");
        }
    }
}
