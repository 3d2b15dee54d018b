//! Builders for valid domain values, so each test states only what it is about.

#![allow(dead_code)]

use baton_domain::Timestamp;
use time::macros::datetime;

/// A fixed instant tests measure from.
pub const T0: Timestamp = datetime!(2025-06-01 12:00:00 UTC);

/// `T0` plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    T0 + time::Duration::seconds(seconds)
}

pub fn uuid(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(n)
}
