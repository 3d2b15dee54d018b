//! The examples of the seed documents, read from the seeds themselves (built into the binary)
//! so the document shows exactly what the seeds show. CasareRPA: under each `### METHOD /path`
//! heading, the first JSON block after `**Request Body**` and the first after `**Response**`.
//! ActiveWorkflow: a `GET /api/v1/agents/1` line directly followed by the JSON it answers.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::Value;

use super::table::Method;

const CASARE: &str = include_str!("../../../../tests/fixtures/seeds/casare-orchestrator-api.md");
const ACTIVE_WORKFLOW: &str =
    include_str!("../../../../tests/fixtures/seeds/activeworkflow-rest-api.txt");

/// A seed's request and response examples for one operation.
#[derive(Debug, Default)]
pub struct Example {
    pub request: Option<Value>,
    pub response: Option<Value>,
}

static EXAMPLES: LazyLock<HashMap<String, Example>> = LazyLock::new(|| {
    let mut all = parse_active_workflow(ACTIVE_WORKFLOW);
    // Where both seeds document an operation, CasareRPA's example (with its request) wins.
    all.extend(parse(CASARE));
    all
});

/// The seed's examples for `method path` (a path of the app, e.g. `/api/v1/auth/login`).
pub fn lookup(method: Method, path: &str) -> Option<&'static Example> {
    let seed_path = path.strip_prefix("/api/v1").unwrap_or(path);
    let method = match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    };
    EXAMPLES
        .get(&format!("{method} {seed_path}"))
        .or_else(|| EXAMPLES.get(&format!("{method} {}", pattern(seed_path))))
}

/// A path with its parameters (`{id}` or a concrete `1`) as `*`, to match a seed's example
/// call to the route it calls.
fn pattern(path: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let path = path.strip_prefix("/api/v1").unwrap_or(path);
    path.split('/')
        .map(|segment| {
            let is_id = !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit());
            if is_id || segment.starts_with('{') {
                "*"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// ActiveWorkflow's examples: `GET <path>` and, from the next line, a JSON value whose last
/// line is a lone `]` or `}`.
fn parse_active_workflow(text: &str) -> HashMap<String, Example> {
    let mut examples = HashMap::new();
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let Some(path) = line.strip_prefix("GET ") else {
            continue;
        };
        let starts_json = lines
            .get(i + 1)
            .is_some_and(|next| next.starts_with('[') || next.starts_with('{'));
        if !starts_json {
            continue;
        }
        let Some(end) = lines[i + 1..].iter().position(|l| *l == "]" || *l == "}") else {
            continue;
        };
        let body = lines[i + 1..=i + 1 + end].join("\n");
        if let Ok(value) = serde_json::from_str::<Value>(&body) {
            examples
                .entry(format!("GET {}", pattern(path.trim())))
                .or_insert_with(|| Example {
                    request: None,
                    response: Some(value),
                });
        }
    }
    examples
}

fn parse(text: &str) -> HashMap<String, Example> {
    let mut examples = HashMap::new();
    let mut current: Option<String> = None;
    // Which example the next JSON block belongs to: the request, the response, or neither.
    let mut pending: Option<bool> = None;
    let mut block: Option<String> = None;
    for line in text.lines() {
        if let Some(buffer) = block.as_mut() {
            if line.starts_with("```") {
                let parsed = serde_json::from_str::<Value>(buffer).ok();
                if let (Some(key), Some(is_request), Some(value)) = (&current, pending, parsed) {
                    let entry: &mut Example = examples.entry(key.clone()).or_default();
                    let slot = if is_request {
                        &mut entry.request
                    } else {
                        &mut entry.response
                    };
                    slot.get_or_insert(value);
                }
                block = None;
                pending = None;
            } else {
                buffer.push_str(line);
                buffer.push('\n');
            }
        } else if let Some(heading) = line.strip_prefix("### ") {
            let mut words = heading.split_whitespace();
            current = match (words.next(), words.next()) {
                (Some(m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE")), Some(p)) => {
                    Some(format!("{m} {p}"))
                }
                _ => None,
            };
            pending = None;
        } else if line.starts_with("**Request Body**") {
            pending = Some(true);
        } else if line.starts_with("**Response**") {
            pending = Some(false);
        } else if line.starts_with("```json") {
            block = Some(String::new());
        } else if line.starts_with("```") {
            // Another language's block (curl, python) ends what the heading promised.
            block = None;
        }
    }
    examples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_examples_are_found() {
        let login = lookup(Method::Post, "/api/v1/auth/login");
        let login = login.map(|e| (e.request.is_some(), e.response.is_some()));
        assert_eq!(login, Some((true, true)));
    }

    #[test]
    fn the_agent_examples_are_found() {
        for path in [
            "/api/v1/agents",
            "/api/v1/agents/{agent_id}",
            "/api/v1/messages/{message_id}",
        ] {
            let found = lookup(Method::Get, path).and_then(|e| e.response.as_ref());
            assert!(found.is_some(), "{path}");
        }
    }
}
