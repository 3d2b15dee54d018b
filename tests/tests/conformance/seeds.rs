//! The seed documents' examples, parsed at test time out of the verbatim copies in
//! `tests/fixtures/seeds/` (see the README there for where they come from).
//!
//! An example is found by a section (a whole line of the document, its first occurrence: a
//! heading such as `### POST /auth/login` or `GET /api/v1/agents/:agent_id`), then a label
//! after it (the first line containing, e.g., `**Response** (200 OK):` or `Example:`), then the
//! first JSON object or array after the label's start. The flows document lost the braces of its
//! command examples in extraction from the web, so those are read as bare paragraphs instead
//! (see [`Seed::bare_example`]).
//!
//! Parsing rather than copying the examples into the tests keeps the suite honest: it replays
//! what the documents say, and a change to a document shows up as a changed test.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// One of the four seed documents.
#[derive(Debug, Clone, Copy)]
pub enum Seed {
    Casare,
    ActiveWorkflow,
    Flows,
    PyOrchestrator,
}

impl Seed {
    pub const ALL: [Seed; 4] = [
        Seed::Casare,
        Seed::ActiveWorkflow,
        Seed::Flows,
        Seed::PyOrchestrator,
    ];

    pub fn file_name(self) -> &'static str {
        match self {
            Seed::Casare => "casare-orchestrator-api.md",
            Seed::ActiveWorkflow => "activeworkflow-rest-api.txt",
            Seed::Flows => "flows-api.txt",
            Seed::PyOrchestrator => "pyorchestrator-api.txt",
        }
    }

    /// The document's text, from the fixtures.
    pub fn text(self) -> String {
        let path = fixtures_dir().join(self.file_name());
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read the seed fixture {}: {e}", path.display()))
    }

    /// The first JSON object or array after the first line containing `label` that follows the
    /// first line equal to `section` (both compared trimmed).
    pub fn example(self, section: &str, label: &str) -> Value {
        let text = self.text();
        let after_section = after_line(&text, |line| line == section)
            .unwrap_or_else(|| panic!("{}: no line '{section}'", self.file_name()));
        let at_label = after_section
            .find(label)
            .map(|i| &after_section[i..])
            .unwrap_or_else(|| panic!("{}: no '{label}' after '{section}'", self.file_name()));
        let start = at_label.find(['{', '[']).unwrap_or_else(|| {
            panic!(
                "{}: no JSON after '{label}' in '{section}'",
                self.file_name()
            )
        });
        let fragment = balanced(&at_label[start..]);
        parse(self, section, &repair(fragment))
    }

    /// The `nth` paragraph (0-based; paragraphs are separated by blank lines) after the line
    /// `section`, read as the members of a JSON object: the flows document prints its command
    /// examples without their braces (`"command": "start",` / `"flow_ids": [...]`).
    pub fn bare_example(self, section: &str, nth: usize) -> Value {
        let text = self.text();
        let after_section = after_line(&text, |line| line == section)
            .unwrap_or_else(|| panic!("{}: no line '{section}'", self.file_name()));
        let mut paragraphs = Vec::new();
        let mut current = Vec::new();
        for line in after_section.lines() {
            if line.trim().is_empty() {
                if !current.is_empty() {
                    paragraphs.push(current.join("\n"));
                    current.clear();
                }
            } else {
                current.push(line);
            }
        }
        if !current.is_empty() {
            paragraphs.push(current.join("\n"));
        }
        let paragraph = paragraphs.get(nth).unwrap_or_else(|| {
            panic!("{}: no paragraph {nth} after '{section}'", self.file_name())
        });
        parse(self, section, &repair(&format!("{{{paragraph}")))
    }
}

/// `tests/fixtures/seeds/`, found from this package's manifest, so the suite runs from any
/// working directory.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/seeds")
}

fn parse(seed: Seed, section: &str, json: &str) -> Value {
    serde_json::from_str(json).unwrap_or_else(|e| {
        panic!(
            "{}: the example in '{section}' is not JSON even after repair ({e}):\n{json}",
            seed.file_name()
        )
    })
}

/// The text after the first line for which `is_it` holds (given the trimmed line).
fn after_line(text: &str, is_it: impl Fn(&str) -> bool) -> Option<&str> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        offset += line.len();
        if is_it(line.trim()) {
            return Some(&text[offset..]);
        }
    }
    None
}

/// The JSON value at the start of `text` (which starts with `{` or `[`): up to the bracket that
/// closes the first one, or all of `text` if none does.
fn balanced(text: &str) -> &str {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    text
}

/// Repairs what extraction from a web page broke, and only that: a comma before a closing
/// bracket is dropped, and the brackets left open at the end are closed.
fn repair(fragment: &str) -> String {
    let mut out = String::with_capacity(fragment.len() + 4);
    let mut open = Vec::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in fragment.chars() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => open.push('}'),
            '[' => open.push(']'),
            '}' | ']' => {
                open.pop();
                drop_trailing_comma(&mut out);
            }
            _ => {}
        }
        out.push(c);
    }
    while let Some(close) = open.pop() {
        drop_trailing_comma(&mut out);
        out.truncate(out.trim_end().len());
        out.push(close);
    }
    out
}

/// Removes a `,` (and the whitespace after it) at the end of `out`.
fn drop_trailing_comma(out: &mut String) {
    let trimmed = out.trim_end().len();
    if out[..trimmed].ends_with(',') {
        out.truncate(trimmed - 1);
    }
}

// ---- changing an example into the expectation of one replay ----

/// Replaces `from` by `to` in every string of `value` (keys stay): the seed's placeholder ids
/// become the real ones, also inside messages such as `"Workflow deleted: <id>"`.
pub fn substitute(value: &mut Value, from: &str, to: &str) {
    match value {
        Value::String(text) => {
            if text.contains(from) {
                *text = text.replace(from, to);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, from, to)),
        Value::Object(fields) => fields.values_mut().for_each(|v| substitute(v, from, to)),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Sets the value at the JSON pointer `pointer` (which must exist) to `new`.
pub fn set(value: &mut Value, pointer: &str, new: Value) {
    *value
        .pointer_mut(pointer)
        .unwrap_or_else(|| panic!("the example has no {pointer}")) = new;
}

/// All of Baton's ids are UUIDs, as strings on the wire. ActiveWorkflow's examples show
/// integer ids (`"id": 1`, `"agent_id": 1`, `"sources": [{"id": 1}]`); Baton's are UUID strings,
/// by the contract. So every integer under a key `id` or ending in `_id` becomes a string
/// placeholder before the comparison, and every other field keeps its example's type.
pub fn ids_as_uuid_strings(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if (key == "id" || key.ends_with("_id")) && field.is_number() {
                    *field = Value::String(format!("uuid-for-{field}"));
                } else {
                    ids_as_uuid_strings(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(ids_as_uuid_strings),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn repair_drops_trailing_commas_and_closes_what_is_open() {
        assert_eq!(repair(r#"[{"a": 1},]"#), r#"[{"a": 1}]"#);
        assert_eq!(
            repair("{\"details\": [\n {\"x\": \"a,]\"},\n {\"y\": 2}\n"),
            "{\"details\": [\n {\"x\": \"a,]\"},\n {\"y\": 2}]}"
        );
    }

    #[test]
    fn every_seed_example_the_suite_uses_parses() {
        // A smoke test of the locator on one example of each document; the conformance tests
        // parse the rest.
        assert_eq!(
            Seed::Casare.example("### POST /auth/logout", "**Response** (200 OK):"),
            json!({"message": "Successfully logged out"})
        );
        assert_eq!(
            Seed::ActiveWorkflow.example("Errors", "For example:"),
            json!({"error": "401 Unauthorized"})
        );
        assert_eq!(
            Seed::ActiveWorkflow
                .example("GET /api/v1/agents/:agent_id/messages", "Example:")
                .as_array()
                .map(Vec::len),
            Some(2)
        );
        assert_eq!(
            Seed::Flows.bare_example("Stop Flows", 0),
            json!({"command": "stop", "flow_ids": ["flow1", "flow2"], "type": 0})
        );
        assert_eq!(
            Seed::Flows.bare_example("Resume Flows", 1),
            json!({"status": "Flows resumed", "details": [
                {"flow_id": "flow1", "status": "running"},
                {"flow_id": "flow2", "status": "running"}
            ]})
        );
        assert_eq!(
            Seed::PyOrchestrator.example("Update the process_status", "Response:"),
            json!({"success": true, "trigger_name": "MyAutomationTrigger", "new_status": "IDLE"})
        );
    }

    #[test]
    fn integer_ids_become_strings_and_nothing_else_changes() {
        let mut value =
            json!([{"id": 1, "agent_id": 2, "messages_count": 3, "sources": [{"id": 1}]}]);
        ids_as_uuid_strings(&mut value);
        assert_eq!(
            value,
            json!([{"id": "uuid-for-1", "agent_id": "uuid-for-2", "messages_count": 3,
                    "sources": [{"id": "uuid-for-1"}]}])
        );
    }

    /// The fixtures are the seeds, byte for byte, wherever the originals can be found: in
    /// `BATON_SEEDS_DIR`, else in the directory beside the workspace named below. On a clean
    /// clone, where neither exists, there is nothing to compare with.
    #[test]
    fn fixtures_are_verbatim_copies_of_the_seeds() {
        let originals = std::env::var_os("BATON_SEEDS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/seeds"));
        if !originals.is_dir() {
            eprintln!(
                "{} does not exist: the seed fixtures are not compared with the originals",
                originals.display()
            );
            return;
        }
        for seed in Seed::ALL {
            let original = std::fs::read(originals.join(seed.file_name())).unwrap();
            let copy = std::fs::read(fixtures_dir().join(seed.file_name())).unwrap();
            assert!(
                original == copy,
                "tests/fixtures/seeds/{} differs from {}: copy the seed again (see the README \
                 there)",
                seed.file_name(),
                originals.display()
            );
        }
    }
}
