//! The one way routes read a JSON request body.
//!
//! Write bodies are taken as raw bytes (`web::Bytes`) and read here field by field rather than
//! through a typed `web::Json`: a wrong JSON type is then answered with the field it concerns
//! (`{"queue_name": 5}` → `queue_name: must be a string, not a number`) together with every other
//! broken rule of the request, and authentication, an extractor of its own, runs before the
//! body is judged, so an anonymous caller learns nothing about its shape. `docs/errors.md` lists
//! the wordings and the instant formats accepted.
//!
//! Every body read here is refused, with a 400 naming each place, when any of its strings or
//! object keys holds NUL (U+0000), at any depth and whether or not the route stores it:
//! PostgreSQL cannot store NUL in text, SQLite can, and a rule that holds for every route and
//! field alike is one a client can rely on. The domain's value types refuse NUL as well (and
//! names refuse every control character), so the rule holds for embedders too; this reader is
//! what also covers JSON documents stored whole, keys, and fields a route reads as it is.

use actix_web::error::JsonPayloadError;
use baton_domain::text::NUL_REFUSED;
use baton_domain::{FieldError, Timestamp, ValidationError, instant};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::errors::ApiResult;
use crate::extract::json_error;

/// The most places holding NUL one refusal lists: enough to show a client its mistake, few
/// enough that a body full of NULs is not answered with a response as large.
const MAX_NUL_REFUSALS: usize = 20;

/// Any JSON value: malformed JSON or an empty body is a 400, worded as `web::Json` words it,
/// and so is a string or key holding NUL ([`refuse_nul`]).
pub fn json_value(body: &[u8]) -> ApiResult<Value> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| json_error(JsonPayloadError::Deserialize(e)))?;
    refuse_nul(&value, "")?;
    Ok(value)
}

/// A body of a fixed shape, for the few routes that read one through serde: the same refusals
/// (and wordings) as `web::Json`, and NUL refused as by [`json_value`].
pub fn typed<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    json_value(body)?;
    serde_json::from_slice(body).map_err(|e| json_error(JsonPayloadError::Deserialize(e)))
}

/// Refuses a JSON document holding NUL in any string or object key, at any depth, naming each
/// place as a field: `message`, `items[3].data.note` under the root `""` of a body, or
/// `file.nodes[0].name` under the root `file`. A root that is itself a string holding NUL is
/// named `body` (or the root given).
pub fn refuse_nul(value: &Value, root: &str) -> Result<(), ValidationError> {
    let mut errors = Vec::new();
    let mut path = root.to_owned();
    find_nul(value, &mut path, &mut errors);
    if errors.is_empty() {
        return Ok(());
    }
    if errors.len() > MAX_NUL_REFUSALS {
        errors.truncate(MAX_NUL_REFUSALS);
    }
    Err(ValidationError { errors })
}

/// Walks `value`, whose place is `path`, recording each string holding NUL and each key that
/// does. `path` is restored before returning, so the walk allocates one buffer.
fn find_nul(value: &Value, path: &mut String, errors: &mut Vec<FieldError>) {
    if errors.len() > MAX_NUL_REFUSALS {
        return;
    }
    match value {
        Value::String(s) if s.contains('\0') => {
            let field = if path.is_empty() { "body" } else { path };
            errors.push(FieldError {
                field: field.to_owned(),
                message: NUL_REFUSED.to_owned(),
            });
        }
        Value::Array(values) => {
            for (i, v) in values.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                find_nul(v, path, errors);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            for (key, v) in map {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                // A key is shown with its NUL written out, so the field name stays printable.
                path.push_str(&key.replace('\0', "\\u0000"));
                if key.contains('\0') {
                    errors.push(FieldError {
                        field: path.clone(),
                        message: format!("is a key that {NUL_REFUSED}"),
                    });
                }
                find_nul(v, path, errors);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// The body as a JSON object: malformed JSON, an empty body or another JSON value is a 400.
pub fn json_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    match json_value(body)? {
        Value::Object(map) => Ok(map),
        other => Err(ValidationError::field("body", wrong_type("a JSON object", &other)).into()),
    }
}

/// Like [`json_object`], but an empty body (or JSON `null`) reads as `{}`: for calls whose
/// fields are all optional.
pub fn optional_json_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(Map::new());
    }
    json_object(text)
}

/// What a JSON value is, as refusals name it: `a string`, `a number`, `null`, ….
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The one wording of a wrong JSON type: `must be <expected>, not <what it is>`. A number that
/// is the wrong kind of number (`1.5` for an integer, `-1` for a count) is shown as itself,
/// since "not a number" would puzzle.
pub fn wrong_type(expected: &str, got: &Value) -> String {
    match got {
        Value::Number(n) if expected.contains("number") || expected.contains("integer") => {
            format!("must be {expected}, not {n}")
        }
        other => format!("must be {expected}, not {}", json_kind(other)),
    }
}

/// The fields of one JSON object, read with their JSON types checked. Every field of the wrong
/// type is recorded under its name (after a prefix such as `items[3].`, for the objects of a
/// batch) instead of stopping at the first, so one answer lists them all. Absent and `null`
/// fields read as not given.
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: String,
    errors: Vec<FieldError>,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self::with_prefix(map, String::new())
    }

    /// Fields whose errors are named `<prefix><name>`, e.g. `items[3].reference`.
    pub fn with_prefix(map: &'a Map<String, Value>, prefix: String) -> Self {
        Self {
            map,
            prefix,
            errors: Vec::new(),
        }
    }

    /// The raw value, for fields of any JSON type; `None` when absent or `null`.
    pub fn value(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    /// Records a refusal of the field `name` (named after the prefix).
    pub fn push(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError {
            field: format!("{}{name}", self.prefix),
            message: message.into(),
        });
    }

    /// Keeps the value of a domain check, or records its errors (named after the prefix).
    pub fn check<T>(&mut self, result: Result<T, ValidationError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.merge(e);
                None
            }
        }
    }

    /// Adds the domain's errors (named without the prefix) for fields whose JSON type was not
    /// refused already, so a field is refused once, for its type, rather than twice.
    pub fn merge(&mut self, rules: ValidationError) {
        for e in rules.errors {
            if !self.failed(&e.field) {
                self.push(&e.field, e.message);
            }
        }
    }

    /// Whether the field `name` (without the prefix) was refused already.
    pub fn failed(&self, name: &str) -> bool {
        let full = format!("{}{name}", self.prefix);
        self.errors.iter().any(|e| e.field == full)
    }

    fn refuse(&mut self, name: &str, expected: &str, got: &Value) {
        let message = wrong_type(expected, got);
        self.push(name, message);
    }

    pub fn text(&mut self, name: &str) -> Option<String> {
        match self.value(name)? {
            Value::String(s) => Some(s.clone()),
            other => {
                self.refuse(name, "a string", other);
                None
            }
        }
    }

    /// A string that must be given: absent or `null` is refused as required.
    pub fn required_text(&mut self, name: &str) -> Option<String> {
        if self.value(name).is_none() {
            self.push(name, "is required");
            return None;
        }
        self.text(name)
    }

    /// A whole number of at least 0. One beyond `u64` cannot be told apart from its neighbours
    /// and is refused; the domain checks the upper bound of its range.
    pub fn whole(&mut self, name: &str) -> Option<u64> {
        match self.value(name)? {
            Value::Number(n) if n.is_u64() => n.as_u64(),
            other => {
                self.refuse(name, "a whole number of at least 0", other);
                None
            }
        }
    }

    /// A whole number that fits `u32`; a larger one reads as `u32::MAX`, so the domain's range
    /// check names the rule it breaks.
    pub fn whole_u32(&mut self, name: &str) -> Option<u32> {
        self.whole(name)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// An integer of any sign (a range check follows in the domain). One beyond `i64` reads as
    /// `i64::MAX`: certainly out of any range, so the domain's check names the rule.
    pub fn integer(&mut self, name: &str) -> Option<i64> {
        match self.value(name)? {
            Value::Number(n) if n.is_i64() => n.as_i64(),
            Value::Number(n) if n.is_u64() => Some(i64::MAX),
            other => {
                self.refuse(name, "an integer", other);
                None
            }
        }
    }

    /// Any JSON number, as a float (loads and percentages; the domain checks the range).
    pub fn number(&mut self, name: &str) -> Option<f64> {
        match self.value(name)? {
            Value::Number(n) => n.as_f64(),
            other => {
                self.refuse(name, "a number", other);
                None
            }
        }
    }

    pub fn flag(&mut self, name: &str) -> Option<bool> {
        match self.value(name)? {
            Value::Bool(b) => Some(*b),
            other => {
                self.refuse(name, "true or false", other);
                None
            }
        }
    }

    pub fn object(&mut self, name: &str) -> Option<Map<String, Value>> {
        match self.value(name)? {
            Value::Object(map) => Some(map.clone()),
            other => {
                self.refuse(name, "a JSON object", other);
                None
            }
        }
    }

    pub fn array(&mut self, name: &str) -> Option<Vec<Value>> {
        match self.value(name)? {
            Value::Array(values) => Some(values.clone()),
            other => {
                self.refuse(name, "a JSON array", other);
                None
            }
        }
    }

    /// An array of strings; each element of another type is refused as `name[i]`.
    pub fn texts(&mut self, name: &str) -> Option<Vec<String>> {
        let values = self.array(name)?;
        let mut texts = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            match value {
                Value::String(s) => texts.push(s.clone()),
                other => self.refuse(&format!("{name}[{i}]"), "a string", other),
            }
        }
        Some(texts)
    }

    /// An instant in one of the forms `baton_domain::instant` accepts, converted to UTC.
    pub fn instant(&mut self, name: &str) -> Option<Timestamp> {
        let text = self.text(name)?;
        let parsed = instant::parse_instant(&text);
        if parsed.is_none() {
            self.push(name, instant::refusal());
        }
        parsed
    }

    /// The refusals so far, for use cases that take them with the values read (e.g. the
    /// triggers' `unreadable`) and report them together with their own rules.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }

    /// `Ok` when every field read was of its type, else every refusal at once.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ValidationError {
                errors: self.errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap()
    }

    fn refusals(fields: Fields<'_>) -> Vec<(String, String)> {
        fields
            .into_errors()
            .into_iter()
            .map(|e| (e.field, e.message))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, m)| ((*f).to_owned(), (*m).to_owned()))
            .collect()
    }

    #[test]
    fn every_kind_is_named() {
        for (value, kind) in [
            (Value::Null, "null"),
            (json!(true), "a boolean"),
            (json!(1), "a number"),
            (json!("x"), "a string"),
            (json!([]), "an array"),
            (json!({}), "an object"),
        ] {
            assert_eq!(json_kind(&value), kind);
        }
    }

    #[test]
    fn each_reader_refuses_every_other_kind_with_one_wording() {
        let values = [
            json!(true),
            json!(5),
            json!("x"),
            json!([5]),
            json!({"a": 5}),
        ];
        type Reader = fn(&mut Fields<'_>, &str) -> bool;
        // Each reader with what it must be and the one JSON kind it takes.
        let readers: [(&str, &str, Reader); 9] = [
            ("a string", "a string", |f, n| f.text(n).is_some()),
            ("a number", "a number", |f, n| f.number(n).is_some()),
            ("a whole number of at least 0", "a number", |f, n| {
                f.whole(n).is_some()
            }),
            ("an integer", "a number", |f, n| f.integer(n).is_some()),
            ("true or false", "a boolean", |f, n| f.flag(n).is_some()),
            ("a JSON object", "an object", |f, n| f.object(n).is_some()),
            ("a JSON array", "an array", |f, n| f.array(n).is_some()),
            ("a JSON array", "an array", |f, n| f.texts(n).is_some()),
            ("a string", "a string", |f, n| f.instant(n).is_some()),
        ];
        for (expected, takes, read) in readers {
            for value in &values {
                let body = map(json!({ "f": value }));
                let mut fields = Fields::new(&body);
                let got = read(&mut fields, "f");
                if json_kind(value) == takes {
                    continue;
                }
                assert!(!got, "{expected} took {value}");
                let message = format!("must be {expected}, not {}", json_kind(value));
                assert_eq!(
                    refusals(fields),
                    pairs(&[("f", &message)]),
                    "{expected} given {value}"
                );
            }
        }
    }

    #[test]
    fn the_wrong_kind_of_number_is_shown_as_itself() {
        let body = map(json!({"a": -1, "b": 1.5, "c": 2.5, "d": "x"}));
        let mut fields = Fields::new(&body);
        assert_eq!(fields.whole("a"), None);
        assert_eq!(fields.integer("b"), None);
        assert_eq!(fields.text("c"), None);
        assert_eq!(fields.integer("d"), None);
        assert_eq!(
            refusals(fields),
            pairs(&[
                ("a", "must be a whole number of at least 0, not -1"),
                ("b", "must be an integer, not 1.5"),
                ("c", "must be a string, not a number"),
                ("d", "must be an integer, not a string"),
            ])
        );
    }

    #[test]
    fn numbers_beyond_their_type_reach_the_domain_as_out_of_range() {
        let body = map(json!({"big": u64::MAX, "n": 7}));
        let mut fields = Fields::new(&body);
        assert_eq!(fields.integer("big"), Some(i64::MAX));
        assert_eq!(fields.whole_u32("big"), Some(u32::MAX));
        assert_eq!(fields.whole("big"), Some(u64::MAX));
        assert_eq!(fields.whole_u32("n"), Some(7));
        assert_eq!(fields.integer("n"), Some(7));
        assert!(fields.finish().is_ok());
    }

    #[test]
    fn absent_and_null_fields_are_not_given_unless_required() {
        let body = map(json!({"a": null}));
        let mut fields = Fields::new(&body);
        assert_eq!(fields.text("a"), None);
        assert_eq!(fields.flag("missing"), None);
        assert_eq!(fields.instant("a"), None);
        assert!(fields.value("a").is_none());
        assert_eq!(fields.required_text("a"), None);
        assert_eq!(fields.required_text("b"), None);
        assert_eq!(
            refusals(fields),
            pairs(&[("a", "is required"), ("b", "is required")])
        );
    }

    #[test]
    fn instants_are_read_in_every_accepted_form_and_refused_in_one_wording() {
        let body = map(json!({
            "rfc": "2025-04-26T14:00:00+02:00",
            "naive": "2025-04-26T12:00:00",
            "spaced": "2025-04-26 12:00:00",
            "micros": "2025-04-26 12:00:00.123456",
            "date": "2025-04-26",
            "bad": "tomorrow",
            "month": "2025-13-01T00:00:00Z",
        }));
        let mut fields = Fields::new(&body);
        let noon = datetime!(2025-04-26 12:00 UTC);
        assert_eq!(fields.instant("rfc"), Some(noon));
        assert_eq!(fields.instant("naive"), Some(noon));
        assert_eq!(fields.instant("spaced"), Some(noon));
        assert_eq!(
            fields.instant("micros"),
            Some(datetime!(2025-04-26 12:00:00.123456 UTC))
        );
        assert_eq!(fields.instant("date"), Some(datetime!(2025-04-26 0:00 UTC)));
        assert_eq!(fields.instant("bad"), None);
        assert_eq!(fields.instant("month"), None);
        let refusal = format!("must be {}", instant::EXPECTED);
        assert_eq!(
            refusals(fields),
            pairs(&[("bad", &refusal), ("month", &refusal)])
        );
    }

    #[test]
    fn prefixes_name_the_fields_of_a_batch_and_domain_errors_do_not_repeat_a_field() {
        let body = map(json!({"reference": 7, "data": "x"}));
        let mut fields = Fields::with_prefix(&body, "items[3].".to_owned());
        assert_eq!(fields.text("reference"), None);
        assert!(fields.failed("reference"));
        fields.merge(
            ValidationError::field("reference", "must be at most 100 characters").merge(
                ValidationError::field("data", "must be at most 2000 characters"),
            ),
        );
        assert_eq!(
            fields.check(Err::<(), _>(ValidationError::field("status", "unknown"))),
            None
        );
        assert_eq!(
            refusals(fields),
            pairs(&[
                ("items[3].reference", "must be a string, not a number"),
                ("items[3].data", "must be at most 2000 characters"),
                ("items[3].status", "unknown"),
            ])
        );
    }

    #[test]
    fn arrays_of_strings_name_each_wrong_element() {
        let body = map(json!({"ids": ["a", 2, null, "d"]}));
        let mut fields = Fields::new(&body);
        assert_eq!(
            fields.texts("ids"),
            Some(vec!["a".to_owned(), "d".to_owned()])
        );
        assert_eq!(
            refusals(fields),
            pairs(&[
                ("ids[1]", "must be a string, not a number"),
                ("ids[2]", "must be a string, not null"),
            ])
        );
    }

    #[test]
    fn bodies_must_be_json_objects() {
        for body in [&b"[]"[..], b"\"text\"", b"5", b"null", b"{", b""] {
            let err = json_object(body).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body:?}");
        }
        let err = json_object(b"[1]").unwrap_err();
        assert_eq!(
            err.field_errors()[0].message,
            "must be a JSON object, not an array"
        );
        assert!(json_object(b"{}").unwrap().is_empty());
        let err = json_object(b"").unwrap_err();
        assert_eq!(
            err.detail(),
            "the request needs a JSON body, and it was empty"
        );
    }

    #[test]
    fn nul_anywhere_in_a_body_is_refused_naming_each_place() {
        let body = br#"{"queue_name": "q", "message": "x\u0000y",
            "data": {"ok": "fine", "list": ["a", "b\u0000"], "k\u0000ey": 1},
            "items": [{"reference": "\u0000"}]}"#;
        let err = json_object(body).unwrap_err();
        assert_eq!(err.status().as_u16(), 400);
        let mut places: Vec<(String, String)> = err
            .field_errors()
            .iter()
            .map(|e| (e.field.clone(), e.message.clone()))
            .collect();
        places.sort();
        let nul = "must not contain the NUL character (U+0000)";
        let key = format!("is a key that {nul}");
        assert_eq!(
            places,
            pairs(&[
                ("data.k\\u0000ey", &key),
                ("data.list[1]", nul),
                ("items[0].reference", nul),
                ("message", nul),
            ])
        );
        // A body that is a bare string, and the typed reader, refuse it too.
        assert_eq!(
            json_value(br#""\u0000""#).unwrap_err().field_errors()[0].field,
            "body"
        );
        assert!(typed::<Map<String, Value>>(br#"{"a": "\u0000"}"#).is_err());
        assert!(optional_json_object(br#"{"a": ["\u0000"]}"#).is_err());
    }

    #[test]
    fn other_control_characters_and_escapes_pass_the_reader() {
        // The reader refuses NUL only; names refuse other control characters in the domain.
        let body = br#"{"message": "tab\there\nnewline \u0001 \\u0000 is text"}"#;
        let map = json_object(body).unwrap();
        assert_eq!(map["message"], "tab\there\nnewline \u{1} \\u0000 is text");
        let typed: Map<String, Value> = typed(body).unwrap();
        assert_eq!(typed, map);
    }

    #[test]
    fn a_body_full_of_nul_lists_a_bounded_number_of_places() {
        let many: Vec<Value> = (0..1000).map(|_| json!("\u{0}")).collect();
        let err = refuse_nul(&json!({ "a": many }), "").unwrap_err();
        assert_eq!(err.errors.len(), MAX_NUL_REFUSALS);
        assert_eq!(err.errors[0].field, "a[0]");
        let err = refuse_nul(&json!({"nodes": [{"name": "\u{0}"}]}), "file").unwrap_err();
        assert_eq!(err.errors[0].field, "file.nodes[0].name");
    }

    #[test]
    fn typed_bodies_keep_the_wordings_of_web_json() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Login {
            username: String,
        }
        assert_eq!(
            typed::<Login>(b"").unwrap_err().detail(),
            "the request needs a JSON body, and it was empty"
        );
        let err = typed::<Login>(br#"{"username": 5}"#).unwrap_err();
        assert!(
            err.detail()
                .starts_with("the JSON body does not have the expected fields and types"),
            "{}",
            err.detail()
        );
        assert!(
            typed::<Login>(b"{")
                .unwrap_err()
                .detail()
                .starts_with("the request body is not valid JSON")
        );
        assert_eq!(
            typed::<Login>(br#"{"username": "u"}"#).unwrap().username,
            "u"
        );
    }

    #[test]
    fn optional_bodies_read_empty_as_an_empty_object() {
        assert!(optional_json_object(b"").unwrap().is_empty());
        assert!(optional_json_object(b"  \n").unwrap().is_empty());
        assert!(optional_json_object(b"null").unwrap().is_empty());
        assert!(optional_json_object(b"[]").is_err());
        assert!(optional_json_object(b"{").is_err());
        assert_eq!(optional_json_object(br#"{"hard": true}"#).unwrap().len(), 1);
    }
}
