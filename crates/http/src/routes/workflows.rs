//! Workflows: CasareRPA's `POST /workflows` (submit), `POST /workflows/upload` (a JSON file),
//! `GET /workflows/{workflow_id}` and `DELETE /workflows/{workflow_id}`; ActiveWorkflow's
//! `GET /workflows` list; and `POST /webhooks/{token}`, which starts a job of a workflow
//! submitted with `trigger_type: webhook`. `docs/workflows.md` is the reference.
//!
//! The submit body is read by [`crate::body`], so a wrong JSON type is answered with the field it
//! concerns (`{"priority": "high"}` → `priority: must be an integer, not a string`) rather than
//! serde's position in the text. The rules themselves live in the domain's [`WorkflowService`],
//! which the upload shares.

use std::collections::HashMap;

use actix_multipart::{Field, Multipart, MultipartError};
use actix_web::{HttpRequest, HttpResponse, web};
use baton_domain::ids::WorkflowId;
use baton_domain::services::workflows::{
    RawSubmission, Started, Submission, Submitted, WorkflowService,
};
use baton_domain::trigger::TriggerKind;
use baton_domain::workflow::Workflow;
use baton_domain::{RepoError, ValidationError};
use futures_util::StreamExt as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::{Authorized, Develop, Principal, Read};
use crate::body::{Fields, json_object, optional_json_object};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::routes::agents::AgentBody;
use crate::state::AppState;
use crate::time_format::rfc3339;

/// The largest workflow file `POST /workflows/upload` accepts: 50 MB, the upload limit.
pub const MAX_UPLOAD_BYTES: usize = 50 * 1024 * 1024;
/// The largest value of a text field of the upload form (`trigger_type`, `priority`, …).
const MAX_FORM_TEXT_BYTES: usize = 64 * 1024;
/// What a whole upload form may carry besides its file: room for the text fields and for
/// fields this endpoint does not know, which are read and ignored.
const MAX_FORM_EXTRA_BYTES: usize = 1024 * 1024;
/// After refusing an oversized upload, up to this much more of it is read and discarded, so a
/// client still sending its body reads the 413 instead of a reset connection.
const DRAIN_AFTER_REFUSAL_BYTES: usize = 16 * 1024 * 1024;
/// The text fields of the upload form.
const FORM_TEXT_FIELDS: [&str; 5] = [
    "workflow_name",
    "trigger_type",
    "execution_mode",
    "priority",
    "schedule_cron",
];

/// Mounts the workflow routes and the webhook URL under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(limit_body(
        web::resource("/workflows")
            .route(web::get().to(list))
            .route(web::post().to(submit)),
        BodyLimit::DOCUMENT,
    ))
    // Before `/workflows/{workflow_id}`, so that `upload` is never taken for an id.
    .service(web::resource("/workflows/upload").route(web::post().to(upload)))
    .service(
        web::resource("/workflows/{workflow_id}")
            .route(web::get().to(get))
            .route(web::delete().to(delete)),
    )
    .service(limit_body(
        web::resource("/webhooks/{token}").route(web::post().to(run_webhook)),
        BodyLimit::DOCUMENT,
    ));
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// What `POST /workflows` and its upload answer: the CasareRPA document's six fields, plus
/// `webhook_url` for a webhook workflow.
#[derive(Serialize)]
struct SubmitResponse {
    workflow_id: String,
    job_id: Option<String>,
    schedule_id: Option<String>,
    status: &'static str,
    message: String,
    created_at: String,
    /// Shown once: only the token's hash is stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    webhook_url: Option<String>,
}

impl SubmitResponse {
    /// `origin` is the scheme and host webhook URLs are built on (see [`public_origin`]).
    fn new(submitted: &Submitted, origin: &str) -> Self {
        let workflow = &submitted.workflow;
        let mut response = Self {
            workflow_id: workflow.id.to_string(),
            job_id: None,
            schedule_id: None,
            status: "success",
            message: String::new(),
            created_at: rfc3339(workflow.created_at),
            webhook_url: None,
        };
        match &submitted.started {
            Started::Job(job) => {
                response.job_id = Some(job.id().to_string());
                response.message = format!(
                    "Workflow submitted and queued for {} execution",
                    job.execution_mode().as_str()
                );
            }
            Started::Schedule(trigger) => {
                response.schedule_id = Some(trigger.id().to_string());
                response.message = schedule_message(trigger.kind(), trigger.next_run());
            }
            Started::Webhook { token } => {
                response.webhook_url = Some(format!("{origin}/api/v1/webhooks/{token}"));
                response.message = "Workflow submitted: POST to webhook_url to run it; keep the \
                                    URL secret, it is shown only in this response"
                    .to_owned();
            }
        }
        response
    }
}

fn schedule_message(kind: &TriggerKind, next_run: Option<baton_domain::Timestamp>) -> String {
    let cron = match kind {
        TriggerKind::Scheduled(cron) => format!("'{}' ({})", cron.expression(), cron.timezone()),
        _ => String::new(),
    };
    match next_run {
        Some(next) => format!(
            "Workflow submitted and scheduled {cron}; next run at {}",
            rfc3339(next)
        ),
        None => format!("Workflow submitted and scheduled {cron}"),
    }
}

/// The scheme and host the client reached this server by, for absolute URLs in responses.
///
/// `Forwarded` and `X-Forwarded-Proto`/`-Host` are believed only from a trusted proxy
/// (`--trusted-proxies`), as `X-Forwarded-For` is: from anyone else they could point a URL
/// Baton hands out at another host. Without a trusted proxy the scheme is `http`, since `baton`
/// serves plain HTTP, and the host is the request's `Host` header.
fn public_origin(state: &AppState, req: &HttpRequest) -> String {
    let from_trusted_proxy = req
        .peer_addr()
        .is_some_and(|peer| state.access.trusts_proxy(peer.ip()));
    if from_trusted_proxy {
        let info = req.connection_info();
        return format!("{}://{}", info.scheme(), info.host());
    }
    let host = req
        .headers()
        .get(actix_web::http::header::HOST)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_else(|| req.app_config().host());
    format!("http://{host}")
}

/// A workflow in ActiveWorkflow's list (`id`, `name`, `description`), with the CasareRPA names
/// of the same values and its version and times.
#[derive(Serialize)]
struct WorkflowSummary<'a> {
    id: String,
    name: &'a str,
    description: Option<&'a str>,
    workflow_id: String,
    workflow_name: &'a str,
    version: i32,
    created_at: String,
    updated_at: String,
}

impl<'a> From<&'a Workflow> for WorkflowSummary<'a> {
    fn from(workflow: &'a Workflow) -> Self {
        Self {
            id: workflow.id.to_string(),
            name: workflow.name.as_str(),
            description: workflow.description.as_deref(),
            workflow_id: workflow.id.to_string(),
            workflow_name: workflow.name.as_str(),
            version: workflow.version,
            created_at: rfc3339(workflow.created_at),
            updated_at: rfc3339(workflow.updated_at),
        }
    }
}

/// One workflow: the union of both documents' fields, i.e. the summary plus the graph as
/// submitted, the metadata and, in responses, the agents. Backup files leave the agents out:
/// they are derived from the graph, and their message counts change by the minute.
#[derive(Serialize)]
struct WorkflowDetail<'a> {
    #[serde(flatten)]
    summary: WorkflowSummary<'a>,
    workflow_json: &'a Value,
    metadata: &'a Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agents: Option<Vec<AgentBody>>,
}

impl<'a> WorkflowDetail<'a> {
    fn new(workflow: &'a Workflow, agents: Option<Vec<AgentBody>>) -> Self {
        Self {
            summary: WorkflowSummary::from(workflow),
            workflow_json: workflow.graph.source(),
            metadata: &workflow.metadata,
            agents,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Handlers
// ---------------------------------------------------------------------------------------------

/// `POST /workflows`: stores a workflow and starts it as `trigger_type` says.
async fn submit(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let raw = read_submission(json_object(&body)?)?;
    submit_raw(&state, &req, &caller.principal, raw).await
}

/// `POST /workflows/upload`: the same, from a multipart form whose `file` holds the graph.
async fn upload(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    req: HttpRequest,
    mut form: Multipart,
) -> ApiResult<HttpResponse> {
    let upload = read_upload(&mut form).await?;
    let raw = upload.into_submission()?;
    submit_raw(&state, &req, &caller.principal, raw).await
}

async fn submit_raw(
    state: &AppState,
    req: &HttpRequest,
    caller: &Principal,
    raw: RawSubmission,
) -> ApiResult<HttpResponse> {
    let submission = Submission::parse(raw)?;
    let submitted = service(state).submit(submission).await?;
    let workflow = &submitted.workflow;
    tracing::info!(
        by = %caller.display_id(),
        workflow = %workflow.id,
        nodes = workflow.graph.nodes().len(),
        started = started_kind(&submitted.started),
        "workflow submitted"
    );
    if let Some(backup) = &state.workflow_backup {
        backup
            .save(workflow.id, &WorkflowDetail::new(workflow, None))
            .await;
    }
    Ok(HttpResponse::Ok().json(SubmitResponse::new(&submitted, &public_origin(state, req))))
}

fn started_kind(started: &Started) -> &'static str {
    match started {
        Started::Job(_) => "job",
        Started::Schedule(_) => "schedule",
        Started::Webhook { .. } => "webhook",
    }
}

/// `GET /workflows`: every workflow, oldest first.
async fn list(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let workflows = state.store.list_workflows().await?;
    Ok(HttpResponse::Ok().json(
        workflows
            .iter()
            .map(WorkflowSummary::from)
            .collect::<Vec<_>>(),
    ))
}

/// `GET /workflows/{workflow_id}`: one workflow with its graph and agents.
async fn get(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = workflow_id(&path)?;
    let workflow = state.store.get_workflow(id).await?;
    let agents = state.store.list_agents(Some(id), state.clock.now()).await?;
    let agents = agents.iter().map(AgentBody::from).collect();
    Ok(HttpResponse::Ok().json(WorkflowDetail::new(&workflow, Some(agents))))
}

/// `DELETE /workflows/{workflow_id}`: the workflow with its agents, messages, schedules and
/// webhook, and its backup file. Its jobs keep their records.
async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = workflow_id(&path)?;
    service(&state).delete(id).await?;
    tracing::info!(by = %caller.principal.display_id(), workflow = %id, "workflow deleted");
    if let Some(backup) = &state.workflow_backup {
        backup.remove(id).await;
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("Workflow deleted: {id}"),
    })))
}

/// `POST /webhooks/{token}`: starts a job of the token's workflow. The token is the only
/// credential. A JSON object body becomes the job's input; an empty body is an empty input.
/// An unknown token is a plain 404: it is not counted as a failed authentication, since a
/// 256-bit secret cannot be guessed and a deleted workflow's URL must not ban its caller.
async fn run_webhook(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let input = webhook_input(&body)?;
    let job = service(&state).run_webhook(&path, input).await?;
    tracing::info!(workflow = %job.workflow_id(), job = %job.id(), "webhook started a job");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "job_id": job.id().to_string(),
        "workflow_id": job.workflow_id().to_string(),
        "message": format!("Job queued for {} execution", job.execution_mode().as_str()),
        "created_at": rfc3339(job.created_at()),
    })))
}

/// The job's input: a JSON object, or `{}` for an empty body.
fn webhook_input(body: &[u8]) -> ApiResult<Map<String, Value>> {
    optional_json_object(body)
}

fn service(state: &AppState) -> WorkflowService {
    WorkflowService::from_store(state.store.clone(), state.clock.clone(), state.ids.clone())
}

/// A workflow id from the path; text that is not a UUID names no workflow, so it is a 404.
fn workflow_id(text: &str) -> Result<WorkflowId, RepoError> {
    text.parse().map_err(|_| RepoError::NotFound("workflow"))
}

// ---------------------------------------------------------------------------------------------
// Reading a submission
// ---------------------------------------------------------------------------------------------

/// Takes the submit body apart field by field. Every wrong JSON type is reported at once, by
/// field name; the domain then checks the values.
fn read_submission(mut body: Map<String, Value>) -> Result<RawSubmission, ValidationError> {
    // Taken out rather than copied: the graph is most of the body.
    let workflow_json = body.remove("workflow_json").filter(|v| !v.is_null());
    let mut fields = Fields::new(&body);
    let raw = RawSubmission {
        workflow_name: fields.text("workflow_name"),
        // Its type is the graph's first rule: the domain answers "must be a JSON object".
        workflow_json,
        description: fields.text("description"),
        trigger_type: fields.text("trigger_type"),
        execution_mode: fields.text("execution_mode"),
        schedule_cron: fields.text("schedule_cron"),
        priority: fields.integer("priority"),
        metadata: fields.object("metadata").unwrap_or_default(),
    };
    fields.finish()?;
    Ok(raw)
}

// ---------------------------------------------------------------------------------------------
// Reading an upload
// ---------------------------------------------------------------------------------------------

/// What an upload form carried.
struct Upload {
    filename: String,
    content: Vec<u8>,
    /// The known text fields, by name.
    text: HashMap<&'static str, String>,
}

impl Upload {
    /// The submission the file describes. The file is the `workflow_json`; its name is the
    /// form's `workflow_name`, else the file's `workflow_name` or `name`, else the file name
    /// without `.json`. A file that is a whole submit body (it has a `workflow_json` object) is
    /// read as one, so a body saved from `POST /workflows` uploads as it submits.
    fn into_submission(mut self) -> ApiResult<RawSubmission> {
        let parsed = serde_json::from_slice::<Value>(&self.content);
        if let Ok(document) = &parsed {
            crate::body::refuse_nul(document, "file")?;
        }
        let mut file = match parsed {
            Ok(Value::Object(map)) => map,
            Ok(_) => {
                return Err(ValidationError::field(
                    "file",
                    "must hold a JSON object: the workflow, with its nodes",
                )
                .into());
            }
            Err(e) => {
                return Err(
                    ValidationError::field("file", format!("is not valid JSON: {e}")).into(),
                );
            }
        };
        let text_of = |map: &Map<String, Value>, key: &str| {
            map.get(key).and_then(Value::as_str).map(str::to_owned)
        };
        let stem = self
            .filename
            .get(..self.filename.len().saturating_sub(".json".len()))
            .unwrap_or_default()
            .to_owned();
        let name = self
            .text
            .remove("workflow_name")
            .or_else(|| text_of(&file, "workflow_name"))
            .or_else(|| text_of(&file, "name"))
            .unwrap_or(stem);
        let description = text_of(&file, "description");
        let metadata = match file.get("metadata") {
            Some(Value::Object(map)) => map.clone(),
            _ => Map::new(),
        };
        let workflow_json = match file.remove("workflow_json") {
            Some(Value::Object(graph)) => Value::Object(graph),
            Some(other) => {
                file.insert("workflow_json".to_owned(), other);
                Value::Object(file)
            }
            None => Value::Object(file),
        };
        let priority = match self.text.remove("priority") {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<i64>()
                    .map_err(|_| ValidationError::field("priority", "must be an integer"))?,
            ),
        };
        Ok(RawSubmission {
            workflow_name: Some(name),
            workflow_json: Some(workflow_json),
            description,
            trigger_type: self.text.remove("trigger_type"),
            execution_mode: self.text.remove("execution_mode"),
            schedule_cron: self.text.remove("schedule_cron"),
            priority,
            metadata,
        })
    }
}

/// Why reading the form stopped.
enum FormError {
    /// The file, a text field or the whole form is over its limit: 413. The text says which
    /// limit; `drained` whether the oversized field was read to its end within the drain bound,
    /// so the fields after it may be drained too.
    TooLarge {
        message: String,
        drained: bool,
    },
    Refused(ApiError),
}

impl From<ApiError> for FormError {
    fn from(err: ApiError) -> Self {
        Self::Refused(err)
    }
}

impl From<MultipartError> for FormError {
    fn from(err: MultipartError) -> Self {
        Self::Refused(multipart_error(err))
    }
}

/// Reads the form: the `file` (once, a `.json` name, at most 50 MB) and the known text fields;
/// other fields are read and ignored, within a small budget.
async fn read_upload(form: &mut Multipart) -> ApiResult<Upload> {
    match read_form(form).await {
        Ok(upload) => Ok(upload),
        Err(FormError::Refused(err)) => Err(err),
        Err(FormError::TooLarge { message, drained }) => {
            // Asking the form for its next field would read the rest of an oversized field
            // without bound; only a field drained to its end lets the drain go on.
            if drained {
                drain(form).await;
            }
            Err(ApiError::payload_too_large(message))
        }
    }
}

async fn read_form(form: &mut Multipart) -> Result<Upload, FormError> {
    let mut file: Option<(String, Vec<u8>)> = None;
    let mut text = HashMap::new();
    let mut extra_budget = MAX_FORM_EXTRA_BYTES;
    while let Some(field) = form.next().await {
        let mut field = field?;
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if file.is_some() {
                return Err(ValidationError::field("file", "must be sent once").into_form_error());
            }
            let filename = json_filename(&field)?;
            let content = read_field(&mut field, MAX_UPLOAD_BYTES, || {
                format!(
                    "the file is larger than the upload limit of {} MB",
                    MAX_UPLOAD_BYTES / (1024 * 1024)
                )
            })
            .await?;
            file = Some((filename, content));
        } else if let Some(known) = FORM_TEXT_FIELDS.iter().find(|f| **f == name) {
            let bytes = read_field(&mut field, MAX_FORM_TEXT_BYTES, || {
                format!(
                    "the form field '{known}' is longer than {} KB",
                    MAX_FORM_TEXT_BYTES / 1024
                )
            })
            .await?;
            extra_budget = extra_budget.saturating_sub(bytes.len());
            let value = String::from_utf8(bytes).map_err(|_| {
                ValidationError::field(*known, "must be UTF-8 text").into_form_error()
            })?;
            // An empty value (`-F priority=`) is the default, like an absent one.
            if !value.trim().is_empty() {
                text.insert(*known, value);
            }
        } else {
            let ignored = read_field(&mut field, extra_budget, || {
                format!(
                    "the form's fields besides the file hold more than {} KB",
                    MAX_FORM_EXTRA_BYTES / 1024
                )
            })
            .await?;
            extra_budget -= ignored.len();
        }
    }
    let Some((filename, content)) = file else {
        return Err(
            ValidationError::field("file", "is required: a .json file of the workflow")
                .into_form_error(),
        );
    };
    Ok(Upload {
        filename,
        content,
        text,
    })
}

/// The `.json` file name of the `file` field.
fn json_filename(field: &Field) -> Result<String, FormError> {
    let filename = field
        .content_disposition()
        .and_then(|cd| cd.get_filename())
        .map(|name| {
            // Browsers and some clients send a path; only its last part is the file's name.
            name.rsplit(['/', '\\']).next().unwrap_or(name).to_owned()
        });
    match filename {
        Some(name) if name.to_ascii_lowercase().ends_with(".json") => Ok(name),
        Some(_) => {
            Err(ValidationError::field("file", "must have a .json extension").into_form_error())
        }
        None => Err(ValidationError::field(
            "file",
            "must be a file (with a file name ending in .json), not a text field",
        )
        .into_form_error()),
    }
}

/// A field's bytes, refusing more than `limit` with the message `too_large` gives.
async fn read_field(
    field: &mut Field,
    limit: usize,
    too_large: impl FnOnce() -> String,
) -> Result<Vec<u8>, FormError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk?;
        if bytes.len() + chunk.len() > limit {
            let drained = drain_field(field, DRAIN_AFTER_REFUSAL_BYTES)
                .await
                .is_some();
            return Err(FormError::TooLarge {
                message: too_large(),
                drained,
            });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// Reads and discards what is left of a refused form, up to a bound, so a client still sending
/// reads the 413 rather than a reset connection; past the bound the connection is closed with
/// the response.
async fn drain(form: &mut Multipart) {
    let mut left = DRAIN_AFTER_REFUSAL_BYTES;
    while let Some(Ok(mut field)) = form.next().await {
        match drain_field(&mut field, left).await {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

/// Discards the rest of a field, reading at most `budget` bytes; returns the budget left, or
/// `None` when the field is longer (or broken) and was not read to its end.
async fn drain_field(field: &mut Field, mut budget: usize) -> Option<usize> {
    while let Some(chunk) = field.next().await {
        let chunk = chunk.ok()?;
        budget = budget.checked_sub(chunk.len())?;
    }
    Some(budget)
}

fn multipart_error(err: MultipartError) -> ApiError {
    match err {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible
        | MultipartError::BoundaryMissing => ApiError::bad_request(
            "the upload must be a multipart/form-data body with a `file` field (curl -F \
             file=@workflow.json)",
        ),
        other => ApiError::bad_request(format!(
            "the upload is not a valid multipart/form-data body: {other}"
        )),
    }
}

trait IntoFormError {
    fn into_form_error(self) -> FormError;
}

impl IntoFormError for ValidationError {
    fn into_form_error(self) -> FormError {
        FormError::Refused(self.into())
    }
}
