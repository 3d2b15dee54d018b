//! A clock and an id generator whose values a test decides.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::clock::{Clock, IdGenerator, Timestamp, truncate_to_micros};

/// A clock that stands still until the test sets or advances it.
#[derive(Debug)]
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    /// A clock showing `now` (truncated to microseconds, as every stored time is).
    pub fn new(now: Timestamp) -> Self {
        Self(Mutex::new(truncate_to_micros(now)))
    }

    /// Shows `now` from here on.
    pub fn set(&self, now: Timestamp) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = truncate_to_micros(now);
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: time::Duration) {
        let mut now = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ids 1, 2, 3, … as UUIDs, so a test can name the id a use case will create.
#[derive(Debug, Default)]
pub struct SequentialIds(AtomicU64);

impl SequentialIds {
    pub fn new() -> Self {
        Self::default()
    }
}

impl IdGenerator for SequentialIds {
    fn new_uuid(&self) -> uuid::Uuid {
        uuid::Uuid::from_u128(u128::from(self.0.fetch_add(1, Ordering::SeqCst) + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_clock_moves_only_when_told() {
        let t0 = time::macros::datetime!(2025-06-01 12:00:00.123456789 UTC);
        let clock = ManualClock::new(t0);
        assert_eq!(clock.now(), truncate_to_micros(t0));
        clock.advance(time::Duration::seconds(5));
        assert_eq!(
            clock.now(),
            truncate_to_micros(t0) + time::Duration::seconds(5)
        );
        clock.set(t0 - time::Duration::hours(1));
        assert_eq!(
            clock.now(),
            truncate_to_micros(t0) - time::Duration::hours(1)
        );
    }

    #[test]
    fn sequential_ids_count_from_one() {
        let ids = SequentialIds::new();
        assert_eq!(ids.new_uuid(), uuid::Uuid::from_u128(1));
        assert_eq!(ids.new_uuid(), uuid::Uuid::from_u128(2));
    }
}
