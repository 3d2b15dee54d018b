//! The comparison at the heart of the suite: does an actual response conform to a seed's example?
//!
//! Conforming means: every field the example shows is present, with the same JSON type, at every
//! depth. Fields the example does not show are extras: allowed (ActiveWorkflow tells clients to
//! expect them; Baton answers with the union of the documents' fields), and listed so they can be
//! reviewed. The rules, field by field:
//!
//! - an object: each of the example's keys is present in the actual object and conforms;
//! - an array: each element of the actual array conforms to the example's element at the same
//!   index, or to its first element past the example's end; an empty actual array where the
//!   example shows elements is a mismatch (nothing could be compared, so the scenario is wrong);
//! - an integer: the actual value is an integer (`expires_in: 3600` must not become `3600.0`);
//! - a fraction: any number (`45.5` may well be `45` or `45.0` on another day);
//! - a string: a string; when the example's string is a date and time (`2025-12-01T10:30:00Z`),
//!   the actual one must be RFC 3339;
//! - `null`: the example says the field may be null and shows nothing of its type, so only its
//!   presence is checked.
//!
//! Values are compared only where a case pins them (see [`Case::pin`]): where the value follows
//! from the request, e.g. an echoed name, `success: true`, a message with an id in it.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// What a comparison found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every difference, each starting with the JSON path it concerns (`$.details[0].status`).
    pub mismatches: Vec<String>,
    /// The paths of fields the actual value has and the example does not show.
    pub extras: Vec<String>,
}

/// Compares `actual` with the seed's `expected` example by the rules of this module.
pub fn compare(expected: &Value, actual: &Value) -> Report {
    let mut report = Report::default();
    walk("$", expected, actual, &mut report);
    report
}

/// Panics, listing every mismatch with its JSON path, unless `actual` conforms to `expected`.
pub fn assert_conforms(expected: &Value, actual: &Value) {
    let report = compare(expected, actual);
    assert!(
        report.mismatches.is_empty(),
        "the response does not conform to the seed's example:\n  {}\nexample: {expected}\nactual:  {actual}",
        report.mismatches.join("\n  ")
    );
}

fn walk(path: &str, expected: &Value, actual: &Value, report: &mut Report) {
    match expected {
        Value::Null => {}
        Value::Bool(_) => {
            if !actual.is_boolean() {
                report.wrong_type(path, "a boolean", expected, actual);
            }
        }
        Value::Number(number) => {
            let integer = number.is_i64() || number.is_u64();
            if integer && !(actual.is_i64() || actual.is_u64()) {
                report.wrong_type(path, "an integer", expected, actual);
            } else if !actual.is_number() {
                report.wrong_type(path, "a number", expected, actual);
            }
        }
        Value::String(text) => match actual.as_str() {
            None => report.wrong_type(path, "a string", expected, actual),
            Some(actual_text) => {
                if looks_like_date_time(text)
                    && OffsetDateTime::parse(actual_text, &Rfc3339).is_err()
                {
                    report.mismatches.push(format!(
                        "{path}: expected an RFC 3339 date and time (example: {expected}), got {actual}"
                    ));
                }
            }
        },
        Value::Array(items) => match actual.as_array() {
            None => report.wrong_type(path, "an array", expected, actual),
            Some(actual_items) => {
                if !items.is_empty() && actual_items.is_empty() {
                    report.mismatches.push(format!(
                        "{path}: expected elements like the example's {} (example: {expected}), \
                         got an empty array",
                        items.len()
                    ));
                }
                if let Some(first) = items.first() {
                    for (i, item) in actual_items.iter().enumerate() {
                        let model = items.get(i).unwrap_or(first);
                        walk(&format!("{path}[{i}]"), model, item, report);
                    }
                }
            }
        },
        Value::Object(fields) => match actual.as_object() {
            None => report.wrong_type(path, "an object", expected, actual),
            Some(actual_fields) => {
                for (key, model) in fields {
                    let field_path = format!("{path}.{key}");
                    match actual_fields.get(key) {
                        None => report
                            .mismatches
                            .push(format!("{field_path}: missing (example: {model})")),
                        Some(value) => walk(&field_path, model, value, report),
                    }
                }
                for key in actual_fields.keys() {
                    if !fields.contains_key(key) {
                        report.extras.push(format!("{path}.{key}"));
                    }
                }
            }
        },
    }
}

impl Report {
    fn wrong_type(&mut self, path: &str, wanted: &str, expected: &Value, actual: &Value) {
        self.mismatches.push(format!(
            "{path}: expected {wanted} (example: {expected}), got {} {actual}",
            kind(actual)
        ));
    }
}

/// The JSON kind of `value`, as the messages name it.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a fraction",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `2025-12-01T10:30:00Z`, `2019-10-20T02:01:14.122-8:00`: a date, a `T`, and a time.
fn looks_like_date_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        bytes
            .get(range)
            .is_some_and(|b| b.iter().all(u8::is_ascii_digit))
    };
    digits(0..4)
        && bytes.get(4) == Some(&b'-')
        && digits(5..7)
        && bytes.get(7) == Some(&b'-')
        && digits(8..10)
        && bytes.get(10) == Some(&b'T')
        && digits(11..13)
        && bytes.get(13) == Some(&b':')
}

// ---- a case: the status, the example and the pinned values ----

/// One replayed example: the status the seed documents, the example the body must conform to,
/// and the values the request determines.
pub struct Case {
    what: String,
    status: u16,
    example: Value,
    pins: Vec<(String, Value)>,
}

impl Case {
    /// `what` names the case in failure messages, e.g. `POST /api/v1/auth/login`.
    pub fn new(what: impl Into<String>, status: u16, example: Value) -> Self {
        Self {
            what: what.into(),
            status,
            example,
            pins: Vec::new(),
        }
    }

    /// Pins the value at the JSON pointer `pointer` to the example's own value there (after any
    /// substitution the test made, e.g. of a real id for the seed's placeholder).
    pub fn pin(mut self, pointer: &str) -> Self {
        let value = self
            .example
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{}: the example has no {pointer}", self.what))
            .clone();
        self.pins.push((pointer.to_owned(), value));
        self
    }

    /// Pins several pointers to the example's values.
    pub fn pins(self, pointers: &[&str]) -> Self {
        pointers.iter().fold(self, |case, p| case.pin(p))
    }

    /// Pins the value at `pointer` to `value`, for a value the example does not show as it
    /// should be here.
    pub fn pin_to(mut self, pointer: &str, value: Value) -> Self {
        self.pins.push((pointer.to_owned(), value));
        self
    }

    /// Checks the status, the conformance and the pins, and panics listing every difference.
    /// Returns the actual body for the test to go on with.
    pub fn check(&self, status: u16, actual: &Value) -> Value {
        let mut problems = Vec::new();
        if status != self.status {
            problems.push(format!(
                "status: the seed documents {}, got {status}",
                self.status
            ));
        }
        let report = compare(&self.example, actual);
        problems.extend(report.mismatches);
        for (pointer, wanted) in &self.pins {
            match actual.pointer(pointer) {
                Some(got) if got == wanted => {}
                Some(got) => problems.push(format!("{pointer}: expected {wanted}, got {got}")),
                None => problems.push(format!("{pointer}: missing (expected {wanted})")),
            }
        }
        if !report.extras.is_empty() {
            // Allowed, and printed for review (`cargo nextest run --no-capture`).
            eprintln!(
                "[conformance] {}: fields beyond the seed's example: {}",
                self.what,
                report.extras.join(", ")
            );
        }
        assert!(
            problems.is_empty(),
            "{} does not conform to the seed:\n  {}\nexample: {}\nactual:  {actual}",
            self.what,
            problems.join("\n  "),
            self.example
        );
        actual.clone()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_response_with_every_field_and_more_conforms() {
        let example = json!({"success": true, "id": "generated-uuid", "n": 3, "avg": 4.5});
        let actual = json!({"success": false, "id": "0193", "n": 7, "avg": 4, "extra": null});
        let report = compare(&example, &actual);
        assert_eq!(report.mismatches, Vec::<String>::new());
        assert_eq!(report.extras, vec!["$.extra"]);
    }

    #[test]
    fn every_mismatch_is_listed_with_its_path() {
        let example = json!({
            "a": 1, "b": "x", "c": {"d": true}, "e": [{"f": 1}], "g": [1], "h": null,
            "t": "2025-12-01T10:30:00Z"
        });
        let actual = json!({
            "a": 1.5, "b": 2, "c": {"d": "yes"}, "e": [{"f": 1}, {}], "g": [], "t": "yesterday"
        });
        let report = compare(&example, &actual);
        assert_eq!(
            report.mismatches,
            vec![
                "$.a: expected an integer (example: 1), got a fraction 1.5",
                "$.b: expected a string (example: \"x\"), got an integer 2",
                "$.c.d: expected a boolean (example: true), got a string \"yes\"",
                "$.e[1].f: missing (example: 1)",
                "$.g: expected elements like the example's 1 (example: [1]), got an empty array",
                "$.h: missing (example: null)",
                "$.t: expected an RFC 3339 date and time (example: \"2025-12-01T10:30:00Z\"), \
                 got \"yesterday\"",
            ]
        );
    }

    #[test]
    fn array_elements_follow_the_example_at_their_index_then_its_first() {
        let example = json!([{"sources": []}, {"sources": [{"id": "x"}]}]);
        let actual = json!([
            {"sources": [{"id": 1}]},
            {"sources": [{"id": 2}]},
            {"sources": "none"}
        ]);
        let report = compare(&example, &actual);
        assert_eq!(
            report.mismatches,
            vec![
                "$[1].sources[0].id: expected a string (example: \"x\"), got an integer 2",
                "$[2].sources: expected an array (example: []), got a string \"none\"",
            ]
        );
    }

    #[test]
    fn assert_conforms_passes_a_conforming_answer() {
        assert_conforms(
            &json!({"events": [{"id": "evt-001"}], "total": 156}),
            &json!({"events": [{"id": "0193", "more": 1}, {"id": "0194"}], "total": 2}),
        );
    }

    #[test]
    #[should_panic(expected = "$.events[1].id: missing")]
    fn assert_conforms_names_the_path_of_a_mismatch() {
        assert_conforms(
            &json!({"events": [{"id": "evt-001"}], "total": 156}),
            &json!({"events": [{"id": "0193"}, {}], "total": 2}),
        );
    }

    #[test]
    fn a_case_checks_status_and_pinned_values() {
        let case = Case::new("test", 200, json!({"status": "success", "n": 1})).pin("/status");
        case.check(200, &json!({"status": "success", "n": 2}));
        let failed = std::panic::catch_unwind(|| {
            case.check(201, &json!({"status": "failure", "n": 2}));
        });
        assert!(failed.is_err());
    }
}
