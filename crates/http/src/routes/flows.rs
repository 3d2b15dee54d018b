//! Flows: the `/flows` API of `tests/fixtures/seeds/flows-api.txt`, served under `/api/v1`. A
//! flow's configuration is a JSON object kept as given; its run state is shown by
//! `/flows/status`. `docs/flows.md` is the reference.
//!
//! The seed's status codes are kept where they differ from the rest of the API: `PUT` and
//! `DELETE` of a flow that does not exist are 400 (the document lists no 404 for them), as is a
//! command naming an unknown flow. Bodies are read by [`crate::body`].

use actix_web::{HttpResponse, web};
use baton_domain::flow::{Flow, FlowCommand};
use baton_domain::services::ServiceError;
use baton_domain::services::flows::{CommandRequest, FlowPorts, FlowService};
use baton_domain::{RepoError, ValidationError};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::{Authorized, Develop, Operate, Read};
use crate::body::{Fields, json_object, json_value, wrong_type};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::routes::jobs::job_service;
use crate::state::AppState;
use crate::time_format::rfc3339;

/// The routes under `/api/v1`. The fixed paths come before `/flows/{flow_id}`; flow ids can
/// never be `status` or `commands`, so neither shadows a flow.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(limit_body(
        web::resource("/flows")
            .route(web::get().to(list))
            .route(web::post().to(create)),
        BodyLimit::BATCH,
    ))
    .service(web::resource("/flows/status").route(web::get().to(statuses)))
    .service(web::resource("/flows/status/{flow_id}").route(web::get().to(status)))
    .service(limit_body(
        web::resource("/flows/commands").route(web::patch().to(command)),
        BodyLimit::BATCH,
    ))
    .service(limit_body(
        web::resource("/flows/{flow_id}")
            .route(web::get().to(get))
            .route(web::put().to(replace))
            .route(web::delete().to(delete)),
        BodyLimit::BATCH,
    ));
}

/// The flow service over the server's state; a hard stop cancels through the job service.
pub fn flow_service(state: &AppState) -> FlowService {
    FlowService::new(
        FlowPorts::from_store(&state.store),
        std::sync::Arc::new(job_service(state)),
        state.clock.clone(),
        state.ids.clone(),
    )
}

// ---- responses ----

/// A flow's run state, as `/flows/status` shows it.
#[derive(Serialize)]
struct StatusView {
    status: &'static str,
    current_job_id: Option<String>,
    /// When the next job may start; `null` while a job runs or the flow is stopped.
    next_run_at: Option<String>,
}

impl From<&Flow> for StatusView {
    fn from(flow: &Flow) -> Self {
        Self {
            status: flow.status().as_str(),
            current_job_id: flow.current_job_id().map(|j| j.to_string()),
            next_run_at: flow.next_run_at().map(rfc3339),
        }
    }
}

/// `GET /flows/status/{flow_id}`: the status object with the flow's id in it.
#[derive(Serialize)]
struct OneStatusView {
    flow_id: String,
    #[serde(flatten)]
    state: StatusView,
}

/// One entry of a command's `details`.
#[derive(Serialize)]
struct Detail {
    flow_id: String,
    status: &'static str,
}

/// The configuration as the user gave it.
fn document(flow: &Flow) -> Value {
    Value::Object(flow.config().document().clone())
}

// ---- handlers ----

/// `GET /flows`: every configuration, oldest first.
async fn list(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let flows = flow_service(&state).list().await?;
    Ok(HttpResponse::Ok().json(flows.iter().map(document).collect::<Vec<_>>()))
}

/// `GET /flows/{flow_id}`: one configuration; 404 when there is none.
async fn get(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let flow = flow_service(&state)
        .get(&path)
        .await
        .map_err(|e| not_found_as_404(e, &path))?;
    Ok(HttpResponse::Ok().json(document(&flow)))
}

/// `POST /flows` with a JSON array of configurations: 201 when all were added; 400, with
/// nothing added, when the body is not an array or any configuration is refused.
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let configs = match json_value(&body)? {
        Value::Array(values) => values,
        other => {
            return Err(ValidationError::field(
                "body",
                wrong_type("a JSON array of configuration objects", &other),
            )
            .into());
        }
    };
    let flows = flow_service(&state).create(configs).await?;
    let ids: Vec<String> = flows.iter().map(|f| f.flow_id().to_string()).collect();
    tracing::info!(by = %caller.principal.display_id(), flows = ?ids, "flows added");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "message": "Configurations added successfully",
        "flow_ids": ids,
    })))
}

/// `PUT /flows/{flow_id}` with the whole new configuration (its `flow_id` may be left out; if
/// given it must be the path's). The run state is kept. 400 when the flow does not exist.
async fn replace(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let document = json_object(&body)?;
    let flow = flow_service(&state)
        .replace(&path, document)
        .await
        .map_err(|e| not_found_as_400(e, &path))?;
    tracing::info!(by = %caller.principal.display_id(), flow = %flow.flow_id(), "flow configuration replaced");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "message": "Configuration updated successfully",
        "flow_id": flow.flow_id().as_str(),
    })))
}

/// `DELETE /flows/{flow_id}`: 400 when the flow does not exist, as the seed says. A job the
/// flow started runs on.
async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    flow_service(&state)
        .delete(&path)
        .await
        .map_err(|e| not_found_as_400(e, &path))?;
    tracing::info!(by = %caller.principal.display_id(), flow = %path.as_str(), "flow deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "message": "Configuration deleted successfully",
        "flow_id": path.as_str(),
    })))
}

/// `GET /flows/status`: `{flow_id: {"status", "current_job_id", "next_run_at"}, …}`.
async fn statuses(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let flows = flow_service(&state).list().await?;
    let map: Map<String, Value> = flows
        .iter()
        .map(|f| {
            let view = serde_json::to_value(StatusView::from(f)).unwrap_or(Value::Null);
            (f.flow_id().to_string(), view)
        })
        .collect();
    Ok(HttpResponse::Ok().json(map))
}

/// `GET /flows/status/{flow_id}`: one status with `flow_id` in it; 404 when there is none.
async fn status(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let flow = flow_service(&state)
        .get(&path)
        .await
        .map_err(|e| not_found_as_404(e, &path))?;
    Ok(HttpResponse::Ok().json(OneStatusView {
        flow_id: flow.flow_id().to_string(),
        state: StatusView::from(&flow),
    }))
}

/// `PATCH /flows/commands` `{command, flow_ids?, type?}`: answers
/// `{"status": "Flows started", "details": [{"flow_id", "status"}, …]}` with each flow's status
/// after the command (a soft stop of a flow whose job still runs shows `stopping`).
async fn command(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body = json_object(&body)?;
    let request = read_command(&body)?;
    let command = request.command;
    let flows = flow_service(&state).command(request).await?;
    let details: Vec<Detail> = flows
        .iter()
        .map(|f| Detail {
            flow_id: f.flow_id().to_string(),
            status: f.status().as_str(),
        })
        .collect();
    tracing::info!(
        by = %caller.principal.display_id(),
        command = ?command,
        flows = ?details.iter().map(|d| d.flow_id.as_str()).collect::<Vec<_>>(),
        "flow command applied"
    );
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": summary(command),
        "details": details,
    })))
}

// ---- helpers ----

/// The seed's top-level `status` of a command's answer.
fn summary(command: FlowCommand) -> &'static str {
    match command {
        FlowCommand::Start => "Flows started",
        FlowCommand::Stop { .. } => "Flows stopped",
        FlowCommand::Pause => "Flows paused",
        FlowCommand::Resume => "Flows resumed",
    }
}

/// Reads a command body: `command` (required string), `flow_ids` (array of strings, optional:
/// without it every flow the command applies to), `type` (0 soft, 1 hard; for `stop`).
fn read_command(body: &Map<String, Value>) -> Result<CommandRequest, ValidationError> {
    let mut fields = Fields::new(body);
    let command = fields.required_text("command");
    let stop_type = fields.integer("type");
    let flow_ids = fields.texts("flow_ids");
    let command = command.and_then(|c| fields.check(FlowCommand::parse(&c, stop_type)));
    fields.finish()?;
    match command {
        Some(command) => Ok(CommandRequest { command, flow_ids }),
        // `finish` above refused a missing or unknown command with its reason.
        None => Err(ValidationError::field("command", "is required")),
    }
}

/// A missing flow on a read is a 404 naming the id.
fn not_found_as_404(err: ServiceError, id: &str) -> ApiError {
    match err {
        ServiceError::Repo(RepoError::NotFound(_)) => {
            ApiError::not_found(format!("flow not found: no flow has the id '{id}'"))
        }
        other => ApiError::from(other),
    }
}

/// A missing flow on a change is a 400 naming `flow_id`, as the seed document answers it.
fn not_found_as_400(err: ServiceError, id: &str) -> ApiError {
    match err {
        ServiceError::Repo(RepoError::NotFound("flow")) => ValidationError::field(
            "flow_id",
            format!("no flow has the id '{id}': add it with POST /api/v1/flows"),
        )
        .into(),
        other => ApiError::from(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(value: Value) -> Result<CommandRequest, ValidationError> {
        read_command(value.as_object().unwrap())
    }

    fn fields_of(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn commands_are_read_with_their_stop_type() {
        let r = read(json!({"command": "stop", "flow_ids": ["a"], "type": 1})).unwrap();
        assert_eq!(r.command, FlowCommand::Stop { hard: true });
        assert_eq!(r.flow_ids, Some(vec!["a".to_owned()]));
        let r = read(json!({"command": "stop", "flow_ids": ["a"]})).unwrap();
        assert_eq!(r.command, FlowCommand::Stop { hard: false });
        let r = read(json!({"command": "pause"})).unwrap();
        assert_eq!(r.command, FlowCommand::Pause);
        assert_eq!(r.flow_ids, None);
    }

    #[test]
    fn every_broken_field_of_a_command_is_named() {
        let err = read(json!({"command": 5, "flow_ids": "a", "type": "1"})).unwrap_err();
        assert_eq!(fields_of(&err), ["command", "type", "flow_ids"]);
        let err = read(json!({"flow_ids": ["a", 2, null]})).unwrap_err();
        assert_eq!(fields_of(&err), ["command", "flow_ids[1]", "flow_ids[2]"]);
        let err = read(json!({"command": "restart"})).unwrap_err();
        assert_eq!(fields_of(&err), ["command"]);
        let err = read(json!({"command": "stop", "type": 2})).unwrap_err();
        assert_eq!(fields_of(&err), ["type"]);
        let err = read(json!({"command": "stop", "type": 0.5})).unwrap_err();
        assert_eq!(fields_of(&err), ["type"]);
    }
}
