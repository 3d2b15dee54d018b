//! Conversions shared by the repositories: JSON text columns, role lists, enum spellings.

use baton_domain::auth::Role;
use serde_json::Value;

use crate::error::{DbError, corrupt};

/// A JSON object column (stored as compact text).
pub(crate) fn object_to_text(map: &serde_json::Map<String, Value>) -> String {
    Value::Object(map.clone()).to_string()
}

pub(crate) fn text_to_object(
    text: &str,
    what: &str,
) -> Result<serde_json::Map<String, Value>, DbError> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(corrupt(what, "not a JSON object")),
        Err(e) => Err(corrupt(what, e)),
    }
}

pub(crate) fn text_to_value(text: &str, what: &str) -> Result<Value, DbError> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// Roles as a comma-separated list of their names.
pub(crate) fn roles_to_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

pub(crate) fn text_to_roles(text: &str) -> Result<Vec<Role>, DbError> {
    let names: Vec<&str> = text.split(',').filter(|s| !s.is_empty()).collect();
    Role::parse_list(&names).map_err(|e| corrupt("roles", e))
}

/// Counts are stored signed; a negative one can only come from corruption.
pub(crate) fn to_u64(value: i64, what: &str) -> Result<u64, DbError> {
    u64::try_from(value).map_err(|_| corrupt(what, "negative"))
}

pub(crate) fn to_u32(value: i32, what: &str) -> Result<u32, DbError> {
    u32::try_from(value).map_err(|_| corrupt(what, "negative"))
}

/// Domain counters are unsigned; the columns are signed. Values past i64::MAX saturate.
pub(crate) fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(crate) fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}
