//! Cron schedules with time zones. croner speaks chrono; the rest of the domain speaks `time`,
//! so conversion happens here and nowhere else.

use std::str::FromStr;

use chrono::{TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::clock::Timestamp;
use crate::error::{ValidationError, Validator};

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
            Some(name) => zone(name)?,
        };
        Ok(Self {
            expression: expression.trim().to_owned(),
            timezone,
            cron,
        })
    }

    /// Checks a time zone name on its own (field `timezone`), so a client whose expression is
    /// also wrong learns both mistakes at once.
    pub fn check_timezone(name: &str) -> Result<(), ValidationError> {
        zone(name).map(|_| ())
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
    /// across daylight-saving changes. A fixed local time that spring-forward skips fires at the
    /// first instant after the gap (02:30 → 03:00); one that fall-back repeats fires once, at
    /// its first occurrence; wildcard and step fields fire in both passes of a repeated hour.
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

    /// Up to `count` successive fire times strictly after `after`, each searched from the one
    /// before; fewer when the expression stops firing.
    pub fn upcoming(&self, after: Timestamp, count: usize) -> Vec<Timestamp> {
        let mut times = Vec::with_capacity(count);
        let mut at = after;
        while times.len() < count {
            match self.next_after(at) {
                Some(next) => {
                    times.push(next);
                    at = next;
                }
                None => break,
            }
        }
        times
    }
}

/// Fire times a preview shows when the client does not say how many.
pub const DEFAULT_PREVIEW: i64 = 5;
/// The most fire times one preview computes, so a request stays cheap.
pub const MAX_PREVIEW: i64 = 50;

/// The next `count` fire times after `now` of `expression` read in `timezone` (UTC when left
/// out), for a client to show before it saves a schedule. Every broken input is reported at
/// once, under the names a schedule's fields have (`cron_expression`, `timezone`, `count`), and
/// an expression that never fires again is refused as creating a schedule refuses it. The list
/// is shorter than `count` only when the expression stops firing (e.g. a fixed date).
pub fn preview(
    expression: Option<&str>,
    timezone: Option<&str>,
    count: Option<i64>,
    now: Timestamp,
) -> Result<Vec<Timestamp>, ValidationError> {
    let mut v = Validator::new();
    let zone_ok = timezone.is_none_or(|tz| v.check(CronSchedule::check_timezone(tz)).is_some());
    let count = count.unwrap_or(DEFAULT_PREVIEW);
    if !(1..=MAX_PREVIEW).contains(&count) {
        v.push(
            "count",
            format!(
                "must be a whole number from 1 to {MAX_PREVIEW} ({DEFAULT_PREVIEW} when left out)"
            ),
        );
    }
    let cron = match expression {
        // With a bad zone the expression is still judged (in UTC), so both mistakes show.
        Some(text) => v.check(CronSchedule::parse(text, timezone.filter(|_| zone_ok))),
        None => {
            v.push(
                "cron_expression",
                "is required: 5 fields (minute hour day month weekday), or 6 with seconds first",
            );
            None
        }
    };
    let times = cron.as_ref().map(|c| {
        c.upcoming(
            now,
            usize::try_from(count.clamp(1, MAX_PREVIEW)).unwrap_or(1),
        )
    });
    if times.as_ref().is_some_and(Vec::is_empty) {
        v.push(
            "cron_expression",
            "never fires after now: choose an expression with a future date",
        );
    }
    v.finish()?;
    Ok(times.unwrap_or_default())
}

/// An IANA time zone by name (`Europe/Paris`, `UTC`).
fn zone(name: &str) -> Result<chrono_tz::Tz, ValidationError> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        ValidationError::field(
            "timezone",
            format!("'{name}' is not an IANA time zone name such as Europe/Paris or UTC"),
        )
    })
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
    fn a_local_time_skipped_by_spring_forward_fires_right_after_the_gap() {
        // Berlin skips 02:00–03:00 local on 2025-03-30: 02:30 does not exist that night, so the
        // run happens at 03:00 CEST (01:00 UTC), once, and the days around keep 02:30.
        let s = CronSchedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let runs = successive(&s, datetime!(2025-03-28 12:00 UTC), 4);
        assert_eq!(
            runs,
            [
                datetime!(2025-03-29 01:30 UTC),
                datetime!(2025-03-30 01:00 UTC),
                datetime!(2025-03-31 00:30 UTC),
                datetime!(2025-04-01 00:30 UTC),
            ]
        );
    }

    #[test]
    fn a_local_time_repeated_by_fall_back_fires_once() {
        // Berlin repeats 02:00–03:00 local on 2025-10-26: 02:30 happens at 00:30 UTC (CEST) and
        // again at 01:30 UTC (CET); a fixed-time schedule fires at the first only.
        let s = CronSchedule::parse("30 2 * * *", Some("Europe/Berlin")).unwrap();
        let runs = successive(&s, datetime!(2025-10-24 12:00 UTC), 4);
        assert_eq!(
            runs,
            [
                datetime!(2025-10-25 00:30 UTC),
                datetime!(2025-10-26 00:30 UTC),
                datetime!(2025-10-27 01:30 UTC),
                datetime!(2025-10-28 01:30 UTC),
            ]
        );
        // A fire a little late (as an engine round is) still skips the repeated 02:30.
        assert_eq!(
            s.next_after(datetime!(2025-10-26 00:30:00.250 UTC)),
            Some(datetime!(2025-10-27 01:30 UTC))
        );
    }

    #[test]
    fn an_interval_schedule_runs_through_both_passes_of_a_repeated_hour() {
        let s = CronSchedule::parse("*/30 2 * * *", Some("Europe/Berlin")).unwrap();
        let runs = successive(&s, datetime!(2025-10-25 23:00 UTC), 5);
        assert_eq!(
            runs,
            [
                datetime!(2025-10-26 00:00 UTC),
                datetime!(2025-10-26 00:30 UTC),
                datetime!(2025-10-26 01:00 UTC),
                datetime!(2025-10-26 01:30 UTC),
                datetime!(2025-10-27 01:00 UTC),
            ]
        );
    }

    #[test]
    fn six_field_steps_count_seconds() {
        let s = CronSchedule::parse("*/5 * * * * *", None).unwrap();
        let runs = successive(&s, datetime!(2025-01-01 23:59:52.5 UTC), 4);
        assert_eq!(
            runs,
            [
                datetime!(2025-01-01 23:59:55 UTC),
                datetime!(2025-01-02 00:00:00 UTC),
                datetime!(2025-01-02 00:00:05 UTC),
                datetime!(2025-01-02 00:00:10 UTC),
            ]
        );
    }

    /// The next `n` fire times after `from`, each searched from the one before.
    fn successive(s: &CronSchedule, from: Timestamp, n: usize) -> Vec<Timestamp> {
        let mut at = from;
        (0..n)
            .map(|_| {
                at = s.next_after(at).unwrap();
                at
            })
            .collect()
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

    #[test]
    fn a_preview_lists_the_next_fire_times_in_the_zone() {
        let times = preview(
            Some("0 9 * * *"),
            Some("Europe/Paris"),
            None,
            datetime!(2025-03-28 12:00 UTC),
        )
        .unwrap();
        // Five by default; 09:00 Paris is 08:00 UTC until the clocks go forward on 2025-03-30.
        assert_eq!(
            times,
            [
                datetime!(2025-03-29 08:00 UTC),
                datetime!(2025-03-30 07:00 UTC),
                datetime!(2025-03-31 07:00 UTC),
                datetime!(2025-04-01 07:00 UTC),
                datetime!(2025-04-02 07:00 UTC),
            ]
        );
        let two = preview(
            Some("*/5 * * * * *"),
            None,
            Some(2),
            datetime!(2025-01-01 00:00 UTC),
        );
        assert_eq!(
            two.unwrap(),
            [
                datetime!(2025-01-01 00:00:05 UTC),
                datetime!(2025-01-01 00:00:10 UTC)
            ]
        );
    }

    #[test]
    fn a_preview_names_every_broken_field() {
        let fields =
            |e: ValidationError| -> Vec<String> { e.errors.into_iter().map(|e| e.field).collect() };
        let now = datetime!(2025-01-01 00:00 UTC);
        assert_eq!(
            fields(preview(Some("61 * * * *"), Some("Mars/Olympus"), Some(0), now).unwrap_err()),
            ["timezone", "count", "cron_expression"]
        );
        assert_eq!(
            fields(preview(None, None, Some(MAX_PREVIEW + 1), now).unwrap_err()),
            ["count", "cron_expression"]
        );
        let never = preview(Some("0 0 30 2 *"), None, None, now).unwrap_err();
        assert!(never.errors[0].message.contains("never fires"), "{never}");
    }
}
