//! Reading the instants clients send, in request bodies and in query strings. Every route reads
//! them here, so a time one route takes is taken by every other, and every refusal says the
//! same thing ([`EXPECTED`]).
//!
//! Accepted, in UTC or converted to it:
//! - RFC 3339 with any offset: `2025-04-26T12:00:00Z`, `2025-04-26T14:00:00.5+02:00`;
//! - the other ISO 8601 offsets: `+0200`, `+02`, and a one-digit offset hour as in the
//!   ActiveWorkflow document's own example (`2019-10-20T01:10:10.256-8:00`);
//! - a date-time without an offset, read as UTC: `2025-04-26T12:00:00`, and with a space for the
//!   `T` as Python's `str(datetime)` prints it: `2025-04-26 12:00:00.123456`;
//! - a bare date, read as midnight UTC: `2025-04-26`.
//!
//! Fractions beyond the microsecond are dropped, as storage keeps microseconds, and instants
//! outside the years 1–9999 in UTC are refused, since storage and RFC 3339 cannot hold them.

use time::format_description::well_known::{Iso8601, Rfc3339};
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::clock::{Timestamp, truncate_to_micros};

/// What an instant must be, for the message refusing one: `"<field>: must be {EXPECTED}"`.
pub const EXPECTED: &str = "an ISO 8601 date-time such as 2025-04-26T12:00:00Z or \
                            2025-04-26T14:00:00+02:00 (without an offset, as in \
                            2025-04-26 12:00:00 or 2025-04-26, it is read as UTC), between the \
                            years 1 and 9999";

/// The message refusing a field that holds text but no instant.
pub fn refusal() -> String {
    format!("must be {EXPECTED}")
}

/// An instant from a JSON string, in any of the forms the module lists; `None` when the text
/// is none of them.
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    let mut text = text.to_owned();
    if text.get(10..11) == Some(" ") {
        text.replace_range(10..11, "T");
    }
    let parsed = parse_with_offset(&text)
        .or_else(|| parse_with_offset(&pad_offset_hour(&text)))
        .or_else(|| {
            PrimitiveDateTime::parse(&text, &Iso8601::PARSING)
                .ok()
                .map(PrimitiveDateTime::assume_utc)
        })
        .or_else(|| {
            Date::parse(&text, &Iso8601::PARSING)
                .ok()
                .map(|d| d.midnight().assume_utc())
        })?
        // `checked_`: an offset may carry the last day of year 9999 past it, where `to_offset`
        // would panic.
        .checked_to_offset(UtcOffset::UTC)?;
    (1..=9999)
        .contains(&parsed.year())
        .then(|| truncate_to_micros(parsed))
}

/// As [`parse_instant`], for the value of a query-string parameter: surrounding blanks are
/// ignored, and a `+` of an offset that reached the server as a space (an unencoded `+` in a
/// query string decodes to a space) is read as the `+` it was meant to be.
pub fn parse_query_instant(text: &str) -> Option<Timestamp> {
    let mut text = text.trim().to_owned();
    if text.get(10..11) == Some(" ") {
        text.replace_range(10..11, "T");
    }
    parse_instant(&text.replace(' ', "+"))
}

fn parse_with_offset(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::PARSING))
        .ok()
}

/// `…-8:00` → `…-08:00`: pads a one-digit offset hour at the end of `text`.
fn pad_offset_hour(text: &str) -> String {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let one_digit_hour = n >= 6
        && matches!(bytes[n - 5], b'+' | b'-')
        && bytes[n - 4].is_ascii_digit()
        && bytes[n - 3] == b':'
        && bytes[n - 2].is_ascii_digit()
        && bytes[n - 1].is_ascii_digit()
        && bytes[n - 6].is_ascii_digit();
    if !one_digit_hour {
        return text.to_owned();
    }
    // Byte `n - 4` is an ASCII digit, so the split falls on a character boundary.
    let (head, tail) = text.split_at(n - 4);
    format!("{head}0{tail}")
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn rfc3339_with_any_offset_is_converted_to_utc() {
        for (text, expected) in [
            ("2025-04-26T12:00:00Z", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26t12:00:00z", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26T14:00:00+02:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26T07:30:00-04:30", datetime!(2025-04-26 12:00 UTC)),
            (
                "2025-04-26T12:00:00.25Z",
                datetime!(2025-04-26 12:00:00.25 UTC),
            ),
        ] {
            assert_eq!(parse_instant(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn other_iso_offsets_are_read_too() {
        for (text, expected) in [
            (
                "2025-04-26T14:00:00.5+0200",
                datetime!(2025-04-26 12:00:00.5 UTC),
            ),
            ("2025-04-26T14:00:00+02", datetime!(2025-04-26 12:00 UTC)),
            (
                "2019-10-20T01:10:10.256-8:00",
                datetime!(2019-10-20 09:10:10.256 UTC),
            ),
            ("2025-04-26 14:00:00+02:00", datetime!(2025-04-26 12:00 UTC)),
        ] {
            assert_eq!(parse_instant(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn date_times_without_an_offset_are_utc() {
        for (text, expected) in [
            ("2025-04-26T12:00:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26 12:00:00", datetime!(2025-04-26 12:00 UTC)),
            (
                "2025-04-26 12:00:00.123456",
                datetime!(2025-04-26 12:00:00.123456 UTC),
            ),
            ("2025-04-26T12:00", datetime!(2025-04-26 12:00 UTC)),
        ] {
            assert_eq!(parse_instant(text), Some(expected), "{text}");
        }
    }

    #[test]
    fn a_bare_date_is_midnight_utc() {
        assert_eq!(
            parse_instant("2025-04-26"),
            Some(datetime!(2025-04-26 0:00 UTC))
        );
    }

    #[test]
    fn fractions_are_kept_to_the_microsecond() {
        assert_eq!(
            parse_instant("2025-04-26T12:00:00.1234567Z"),
            Some(datetime!(2025-04-26 12:00:00.123456 UTC))
        );
    }

    #[test]
    fn text_that_is_no_instant_is_refused() {
        for text in [
            "",
            "yesterday",
            "2025-13-01T00:00:00",
            "2025-04-26T25:00:00",
            "2025-02-30",
            "26/04/2025",
            " 2025-04-26T12:00:00Z",
            "2025-04-26T12:00:00 02:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:00:00-05:00",
        ] {
            assert_eq!(parse_instant(text), None, "{text:?}");
        }
    }

    #[test]
    fn query_values_forgive_blanks_and_a_plus_decoded_to_a_space() {
        for (text, expected) in [
            (" 2025-04-26T12:00:00Z ", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26T14:00:00 02:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26 14:00:00 02:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26 12:00:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26", datetime!(2025-04-26 0:00 UTC)),
        ] {
            assert_eq!(parse_query_instant(text), Some(expected), "{text:?}");
        }
        assert_eq!(parse_query_instant("soon"), None);
    }
}
