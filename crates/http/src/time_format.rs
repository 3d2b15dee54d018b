//! How instants appear in responses: RFC 3339 in UTC (`2025-12-01T10:30:00Z`, with a fraction
//! when there is one), as the seed documents show them.

use baton_domain::Timestamp;
use time::format_description::well_known::Rfc3339;

/// `t` as RFC 3339. Formatting fails only for years outside 0–9999, which the domain's clock
/// never produces; such a value falls back to the unix-seconds form rather than failing a response.
pub fn rfc3339(t: Timestamp) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.unix_timestamp().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn instants_are_utc_with_a_z() {
        assert_eq!(
            rfc3339(datetime!(2025-12-01 11:30:00 +01:00)),
            "2025-12-01T10:30:00Z"
        );
        assert_eq!(
            rfc3339(datetime!(2025-12-01 10:30:00.25 UTC)),
            "2025-12-01T10:30:00.25Z"
        );
    }
}
