//! Cron schedules with time zones. croner speaks chrono; the rest of the domain speaks `time`,
//! so conversion happens here and nowhere else.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::clock::Timestamp;
use crate::error::ValidationError;

/// A parsed cron expression (5 fields, or 6 with seconds first) in an IANA time zone.
#[derive(Debug, Clone)]
pub struct CronSchedule {
    expression: String,
    timezone: chrono_tz::Tz,
    cron: Cron,
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.expression == other.expression && self.timezone == other.timezone
    }
}

impl CronSchedule {
    pub const MAX_EXPRESSION: usize = 255;

    /// Parses `expression` in `timezone` (IANA name, e.g. `Europe/Paris`; `None` means UTC).
    pub fn parse(expression: &str, timezone: Option<&str>) -> Result<Self, ValidationError> {
        crate::text::check_length("cron_expression", expression, 1, Self::MAX_EXPRESSION)?;
        let fields = expression.split_whitespace().count();
        if !expression.trim_start().starts_with('@') && !(5..=6).contains(&fields) {
            return Err(ValidationError::field(
                "cron_expression",
                format!(
                    "must have 5 fields (minute hour day month weekday) or 6 with seconds first; got {fields}"
                ),
            ));
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build()
            .parse(expression)
            .map_err(|e| {
                ValidationError::field(
                    "cron_expression",
                    format!("is not a valid cron expression: {e}"),
                )
            })?;
        let timezone = match timezone {
            None => chrono_tz::UTC,
            Some(name) => chrono_tz::Tz::from_str(name).map_err(|_| {
                ValidationError::field(
                    "timezone",
                    format!("'{name}' is not an IANA time zone name"),
                )
            })?,
        };
        Ok(Self {
            expression: expression.trim().to_owned(),
            timezone,
            cron,
        })
    }

    pub fn expression(&self) -> &str {
        &self.expression
    }

    pub fn timezone(&self) -> &str {
        self.timezone.name()
    }

    /// The first fire time strictly after `after`, or `None` if the expression never fires again.
    ///
    /// Computed in the schedule's zone, so `0 9 * * *` in Europe/Paris stays at 09:00 local time
    /// across daylight-saving changes; a local time skipped by a change does not fire that day.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let utc = Utc.timestamp_nanos(i64::try_from(after.unix_timestamp_nanos()).ok()?);
        let local = utc.with_timezone(&self.timezone);
        let next = self.cron.find_next_occurrence(&local, false).ok()?;
        let nanos = next.with_timezone(&Utc).timestamp_nanos_opt()?;
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos)).ok()
    }

    /// After a pause or downtime: the next fire time strictly after `now`. Missed windows are not
    /// replayed one by one; the caller fires once for them and then continues from here.
    pub fn next_after_missed(&self, now: Timestamp) -> Option<Timestamp> {
        self.next_after(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn five_field_expressions_fire_on_the_minute() {
        let s = CronSchedule::parse("0 9 * * 1-5", None).unwrap();
        // 2025-12-01 is a Monday.
        assert_eq!(
            s.next_after(datetime!(2025-12-01 10:30 UTC)),
            Some(datetime!(2025-12-02 09:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2025-12-05 09:00 UTC)),
            Some(datetime!(2025-12-08 09:00 UTC))
        );
    }

    #[test]
    fn six_field_expressions_have_seconds_first() {
        let s = CronSchedule::parse("*/10 * * * * *", None).unwrap();
        assert_eq!(
            s.next_after(datetime!(2025-01-01 00:00:05 UTC)),
            Some(datetime!(2025-01-01 00:00:10 UTC))
        );
        let every = CronSchedule::parse("* * * * * *", None).unwrap();
        assert_eq!(
            every.next_after(datetime!(2025-01-01 00:00:05.5 UTC)),
            Some(datetime!(2025-01-01 00:00:06 UTC))
        );
    }

    #[test]
    fn next_is_strictly_after() {
        let s = CronSchedule::parse("0 * * * *", None).unwrap();
        assert_eq!(
            s.next_after(datetime!(2025-01-01 01:00 UTC)),
            Some(datetime!(2025-01-01 02:00 UTC))
        );
    }

    #[test]
    fn time_zones_keep_local_time_across_daylight_saving() {
        let s = CronSchedule::parse("0 9 * * *", Some("Europe/Paris")).unwrap();
        // Winter: UTC+1. Clocks go forward on 2025-03-30; summer: UTC+2.
        assert_eq!(
            s.next_after(datetime!(2025-03-29 00:00 UTC)),
            Some(datetime!(2025-03-29 08:00 UTC))
        );
        assert_eq!(
            s.next_after(datetime!(2025-03-29 09:00 UTC)),
            Some(datetime!(2025-03-30 07:00 UTC))
        );
    }

    #[test]
    fn a_local_time_skipped_by_daylight_saving_does_not_fire_twice() {
        // 02:30 does not exist in Paris on 2025-03-30.
        let s = CronSchedule::parse("30 2 * * *", Some("Europe/Paris")).unwrap();
        let next = s.next_after(datetime!(2025-03-29 02:00 UTC)).unwrap();
        assert!(next > datetime!(2025-03-29 02:00 UTC));
        let after = s.next_after(next).unwrap();
        assert!(
            after - next >= time::Duration::hours(23),
            "{next} then {after}"
        );
    }

    #[test]
    fn refuses_bad_expressions_and_zones() {
        assert_eq!(
            CronSchedule::parse("* * *", None).unwrap_err().errors[0].field,
            "cron_expression"
        );
        assert!(
            CronSchedule::parse("0 0 0 * * * 2025", None).is_err(),
            "years are not accepted"
        );
        assert!(CronSchedule::parse("61 * * * *", None).is_err());
        assert!(CronSchedule::parse("", None).is_err());
        assert_eq!(
            CronSchedule::parse("* * * * *", Some("Mars/Olympus"))
                .unwrap_err()
                .errors[0]
                .field,
            "timezone"
        );
    }

    #[test]
    fn a_missed_window_fires_once_then_continues_from_now() {
        let s = CronSchedule::parse("* * * * *", None).unwrap();
        let now = datetime!(2025-01-01 05:00:30 UTC);
        // Whatever was missed before `now`, the following fire is the next tick after now.
        assert_eq!(
            s.next_after_missed(now),
            Some(datetime!(2025-01-01 05:01 UTC))
        );
    }
}
