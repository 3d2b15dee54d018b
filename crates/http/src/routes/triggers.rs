//! Triggers: PyOrchestrator's `POST /api/trigger` at the root (set a SINGLE trigger's process
//! status), and Baton's triggers CRUD under `/api/v1`. `docs/triggers.md` is the
//! reference.
//!
//! Write bodies are read by [`crate::body`] (`{"trigger_name": 5}` →
//! `trigger_name: must be a string, not a number`), instants in every form it accepts.

use actix_web::{HttpResponse, web};
use baton_domain::ids::{TriggerId, WorkflowId};
use baton_domain::ports::TriggerFilter;
use baton_domain::services::ServiceError;
use baton_domain::services::triggers::{StatusChange, TriggerInput, TriggerService};
use baton_domain::trigger::{Trigger, TriggerKind, TriggerType};
use baton_domain::{FieldError, RepoError, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{Authorized, Develop, Operate, Read};
use crate::body::{Fields, json_object};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(limit_body(
        web::resource("/triggers")
            .route(web::get().to(list))
            .route(web::post().to(create)),
        BodyLimit::BATCH,
    ))
    .service(limit_body(
        web::resource("/triggers/{id}")
            .route(web::get().to(get))
            .route(web::put().to(update))
            .route(web::delete().to(delete)),
        BodyLimit::BATCH,
    ));
}

/// Root-level routes (PyOrchestrator's).
pub fn configure_root(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/trigger").route(web::post().to(set_status)));
}

// ---- responses ----

/// A trigger as the API shows it: every field a client can set, what the engine keeps
/// (next and last run, counts, the current job), and instants in RFC 3339 UTC. Fields of
/// another type (e.g. `cron_expression` of a QUEUE trigger) are null.
#[derive(Serialize)]
struct TriggerView {
    id: String,
    trigger_name: String,
    #[serde(rename = "type")]
    trigger_type: &'static str,
    workflow_id: String,
    cron_expression: Option<String>,
    timezone: Option<String>,
    queue_name: Option<String>,
    min_batch_size: Option<u32>,
    process_status: &'static str,
    enabled: bool,
    priority: u8,
    is_blocking: bool,
    execution_mode: &'static str,
    process_args: Map<String, Value>,
    next_run: Option<String>,
    last_run: Option<String>,
    run_count: u64,
    failure_count: u64,
    current_job_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<&Trigger> for TriggerView {
    fn from(t: &Trigger) -> Self {
        let (cron_expression, timezone) = match t.cron() {
            Some(cron) => (
                Some(cron.expression().to_owned()),
                Some(cron.timezone().to_owned()),
            ),
            None => (None, None),
        };
        let (queue_name, min_batch_size) = match t.kind() {
            TriggerKind::Queue {
                queue_name,
                min_batch_size,
            } => (Some(queue_name.as_str().to_owned()), Some(*min_batch_size)),
            TriggerKind::Single | TriggerKind::Scheduled(_) => (None, None),
        };
        Self {
            id: t.id().to_string(),
            trigger_name: t.name().to_string(),
            trigger_type: t.kind().type_name().as_str(),
            workflow_id: t.workflow_id().to_string(),
            cron_expression,
            timezone,
            queue_name,
            min_batch_size,
            process_status: t.process_status().as_str(),
            enabled: t.enabled(),
            priority: t.priority().value(),
            is_blocking: t.is_blocking(),
            execution_mode: t.execution_mode().as_str(),
            process_args: t.process_args().clone(),
            next_run: t.next_run().map(rfc3339),
            last_run: t.last_run().map(rfc3339),
            run_count: t.run_count(),
            failure_count: t.failure_count(),
            current_job_id: t.current_job_id().map(|j| j.to_string()),
            created_at: rfc3339(t.created_at()),
            updated_at: rfc3339(t.updated_at()),
        }
    }
}

/// PyOrchestrator's answer to a status change, field for field.
#[derive(Serialize)]
struct StatusSet {
    success: bool,
    trigger_name: String,
    new_status: &'static str,
}

// ---- handlers ----

/// `POST /api/trigger`: sets the process status (IDLE by default) of the SINGLE trigger named;
/// an unknown name or a trigger of another type is a 404, as the seed document says.
async fn set_status(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body = json_object(&body)?;
    let mut fields = Fields::new(&body);
    let trigger_name = fields.text("trigger_name");
    let process_status = fields.text("process_status");
    let change = StatusChange {
        trigger_name,
        process_status,
        unreadable: fields.into_errors(),
    };
    let name = change.trigger_name.clone().unwrap_or_default();
    let trigger = service(&state)
        .set_status_by_name(change)
        .await
        .map_err(|e| match e {
            ServiceError::Repo(RepoError::NotFound(_)) => ApiError::not_found(format!(
                "no SINGLE trigger is named '{name}': /api/trigger sets the status of SINGLE \
                 triggers only"
            )),
            other => ApiError::from(other),
        })?;
    tracing::info!(
        by = %caller.principal.display_id(),
        trigger = %trigger.name(),
        status = %trigger.process_status(),
        "trigger process status set"
    );
    Ok(HttpResponse::Ok().json(StatusSet {
        success: true,
        trigger_name: trigger.name().to_string(),
        new_status: trigger.process_status().as_str(),
    }))
}

/// `POST /triggers`: creates a trigger, answered 201 with the stored trigger.
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let input = read_input(&body)?;
    let trigger = service(&state).create(input).await?;
    tracing::info!(
        by = %caller.principal.display_id(),
        trigger = %trigger.name(),
        id = %trigger.id(),
        trigger_type = trigger.kind().type_name().as_str(),
        "trigger created"
    );
    Ok(HttpResponse::Created().json(TriggerView::from(&trigger)))
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "type")]
    trigger_type: Option<String>,
    workflow_id: Option<String>,
    enabled: Option<String>,
}

/// `GET /triggers?type=&workflow_id=&enabled=`: every trigger matching, oldest first.
async fn list(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let filter = read_filter(query.into_inner())?;
    let triggers = state.store.list_triggers(&filter).await?;
    Ok(HttpResponse::Ok().json(triggers.iter().map(TriggerView::from).collect::<Vec<_>>()))
}

/// `GET /triggers/{id}`.
async fn get(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let trigger = state.store.get_trigger(trigger_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(TriggerView::from(&trigger)))
}

/// `PUT /triggers/{id}`: changes the fields given (the same as `POST /triggers` takes) and
/// keeps the others.
async fn update(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = trigger_id(&path)?;
    let input = read_input(&body)?;
    let trigger = service(&state).update(id, input).await?;
    tracing::info!(
        by = %caller.principal.display_id(),
        trigger = %trigger.name(),
        id = %trigger.id(),
        "trigger changed"
    );
    Ok(HttpResponse::Ok().json(TriggerView::from(&trigger)))
}

/// `DELETE /triggers/{id}`. Jobs the trigger started keep their records.
async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = trigger_id(&path)?;
    service(&state).delete(id).await?;
    tracing::info!(by = %caller.principal.display_id(), id = %id, "trigger deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("Trigger deleted: {id}"),
    })))
}

// ---- helpers ----

fn service(state: &AppState) -> TriggerService {
    TriggerService::new(
        state.store.clone(),
        state.store.clone(),
        state.store.clone(),
        state.clock.clone(),
        state.ids.clone(),
    )
}

/// A trigger id from the path; text that is not a UUID names no trigger, so it is a 404.
fn trigger_id(text: &str) -> ApiResult<TriggerId> {
    text.parse()
        .map_err(|_| ApiError::not_found("trigger not found: the id is not a UUID"))
}

/// The fields of `POST /triggers` and `PUT /triggers/{id}`, with their JSON types checked; the
/// rules of their values are the domain's.
fn read_input(body: &[u8]) -> ApiResult<TriggerInput> {
    let body = json_object(body)?;
    let mut f = Fields::new(&body);
    let input = TriggerInput {
        trigger_name: f.text("trigger_name"),
        trigger_type: f.text("type"),
        workflow_id: f.text("workflow_id"),
        cron_expression: f.text("cron_expression"),
        timezone: f.text("timezone"),
        queue_name: f.text("queue_name"),
        min_batch_size: f.integer("min_batch_size"),
        process_status: f.text("process_status"),
        enabled: f.flag("enabled"),
        priority: f.integer("priority"),
        is_blocking: f.flag("is_blocking"),
        execution_mode: f.text("execution_mode"),
        process_args: f.object("process_args"),
        next_run: f.instant("next_run"),
        unreadable: Vec::new(),
    };
    Ok(TriggerInput {
        unreadable: f.into_errors(),
        ..input
    })
}

/// The filters of `GET /triggers`, each refused by name when invalid.
fn read_filter(query: ListQuery) -> Result<TriggerFilter, ValidationError> {
    let mut errors = Vec::new();
    let mut push = |field: &str, message: &str| {
        errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    };
    let trigger_type = match query.trigger_type.filter(|t| !t.is_empty()) {
        Some(text) => text
            .parse::<TriggerType>()
            .map_err(|_| push("type", "must be one of SINGLE, SCHEDULED, QUEUE"))
            .ok(),
        None => None,
    };
    let workflow_id = match query.workflow_id.filter(|w| !w.is_empty()) {
        Some(text) => text
            .parse::<WorkflowId>()
            .map_err(|_| push("workflow_id", "must be a UUID"))
            .ok(),
        None => None,
    };
    let enabled = match query.enabled.as_deref() {
        None | Some("") => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(_) => {
            push("enabled", "must be true or false");
            None
        }
    };
    if errors.is_empty() {
        Ok(TriggerFilter {
            trigger_type,
            workflow_id,
            enabled,
            limit: 0,
            after: None,
        })
    } else {
        Err(ValidationError { errors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn input_of(value: Value) -> TriggerInput {
        read_input(value.to_string().as_bytes()).unwrap()
    }

    fn unreadable_fields(input: &TriggerInput) -> Vec<&str> {
        input.unreadable.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn every_field_is_read_with_its_json_type() {
        let input = input_of(json!({
            "trigger_name": "t", "type": "QUEUE", "workflow_id": "w",
            "cron_expression": "c", "timezone": "z", "queue_name": "q",
            "min_batch_size": 3, "process_status": "IDLE", "enabled": false,
            "priority": 2, "is_blocking": true, "execution_mode": "lan",
            "process_args": {"a": 1}, "next_run": "2025-04-26T12:00:00+02:00"
        }));
        assert!(input.unreadable.is_empty());
        assert_eq!(input.trigger_type.as_deref(), Some("QUEUE"));
        assert_eq!(input.min_batch_size, Some(3));
        assert_eq!(input.enabled, Some(false));
        assert_eq!(input.process_args.unwrap()["a"], 1);
        assert_eq!(input.next_run, Some(datetime!(2025-04-26 10:00 UTC)));
    }

    #[test]
    fn wrong_types_are_recorded_under_their_field_names() {
        let input = input_of(json!({
            "trigger_name": 5, "type": ["SINGLE"], "workflow_id": {}, "enabled": "yes",
            "priority": 1.5, "min_batch_size": "3", "process_args": [1], "next_run": "soon"
        }));
        assert_eq!(
            unreadable_fields(&input),
            [
                "trigger_name",
                "type",
                "workflow_id",
                "min_batch_size",
                "enabled",
                "priority",
                "process_args",
                "next_run"
            ]
        );
        assert_eq!(
            input.unreadable[0].message,
            "must be a string, not a number"
        );
    }

    #[test]
    fn null_and_absent_fields_are_not_given() {
        let input = input_of(json!({"trigger_name": null, "priority": null}));
        assert_eq!(input, TriggerInput::default());
    }

    #[test]
    fn numbers_beyond_i64_reach_the_domain_as_out_of_range() {
        let input = input_of(json!({"priority": u64::MAX}));
        assert_eq!(input.priority, Some(i64::MAX));
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_400s() {
        for body in ["", "{", "[]", "\"x\"", "5", "null"] {
            let err = read_input(body.as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body:?}");
        }
    }

    #[test]
    fn next_run_takes_every_instant_form_the_queues_take() {
        for (text, expected) in [
            ("2025-04-26T12:00:00", datetime!(2025-04-26 12:00 UTC)),
            ("2025-04-26 12:00:00", datetime!(2025-04-26 12:00 UTC)),
            (
                "2025-04-26 12:00:00.123456",
                datetime!(2025-04-26 12:00:00.123456 UTC),
            ),
            ("2025-04-26", datetime!(2025-04-26 0:00 UTC)),
        ] {
            let input = input_of(json!({"next_run": text}));
            assert!(input.unreadable.is_empty(), "{text}");
            assert_eq!(input.next_run, Some(expected), "{text}");
        }
        let input = input_of(json!({"next_run": "2025-13-01T00:00:00Z"}));
        assert_eq!(unreadable_fields(&input), ["next_run"]);
    }

    #[test]
    fn list_filters_are_checked_by_name() {
        let filter = read_filter(ListQuery {
            trigger_type: Some("queue".into()),
            workflow_id: None,
            enabled: Some("true".into()),
        })
        .unwrap();
        assert_eq!(filter.trigger_type, Some(TriggerType::Queue));
        assert_eq!(filter.enabled, Some(true));
        let err = read_filter(ListQuery {
            trigger_type: Some("CRON".into()),
            workflow_id: Some("x".into()),
            enabled: Some("maybe".into()),
        })
        .unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["type", "workflow_id", "enabled"]);
    }
}
