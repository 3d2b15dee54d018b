//! Time as a port, so rules that depend on "now" are testable.

use time::OffsetDateTime;

/// A point in time, always normalised to UTC by the domain.
pub type Timestamp = OffsetDateTime;

/// Where the domain learns the current time.
pub trait Clock: Send + Sync {
    /// The current instant in UTC.
    fn now(&self) -> Timestamp;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        truncate_to_micros(OffsetDateTime::now_utc())
    }
}

/// Both databases keep microseconds; truncating up front makes a value read back equal the one written.
pub fn truncate_to_micros(t: Timestamp) -> Timestamp {
    let t = t.to_offset(time::UtcOffset::UTC);
    let micros = t.microsecond();
    t.replace_microsecond(micros).unwrap_or(t)
}

/// Whole seconds, what JWT's `iat` and `exp` hold; a token's claims then decode to what was encoded.
pub fn truncate_to_seconds(t: Timestamp) -> Timestamp {
    let t = t.to_offset(time::UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Where the domain gets fresh identifiers.
pub trait IdGenerator: Send + Sync {
    fn new_uuid(&self) -> uuid::Uuid;
}

/// Time-ordered UUIDv7: new rows land at the end of primary-key indexes.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7Generator;

impl IdGenerator for UuidV7Generator {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::now_v7()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_drops_nanoseconds_and_normalises_to_utc() {
        let t = time::macros::datetime!(2025-01-02 03:04:05.123456789 +02:00);
        let truncated = truncate_to_micros(t);
        assert_eq!(truncated.offset(), time::UtcOffset::UTC);
        assert_eq!(truncated.nanosecond(), 123_456_000);
        assert_eq!(
            truncated,
            time::macros::datetime!(2025-01-02 01:04:05.123456 UTC)
        );
    }

    #[test]
    fn second_truncation_drops_the_fraction() {
        let t = time::macros::datetime!(2025-01-02 03:04:05.999 +01:00);
        assert_eq!(
            truncate_to_seconds(t),
            time::macros::datetime!(2025-01-02 02:04:05 UTC)
        );
    }

    #[test]
    fn v7_ids_are_time_ordered() {
        let ids = UuidV7Generator;
        let a = ids.new_uuid();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ids.new_uuid();
        assert!(a < b);
    }
}
