//! The OpenAPI document (docs/openapi.md): `GET /api/v1/openapi.json` on a real server is an
//! OpenAPI 3.1 document that documents every path of every seed document, every route `routes/*.rs`
//! mounts (read from the source, so a new route without an entry in the route table fails here),
//! and nothing the app does not serve (each documented operation is called and must reach a
//! handler: not the 404 of an unknown route, not a 405).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use baton_storage::testing::TestDatabase;
use baton_tests::{TestApp, json};
use reqwest::Method;
use serde_json::Value;

/// Runs each named `async fn(TestDatabase)` on a fresh SQLite and a fresh PostgreSQL database,
/// as the tests `<name>::sqlite` and `<name>::postgres`.
macro_rules! on_both_databases {
    ($($flow:ident),* $(,)?) => {$(
        mod $flow {
            use super::*;

            #[tokio::test(flavor = "multi_thread")]
            async fn sqlite() {
                super::$flow(TestDatabase::sqlite().await).await;
            }

            #[tokio::test(flavor = "multi_thread")]
            async fn postgres() {
                super::$flow(TestDatabase::postgres().await).await;
            }
        }
    )*};
}

on_both_databases!(
    the_document_covers_every_route_and_only_served_ones,
    the_docs_page_loads_nothing_from_elsewhere,
);

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every `METHOD path` the document lists.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut all = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                all.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    all
}

fn documents(doc: &Value, method: Option<&str>, path: &str) -> bool {
    let item = &doc["paths"][path];
    match method {
        Some(m) => item.get(m.to_lowercase()).is_some(),
        None => item.is_object(),
    }
}

/// Every `(method, path)` the seed documents name, as Baton serves them (`None`: any method).
fn seed_operations() -> Vec<(Option<String>, String)> {
    let seeds = workspace().join("tests/fixtures/seeds");
    let read = |name: &str| std::fs::read_to_string(seeds.join(name)).unwrap();
    let mut all = Vec::new();

    // CasareRPA: the endpoint table, `| Group | METHOD | `/path` | … |`, served under /api/v1
    // (health also at the root); websockets (`WS`) are GETs at the root.
    for line in read("casare-orchestrator-api.md").lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[3].starts_with("`/") {
            continue;
        }
        let path = cells[3].trim_matches('`');
        match cells[2] {
            "WS" => all.push((Some("GET".to_owned()), path.to_owned())),
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                all.push((Some(m.to_owned()), format!("/api/v1{path}")));
                if path.starts_with("/health") {
                    all.push((Some(m.to_owned()), path.to_owned()));
                }
            }
            _ => {}
        }
    }

    // ActiveWorkflow: `GET /api/v1/agents/:agent_id` lines (examples with ids are skipped).
    for line in read("activeworkflow-rest-api.txt").lines() {
        let Some((method, path)) = line.split_once(' ') else {
            continue;
        };
        if !["GET", "POST", "PUT", "DELETE"].contains(&method) || !path.starts_with('/') {
            continue;
        }
        if path.contains('?')
            || path
                .split('/')
                .any(|s| s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty())
        {
            continue;
        }
        let path: Vec<String> = path
            .trim()
            .split('/')
            .map(|s| match s.strip_prefix(':') {
                Some(name) => format!("{{{name}}}"),
                None => s.to_owned(),
            })
            .collect();
        let path = path.join("/");
        let path = if path.starts_with("/api/v1") {
            path
        } else {
            format!("/api/v1{path}")
        };
        all.push((Some(method.to_owned()), path));
    }

    // Flows: `• URL: /flows/<flow_id>` then `• Method: GET`, served under /api/v1.
    let mut url = None;
    for line in read("flows-api.txt").lines() {
        let line = line.trim().trim_start_matches('•').trim();
        if let Some(path) = line.strip_prefix("URL: ") {
            url = Some(path.trim().replace('<', "{").replace('>', "}"));
        } else if let Some(method) = line.strip_prefix("Method: ")
            && let Some(path) = url.take()
        {
            all.push((Some(method.trim().to_owned()), format!("/api/v1{path}")));
        }
    }

    // PyOrchestrator: its paths are named in the rate-limit table, `/api/queue |`.
    for line in read("pyorchestrator-api.txt").lines() {
        if let Some(path) = line.strip_suffix(" |").filter(|p| p.starts_with("/api/")) {
            all.push((None, path.to_owned()));
        }
    }
    all
}

/// The `(METHOD, path)` of every `web::resource(…)` in the route modules, read from the
/// source. Paths are as written (relative to their scope).
fn mounted_in_source() -> Vec<(String, String)> {
    let mut files = Vec::new();
    let mut dirs = vec![
        workspace().join("crates/http/src/routes"),
        workspace().join("crates/http/src/openapi"),
    ];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    let mut all = Vec::new();
    for file in files {
        // Comments may show `web::resource(…)` too; only code counts.
        let text: String = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .map(|line| format!("{line}\n"))
            .collect();
        for chunk in text.split("web::resource(").skip(1) {
            // The resource's own routes end where its function does.
            let chunk = chunk.split("\n}").next().unwrap();
            let chunk = chunk.split("web::resource(").next().unwrap();
            let argument = chunk.split(')').next().unwrap();
            let paths: Vec<String> = if let Some(literal) = argument.strip_prefix('"') {
                vec![without_patterns(literal.trim_end_matches('"'))]
            } else if let Some(name) = argument.strip_prefix("call(\"") {
                vec![format!(
                    "/robots/{{robot_id}}/jobs/{{job_id}}/{}",
                    name.trim_end_matches('"')
                )]
            } else if argument == "feed.path(" {
                ["/ws/live-jobs", "/ws/robot-status", "/ws/queue-metrics"]
                    .map(String::from)
                    .to_vec()
            } else {
                panic!(
                    "{}: teach this test the path of `web::resource({argument}…`",
                    file.display()
                );
            };
            let methods: Vec<String> = METHODS
                .iter()
                .filter(|m| chunk.contains(&format!("web::{m}()")))
                .map(|m| m.to_uppercase())
                .collect();
            assert!(
                !methods.is_empty(),
                "{}: no method for {paths:?}",
                file.display()
            );
            for path in paths {
                for method in &methods {
                    all.push((method.clone(), path.clone()));
                }
            }
        }
    }
    all
}

/// `path` with each segment's pattern left out, as the document names it:
/// `/ui/{path:.*}` → `/ui/{path}`.
fn without_patterns(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment.split_once(':') {
            Some((name, _)) if segment.starts_with('{') => format!("{name}}}"),
            _ => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn the_document_covers_every_route_and_only_served_ones(db: TestDatabase) {
    let app = TestApp::spawn(db).await;

    // Served without credentials, as OpenAPI 3.1 JSON.
    let response = app.get("/api/v1/openapi.json").await;
    assert_eq!(response.status().as_u16(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let (_, doc) = json(response).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for scheme in ["bearer", "apiKey", "robotToken"] {
        assert!(
            doc["components"]["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["apiKey"]["name"],
        "X-API-Key"
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["robotToken"]["name"],
        "X-Api-Token"
    );
    assert!(doc["components"]["schemas"]["Error"]["properties"]["retry_after"].is_object());

    // Every seed path.
    let seeds = seed_operations();
    assert!(
        seeds.len() > 50,
        "the seeds name more operations than {}",
        seeds.len()
    );
    for (method, path) in &seeds {
        assert!(
            documents(&doc, method.as_deref(), path),
            "seed operation {method:?} {path} is not documented"
        );
    }

    // Every route the source mounts, at the root or under /api/v1.
    let mounted = mounted_in_source();
    for (method, path) in &mounted {
        let v1 = format!("/api/v1{path}");
        assert!(
            documents(&doc, Some(method), path) || documents(&doc, Some(method), &v1),
            "{method} {path} is mounted but not documented"
        );
    }
    let documented = operations(&doc);
    assert!(
        documented.len() >= mounted.len(),
        "{} < {}",
        documented.len(),
        mounted.len()
    );

    // Every documented operation reaches a handler. Credentials are an admin's, so nothing is
    // refused for want of them; bodies are malformed JSON, so nothing is written. Logging out
    // (which ends the session) comes last.
    let token = app.admin_token().await;
    let mut probes: Vec<(String, String)> = documented.into_iter().collect();
    probes.sort_by_key(|(_, path)| path.ends_with("/auth/logout"));
    for (method, path) in probes {
        let concrete: Vec<String> = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    "probe-0".to_owned()
                } else {
                    s.to_owned()
                }
            })
            .collect();
        let url = app.url(&concrete.join("/"));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = app.client.request(method.clone(), &url).bearer_auth(&token);
        if [Method::POST, Method::PUT, Method::PATCH].contains(&method) {
            request = request.header("content-type", "application/json").body("{");
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap();
        assert_ne!(
            status, 405,
            "{method} {path} is documented but not served: {body}"
        );
        assert!(
            !(status == 404 && body.contains("no route for")),
            "{method} {path} is documented but not served: {body}"
        );
    }
}

/// `/docs` is Swagger UI from assets built into the binary: the page names no other origin,
/// its policy allows only its own, and every script and stylesheet it names is served.
async fn the_docs_page_loads_nothing_from_elsewhere(db: TestDatabase) {
    let app = TestApp::spawn(db).await;
    let response = app.get("/docs").await;
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("http") && !csp.contains("unsafe"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert!(
        !html.contains("<script>"),
        "an inline script needs 'unsafe-inline': {html}"
    );

    let mut referenced = Vec::new();
    for part in html.split(['"', '\'']) {
        if part.starts_with("/docs/") {
            referenced.push(part.to_owned());
        }
    }
    assert!(
        referenced.iter().any(|p| p.ends_with(".js")),
        "{referenced:?}"
    );
    assert!(
        referenced.iter().any(|p| p.ends_with(".css")),
        "{referenced:?}"
    );
    for path in referenced {
        let response = app.get(&path).await;
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if path.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(content_type.starts_with(expected), "{path}: {content_type}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }
    // The initializer points Swagger UI at this server's document, without the online validator.
    let script = app.get("/docs/docs.js").await.text().await.unwrap();
    assert!(script.contains("\"/api/v1/openapi.json\""), "{script}");
    assert!(script.contains("validatorUrl: null"), "{script}");
    assert_eq!(app.get("/docs/nothing.js").await.status().as_u16(), 404);
}
