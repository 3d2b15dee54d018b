//! CasareRPA's schedules under `/api/v1/schedules`, served as its document describes them. A
//! schedule is a SCHEDULED trigger ([`ScheduleService`]); `docs/schedules.md` is the reference.
//!
//! The create body is read by [`crate::body`]; the rules of its values are the domain's.

use actix_web::{HttpResponse, web};
use baton_domain::FieldError;
use baton_domain::RepoError;
use baton_domain::ids::TriggerId;
use baton_domain::ports::TriggerCursor;
use baton_domain::services::ServiceError;
use baton_domain::services::schedules::{
    ScheduleInput, ScheduleQuery, ScheduleService, shown_next_run,
};
use baton_domain::trigger::Trigger;
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
        web::resource("/schedules")
            .route(web::get().to(list))
            .route(web::post().to(create)),
        BodyLimit::BATCH,
    ))
    // Before `/schedules/{schedule_id}`, which would take `preview` for an id.
    .service(web::resource("/schedules/preview").route(web::get().to(preview)))
    .service(
        web::resource("/schedules/{schedule_id}")
            .route(web::get().to(get))
            .route(web::delete().to(delete)),
    )
    .service(web::resource("/schedules/{schedule_id}/enable").route(web::put().to(enable)))
    .service(web::resource("/schedules/{schedule_id}/disable").route(web::put().to(disable)))
    .service(web::resource("/schedules/{schedule_id}/trigger").route(web::put().to(trigger)));
}

// ---- responses ----

/// A schedule as the CasareRPA document shows it, field for field, plus Baton's `timezone`,
/// `is_blocking` and `metadata`. Instants are RFC 3339 in UTC; `next_run` is null while the
/// schedule is disabled, since it will not fire then.
#[derive(Serialize)]
struct ScheduleView {
    schedule_id: String,
    workflow_id: String,
    schedule_name: String,
    cron_expression: String,
    enabled: bool,
    priority: u8,
    execution_mode: &'static str,
    next_run: Option<String>,
    last_run: Option<String>,
    run_count: u64,
    failure_count: u64,
    created_at: String,
    updated_at: String,
    timezone: String,
    is_blocking: bool,
    metadata: Map<String, Value>,
}

impl From<&Trigger> for ScheduleView {
    fn from(t: &Trigger) -> Self {
        let (cron_expression, timezone) = t.cron().map_or_else(
            // The service hands out SCHEDULED triggers only; an empty schedule is still valid JSON.
            || (String::new(), "UTC".to_owned()),
            |cron| (cron.expression().to_owned(), cron.timezone().to_owned()),
        );
        Self {
            schedule_id: t.id().to_string(),
            workflow_id: t.workflow_id().to_string(),
            schedule_name: t.schedule_name().to_owned(),
            cron_expression,
            enabled: t.enabled(),
            priority: t.priority().value(),
            execution_mode: t.execution_mode().as_str(),
            next_run: shown_next_run(t).map(rfc3339),
            last_run: t.last_run().map(rfc3339),
            run_count: t.run_count(),
            failure_count: t.failure_count(),
            created_at: rfc3339(t.created_at()),
            updated_at: rfc3339(t.updated_at()),
            timezone,
            is_blocking: t.is_blocking(),
            metadata: t.metadata().clone(),
        }
    }
}

/// The answer to "trigger now" and to a delete, as the document words them.
#[derive(Serialize)]
struct Done {
    status: &'static str,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
}

// ---- handlers ----

/// `POST /schedules`: 200 with the stored schedule (the document's status); 400 naming every
/// broken field; 404 when the fields are valid but the workflow does not exist.
async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let input = read_input(&body)?;
    let workflow_id = input.workflow_id.clone().unwrap_or_default();
    let schedule = service(&state).create(input).await.map_err(|e| match e {
        ServiceError::Repo(RepoError::NotFound(_)) => ApiError::not_found(format!(
            "workflow not found: no workflow has the id {workflow_id}; create the workflow \
                 first (POST /api/v1/workflows)"
        )),
        other => ApiError::from(other),
    })?;
    tracing::info!(
        by = %caller.principal.display_id(),
        schedule = %schedule.id(),
        workflow = %schedule.workflow_id(),
        "schedule created"
    );
    Ok(HttpResponse::Ok().json(ScheduleView::from(&schedule)))
}

#[derive(Deserialize)]
struct ListQuery {
    workflow_id: Option<String>,
    enabled: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// The header that carries where the next page starts, when more schedules follow. The body
/// stays the document's plain array, so clients that know nothing of pages are unchanged.
const NEXT_CURSOR: &str = "X-Next-Cursor";

/// `GET /schedules?workflow_id=&enabled=&limit=&cursor=`: the matching schedules, oldest
/// first; `X-Next-Cursor` names where the next page starts when more follow.
async fn list(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    query: web::Query<ListQuery>,
) -> ApiResult<HttpResponse> {
    let (schedules, next) = service(&state)
        .list_page(read_query(query.into_inner()))
        .await?;
    let mut response = HttpResponse::Ok();
    if let Some(next) = next {
        response.insert_header((NEXT_CURSOR, encode_cursor(next)));
    }
    Ok(response.json(schedules.iter().map(ScheduleView::from).collect::<Vec<_>>()))
}

/// The position after a schedule: its creation instant in unix microseconds and its id, as
/// queue items' cursors are. Clients treat it as opaque.
fn encode_cursor(cursor: TriggerCursor) -> String {
    let micros = cursor.created_at.unix_timestamp_nanos() / 1_000;
    format!("{micros}.{}", cursor.id)
}

fn decode_cursor(text: &str) -> Option<TriggerCursor> {
    let (micros, id) = text.split_once('.')?;
    let micros: i128 = micros.parse().ok()?;
    let created_at =
        time::OffsetDateTime::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()?;
    Some(TriggerCursor {
        created_at,
        id: id.parse().ok()?,
    })
}

#[derive(Deserialize)]
struct PreviewQuery {
    cron_expression: Option<String>,
    timezone: Option<String>,
    count: Option<String>,
}

/// The answer of a preview: the next fire times, RFC 3339 in UTC.
#[derive(Serialize)]
struct Preview {
    next: Vec<String>,
}

/// `GET /schedules/preview?cron_expression=&timezone=&count=`: the next fire times of an
/// expression in a zone, or a 400 naming what is wrong, so a form can show both before it
/// saves. Nothing is stored; a schedule's own rules (fields, zone, "fires again") apply.
async fn preview(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    query: web::Query<PreviewQuery>,
) -> ApiResult<HttpResponse> {
    let query = query.into_inner();
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let count_text = given(query.count);
    let count = count_text.as_deref().map(|t| t.trim().parse::<i64>());
    let times = baton_domain::schedule::preview(
        given(query.cron_expression).as_deref(),
        given(query.timezone).as_deref(),
        // A count that is not a number is judged as one out of range, under its own name.
        count.map(|c| c.unwrap_or(0)),
        state.clock.now(),
    )?;
    Ok(HttpResponse::Ok().json(Preview {
        next: times.into_iter().map(rfc3339).collect(),
    }))
}

/// `GET /schedules/{schedule_id}`.
async fn get(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = schedule_id(&path)?;
    let schedule = service(&state).get(id).await.map_err(not_found(id))?;
    Ok(HttpResponse::Ok().json(ScheduleView::from(&schedule)))
}

/// `PUT /schedules/{schedule_id}/enable`: the updated schedule; its next run counts from now.
async fn enable(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_enabled(state, caller, path, true).await
}

/// `PUT /schedules/{schedule_id}/disable`: the updated schedule.
async fn disable(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    set_enabled(state, caller, path, false).await
}

async fn set_enabled(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
    enabled: bool,
) -> ApiResult<HttpResponse> {
    let id = schedule_id(&path)?;
    let schedule = service(&state)
        .set_enabled(id, enabled)
        .await
        .map_err(not_found(id))?;
    tracing::info!(by = %caller.principal.display_id(), schedule = %id, enabled, "schedule switched");
    Ok(HttpResponse::Ok().json(ScheduleView::from(&schedule)))
}

/// `PUT /schedules/{schedule_id}/trigger`: starts one job now, whether the schedule is enabled
/// or not, without moving its next run.
async fn trigger(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = schedule_id(&path)?;
    let (_, job) = service(&state).trigger_now(id).await.map_err(|e| match e {
        ServiceError::Repo(RepoError::NotFound("workflow")) => ApiError::not_found(format!(
            "workflow not found: the workflow of schedule {id} no longer exists"
        )),
        other => not_found(id)(other),
    })?;
    tracing::info!(by = %caller.principal.display_id(), schedule = %id, job = %job.id(), "schedule triggered now");
    Ok(HttpResponse::Ok().json(Done {
        status: "success",
        message: format!("Schedule triggered: {id}"),
        job_id: Some(job.id().to_string()),
    }))
}

/// `DELETE /schedules/{schedule_id}`. Jobs it started keep their records.
async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = schedule_id(&path)?;
    service(&state).delete(id).await.map_err(not_found(id))?;
    tracing::info!(by = %caller.principal.display_id(), schedule = %id, "schedule deleted");
    Ok(HttpResponse::Ok().json(Done {
        status: "success",
        message: format!("Schedule deleted: {id}"),
        job_id: None,
    }))
}

// ---- helpers ----

fn service(state: &AppState) -> ScheduleService {
    ScheduleService::from_store(state.store.clone(), state.clock.clone(), state.ids.clone())
}

/// A use case's failure as [`ApiError`] maps it, with a 404 that names the schedule asked for.
fn not_found(id: TriggerId) -> impl Fn(ServiceError) -> ApiError {
    move |err| match err {
        ServiceError::Repo(RepoError::NotFound(_)) => {
            ApiError::not_found(format!("schedule not found: no schedule has the id {id}"))
        }
        other => ApiError::from(other),
    }
}

/// A schedule id from the path; text that is not a UUID names no schedule, so it is a 404.
fn schedule_id(text: &str) -> ApiResult<TriggerId> {
    text.parse().map_err(|_| {
        ApiError::not_found(format!(
            "schedule not found: '{text}' is not a schedule id (a UUID)"
        ))
    })
}

/// The fields of `POST /schedules`, with their JSON types checked; the rules of their values
/// are the domain's.
fn read_input(body: &[u8]) -> ApiResult<ScheduleInput> {
    let body = json_object(body)?;
    let mut f = Fields::new(&body);
    let input = ScheduleInput {
        workflow_id: f.text("workflow_id"),
        schedule_name: f.text("schedule_name"),
        cron_expression: f.text("cron_expression"),
        timezone: f.text("timezone"),
        enabled: f.flag("enabled"),
        priority: f.integer("priority"),
        execution_mode: f.text("execution_mode"),
        is_blocking: f.flag("is_blocking"),
        metadata: f.object("metadata"),
        unreadable: Vec::new(),
    };
    Ok(ScheduleInput {
        unreadable: f.into_errors(),
        ..input
    })
}

/// The query parameters of `GET /schedules`, their types read here (an empty value counts as
/// left out); their rules are the domain's.
fn read_query(query: ListQuery) -> ScheduleQuery {
    let mut unreadable = Vec::new();
    let mut refuse = |field: &str, message: &str| {
        unreadable.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    };
    let given = |value: Option<String>| value.filter(|v| !v.is_empty());
    let enabled = given(query.enabled).and_then(|text| {
        let parsed = parse_flag(&text);
        if parsed.is_none() {
            refuse("enabled", "must be true or false");
        }
        parsed
    });
    let limit = given(query.limit).and_then(|text| {
        let parsed = text.trim().parse::<i64>().ok();
        if parsed.is_none() {
            refuse(
                "limit",
                "must be a whole number from 1 to 1000 (100 when left out)",
            );
        }
        parsed
    });
    let after = given(query.cursor).and_then(|text| {
        let parsed = decode_cursor(&text);
        if parsed.is_none() {
            refuse(
                "cursor",
                "is not a cursor this server issued: pass the X-Next-Cursor header of the \
                 previous page as is",
            );
        }
        parsed
    });
    ScheduleQuery {
        workflow_id: given(query.workflow_id),
        enabled,
        limit,
        after,
        unreadable,
    }
}

/// A boolean query parameter, spelled as the document's Python clients send it (`true`,
/// `True`, `1`, `yes`, `on` and their opposites).
fn parse_flag(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input_of(value: Value) -> ScheduleInput {
        read_input(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn every_field_is_read_with_its_json_type() {
        let input = input_of(json!({
            "workflow_id": "w", "schedule_name": "s", "cron_expression": "c",
            "timezone": "z", "enabled": false, "priority": 2, "execution_mode": "lan",
            "is_blocking": true, "metadata": {"a": 1}, "unknown": [1]
        }));
        assert!(input.unreadable.is_empty());
        assert_eq!(input.schedule_name.as_deref(), Some("s"));
        assert_eq!(input.enabled, Some(false));
        assert_eq!(input.priority, Some(2));
        assert_eq!(input.is_blocking, Some(true));
        assert_eq!(input.metadata.unwrap()["a"], 1);
    }

    #[test]
    fn wrong_types_are_recorded_under_their_field_names() {
        let input = input_of(json!({
            "workflow_id": 5, "schedule_name": ["x"], "cron_expression": {},
            "timezone": 1, "enabled": "yes", "priority": "10", "execution_mode": true,
            "is_blocking": 0, "metadata": []
        }));
        let fields: Vec<&str> = input.unreadable.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "workflow_id",
                "schedule_name",
                "cron_expression",
                "timezone",
                "enabled",
                "priority",
                "execution_mode",
                "is_blocking",
                "metadata"
            ]
        );
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_400s() {
        for body in ["", "{", "[]", "\"x\"", "5", "null"] {
            let err = read_input(body.as_bytes()).unwrap_err();
            assert_eq!(err.status().as_u16(), 400, "{body:?}");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let cursor = TriggerCursor {
            created_at: time::macros::datetime!(2026-01-02 03:04:05.123456 UTC),
            id: "01930000-0000-7000-8000-000000000001".parse().unwrap(),
        };
        assert_eq!(decode_cursor(&encode_cursor(cursor)), Some(cursor));
        for text in [
            "",
            "1",
            "x.y",
            "1.not-a-uuid",
            "99999999999999999999999999.0",
        ] {
            assert_eq!(decode_cursor(text), None, "{text}");
        }
    }

    #[test]
    fn query_parameters_are_read_by_type() {
        let query = read_query(ListQuery {
            workflow_id: Some(String::new()),
            enabled: Some("True".into()),
            limit: Some("5".into()),
            cursor: None,
        });
        assert_eq!(query.workflow_id, None);
        assert_eq!(query.enabled, Some(true));
        assert_eq!(query.limit, Some(5));
        assert!(query.unreadable.is_empty());
        let query = read_query(ListQuery {
            workflow_id: None,
            enabled: Some("maybe".into()),
            limit: Some("ten".into()),
            cursor: Some("nowhere".into()),
        });
        let fields: Vec<&str> = query.unreadable.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["enabled", "limit", "cursor"]);
    }
}
