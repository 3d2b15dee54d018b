//! `HttpRequest`: calls `config.url` (`method` default GET, `headers`, `body`: a string is sent
//! as is, anything else as JSON; `timeout_seconds` default 30) and outputs `{status, body}`,
//! with `body` as JSON when it parses and as text otherwise, cut at 64 KB. An answer of 400 or
//! more fails the node unless `fail_on_error_status` is false.

use std::time::Duration;

use reqwest::{Method, Url};
use serde_json::{Value, json};

use super::{
    MAX_CAPTURE_BYTES, NodeContext, NodeError, NodeResult, boolean, field, required_string,
    seconds, string,
};
use crate::client::describe;
use crate::text::lossy_capped;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const MAX_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn run(cx: NodeContext<'_>) -> NodeResult {
    let config = cx.config;
    let url = required_string(config, "url")?;
    let url = Url::parse(url).map_err(|e| NodeError::new(format!("config.url: {e}")))?;
    match url.scheme() {
        "http" => {}
        "https" => {
            return Err(NodeError::new(
                "config.url is https://, but this build of baton-robot has no TLS: call an \
                 http:// URL (e.g. through a local TLS-terminating proxy)",
            ));
        }
        other => {
            return Err(NodeError::new(format!(
                "config.url must be an http:// URL, not {other}:"
            )));
        }
    }
    let method = string(config, "method")?
        .unwrap_or("GET")
        .to_ascii_uppercase();
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| NodeError::new(format!("config.method '{method}' is not an HTTP method")))?;
    let timeout = seconds(config, "timeout_seconds", DEFAULT_TIMEOUT, MAX_TIMEOUT)?;
    let fail_on_error_status = boolean(config, "fail_on_error_status", true)?;
    let mut request = cx.services.http.request(method, url).timeout(timeout);
    match field(config, "headers") {
        None => {}
        Some(Value::Object(headers)) => {
            for (name, value) in headers {
                let value = match value {
                    Value::String(s) => s.clone(),
                    Value::Number(_) | Value::Bool(_) => value.to_string(),
                    _ => {
                        return Err(NodeError::new(format!(
                            "config.headers.{name} must be a string"
                        )));
                    }
                };
                request = request.header(name.as_str(), value);
            }
        }
        Some(_) => return Err(NodeError::new("config.headers must be an object")),
    }
    request = match field(config, "body") {
        None => request,
        Some(Value::String(text)) => request.body(text.clone()),
        Some(other) => request.json(other),
    };
    let mut response = request
        .send()
        .await
        .map_err(|e| NodeError::new(format!("the request failed: {}", describe(&e))))?;
    let status = response.status().as_u16();
    let (bytes, truncated) = read_capped(&mut response).await?;
    let body = (!truncated)
        .then(|| serde_json::from_slice::<Value>(&bytes).ok())
        .flatten()
        .unwrap_or_else(|| Value::String(lossy_capped(&bytes, MAX_CAPTURE_BYTES).0));
    let mut output = json!({ "status": status, "body": body });
    if truncated {
        output["truncated"] = Value::Bool(true);
    }
    if fail_on_error_status && status >= 400 {
        return Err(NodeError::with_output(
            format!("the server answered HTTP {status}"),
            output,
        ));
    }
    Ok(Some(output))
}

/// The body's first [`MAX_CAPTURE_BYTES`], read chunk by chunk so a huge answer is never held
/// whole; `true` when there was more.
async fn read_capped(response: &mut reqwest::Response) -> Result<(Vec<u8>, bool), NodeError> {
    let mut bytes = Vec::new();
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| NodeError::new(format!("reading the answer failed: {}", describe(&e))))?;
        let Some(chunk) = chunk else {
            return Ok((bytes, false));
        };
        let room = MAX_CAPTURE_BYTES - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok((bytes, true));
        }
        bytes.extend_from_slice(&chunk);
    }
}

#[cfg(test)]
mod tests {
    use super::super::NodeKind;
    use super::super::testing::{run_node, serve_once};
    use serde_json::json;

    #[tokio::test]
    async fn outputs_status_and_json_body_and_sends_what_it_is_told() {
        let (url, request) = serve_once(200, r#"{"ok":true}"#).await;
        let out = run_node(
            NodeKind::HttpRequest,
            json!({"url": url, "method": "post", "headers": {"X-Test": "yes"}, "body": {"a": 1}}),
        )
        .await;
        assert_eq!(out, Ok(Some(json!({"status": 200, "body": {"ok": true}}))));
        let request = request.await.unwrap();
        assert!(request.starts_with("POST /path"), "{request}");
        assert!(
            request.to_ascii_lowercase().contains("x-test: yes"),
            "{request}"
        );
        assert!(request.ends_with(r#"{"a":1}"#), "{request}");
    }

    #[tokio::test]
    async fn text_bodies_stay_text_and_error_statuses_fail_unless_allowed() {
        let (url, _) = serve_once(503, "down").await;
        let error = run_node(NodeKind::HttpRequest, json!({ "url": url }))
            .await
            .unwrap_err();
        assert_eq!(error.message, "the server answered HTTP 503");
        assert_eq!(error.output, Some(json!({"status": 503, "body": "down"})));
        let (url, _) = serve_once(404, "missing").await;
        let out = run_node(
            NodeKind::HttpRequest,
            json!({"url": url, "fail_on_error_status": false}),
        )
        .await;
        assert_eq!(out, Ok(Some(json!({"status": 404, "body": "missing"}))));
    }

    #[tokio::test]
    async fn bad_configs_and_unreachable_servers_fail_the_node() {
        for config in [
            json!({}),
            json!({"url": "not a url"}),
            json!({"url": "https://example.com"}),
            json!({"url": "ftp://example.com"}),
            json!({"url": "http://127.0.0.1:9", "method": "NOT A METHOD"}),
            json!({"url": "http://127.0.0.1:9", "headers": ["x"]}),
            json!({"url": "http://127.0.0.1:9"}),
        ] {
            let out = run_node(NodeKind::HttpRequest, config.clone()).await;
            assert!(out.is_err(), "{config}: {out:?}");
        }
    }
}
