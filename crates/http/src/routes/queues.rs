//! Queues and their items: PyOrchestrator's `POST /api/queue` at the root, and the queue engine
//! under `/api/v1` (queues with their counts, items paged newest first, bulk add, settings, the
//! robots' claim and report, an operator's status change). `docs/queues.md` is the reference.
//!
//! Write bodies are read by [`crate::body`] (`{"queue_name": 5}` →
//! `queue_name: must be a string, not a number`), together with every other broken rule.

use actix_web::{HttpResponse, web};
use baton_domain::ids::QueueItemId;
use baton_domain::ports::{ItemCursor, ReferenceMatch};
use baton_domain::queue::{
    NewQueueItem, Queue, QueueItem, QueueItemStatus, QueueName, QueueSettings, RawQueueItem,
    StatusCounts,
};
use baton_domain::services::queue::{QueueService, SettingsChange};
use baton_domain::{FieldError, RepoError, Timestamp, ValidationError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::{Authorized, Develop, Operate, Read, RobotCaller};
use crate::body::{Fields, json_object, wrong_type};
use crate::errors::{ApiError, ApiResult};
use crate::extract::{BodyLimit, limit_body};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// Items per page when the client does not say.
const DEFAULT_PAGE: u32 = 50;
/// The largest page a client may ask for: big enough for an export, small enough to answer fast.
const MAX_PAGE: u32 = 500;

/// The routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/queues").route(web::get().to(list_queues)))
        .service(
            web::resource("/queues/{queue_name}")
                .route(web::get().to(get_queue))
                .route(web::put().to(configure_queue)),
        )
        .service(limit_body(
            web::resource("/queues/{queue_name}/items")
                .route(web::get().to(list_items))
                .route(web::post().to(add_items)),
            BodyLimit::BATCH,
        ))
        .service(web::resource("/queue-items/{id}").route(web::get().to(get_item)))
        .service(web::resource("/queue-items/{id}/status").route(web::put().to(set_status)))
        // Registered before the robot's `/queue-items/{id}` so that `claim` is never read as an id.
        .service(web::resource("/robots/{robot_id}/queue-items/claim").route(web::post().to(claim)))
        .service(web::resource("/robots/{robot_id}/queue-items/{id}").route(web::put().to(report)));
}

/// Root-level routes (PyOrchestrator's).
pub fn configure_root(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/api/queue").route(web::post().to(add_one)));
}

// ---- responses ----

/// A queue item as the API shows it: every stored field but the internal version counter, with
/// `data` as the stored string and instants in RFC 3339 UTC.
#[derive(Serialize)]
struct ItemView {
    id: String,
    queue_name: String,
    status: &'static str,
    data: Option<String>,
    reference: Option<String>,
    message: Option<String>,
    created_by: Option<String>,
    created_date: String,
    start_date: Option<String>,
    end_date: Option<String>,
    retry_count: u32,
    lease_expires_at: Option<String>,
    robot_id: Option<String>,
    updated_at: String,
}

impl From<&QueueItem> for ItemView {
    fn from(item: &QueueItem) -> Self {
        Self {
            id: item.id().to_string(),
            queue_name: item.queue_name().as_str().to_owned(),
            status: item.status().as_str(),
            data: item.data().map(|d| d.as_str().to_owned()),
            reference: item.reference().map(str::to_owned),
            message: item.message().map(str::to_owned),
            created_by: item.created_by().map(str::to_owned),
            created_date: rfc3339(item.created_date()),
            start_date: item.start_date().map(rfc3339),
            end_date: item.end_date().map(rfc3339),
            retry_count: item.retry_count(),
            lease_expires_at: item.lease_expires_at().map(rfc3339),
            robot_id: item.robot_id().map(|r| r.as_str().to_owned()),
            updated_at: rfc3339(item.updated_at()),
        }
    }
}

/// Item counts under the status names clients filter by.
#[derive(Serialize)]
struct CountsView {
    #[serde(rename = "NEW")]
    new: u64,
    #[serde(rename = "IN_PROGRESS")]
    in_progress: u64,
    #[serde(rename = "DONE")]
    done: u64,
    #[serde(rename = "FAILED")]
    failed: u64,
    #[serde(rename = "ABANDONED")]
    abandoned: u64,
}

impl From<StatusCounts> for CountsView {
    fn from(c: StatusCounts) -> Self {
        Self {
            new: c.new,
            in_progress: c.in_progress,
            done: c.done,
            failed: c.failed,
            abandoned: c.abandoned,
        }
    }
}

/// A queue with its counts and settings, an entry of `GET /queues` (docs/queues.md).
#[derive(Serialize)]
struct QueueView {
    queue_name: String,
    counts: CountsView,
    max_retries: u32,
    lease_seconds: u32,
    unique_reference: bool,
    created_at: String,
}

impl QueueView {
    fn new(queue: &Queue, counts: StatusCounts) -> Self {
        Self {
            queue_name: queue.name.as_str().to_owned(),
            counts: counts.into(),
            max_retries: queue.settings.max_retries,
            lease_seconds: queue.settings.lease_seconds,
            unique_reference: queue.settings.unique_reference,
            created_at: rfc3339(queue.created_at),
        }
    }
}

#[derive(Serialize)]
struct ItemsPage {
    items: Vec<ItemView>,
    next_cursor: Option<String>,
}

#[derive(Serialize)]
struct ClaimedItems {
    items: Vec<ItemView>,
}

// ---- handlers ----

/// `POST /api/queue`: the PyOrchestrator document's one item, answered `201 {"success": true, "id"}`.
async fn add_one(
    state: web::Data<AppState>,
    _: Authorized<Operate>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let fields = json_object(&body)?;
    let raw = read_items(&[Value::Object(fields)], None, false)?
        .pop()
        .ok_or_else(|| ApiError::internal("reading one queue item gave no item"))?;
    // Committed together with concurrent requests' items (group commit, see
    // baton-storage's `group_commit`), and answered only once its own commit is done.
    let item = service(&state).add_item(raw).await?;
    Ok(HttpResponse::Created()
        .json(serde_json::json!({"success": true, "id": item.id().to_string()})))
}

/// `POST /queues/{queue_name}/items`: up to 1,000 items stored all together or not at all.
async fn add_items(
    state: web::Data<AppState>,
    _: Authorized<Operate>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let queue = QueueName::parse(path.into_inner())?;
    let body = json_object(&body)?;
    let mut fields = Fields::new(&body);
    if fields.value("items").is_none() {
        fields.push("items", "is required");
    }
    let values = fields.array("items");
    fields.finish()?;
    let values = values.unwrap_or_default();
    if values.len() > QueueService::MAX_BATCH {
        return Err(ValidationError::field(
            "items",
            format!(
                "must hold at most {} items (got {}); send them in several requests",
                QueueService::MAX_BATCH,
                values.len()
            ),
        )
        .into());
    }
    let raw = read_items(&values, Some(queue.as_str()), true)?;
    let items = service(&state).add_items(raw, true).await?;
    let ids: Vec<String> = items.iter().map(|item| item.id().to_string()).collect();
    Ok(HttpResponse::Created().json(serde_json::json!({
        "success": true,
        "count": ids.len(),
        "ids": ids,
    })))
}

/// `GET /queues`: every queue with its counts per status and its settings, by name.
async fn list_queues(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let queues = state.store.list_queues().await?;
    let views: Vec<QueueView> = queues
        .iter()
        .map(|s| QueueView::new(&s.queue, s.counts))
        .collect();
    Ok(HttpResponse::Ok().json(views))
}

/// `GET /queues/{queue_name}`: one queue as `GET /queues` lists it.
async fn get_queue(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let queue = existing_queue(&state, path.into_inner()).await?;
    let counts = queue_counts(&state, &queue.name).await?;
    Ok(HttpResponse::Ok().json(QueueView::new(&queue, counts)))
}

/// `PUT /queues/{queue_name}`: changes the settings given, creating the queue if needed.
/// Settings change how the engine treats every item of the queue, so this takes the develop
/// permission (see docs/queues.md).
async fn configure_queue(
    state: web::Data<AppState>,
    caller: Authorized<Develop>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let name = QueueName::parse(path.into_inner())?;
    let body = json_object(&body)?;
    let mut fields = Fields::new(&body);
    let change = SettingsChange {
        max_retries: fields.whole_u32("max_retries"),
        lease_seconds: fields.whole_u32("lease_seconds"),
        unique_reference: fields.flag("unique_reference"),
    };
    // The ranges are checked here too, so a wrong type elsewhere does not hide them; the
    // service checks the merged settings again.
    let defaults = QueueSettings::default();
    if let Err(ranges) = QueueSettings::new(
        change.max_retries.unwrap_or(defaults.max_retries),
        change.lease_seconds.unwrap_or(defaults.lease_seconds),
        false,
    ) {
        fields.merge(ranges);
    }
    fields.finish()?;
    let queue = service(&state).configure(&name, change).await?;
    tracing::info!(
        by = %caller.principal.display_id(),
        queue = %queue.name.as_str(),
        max_retries = queue.settings.max_retries,
        lease_seconds = queue.settings.lease_seconds,
        unique_reference = queue.settings.unique_reference,
        "queue settings changed"
    );
    let counts = queue_counts(&state, &queue.name).await?;
    Ok(HttpResponse::Ok().json(QueueView::new(&queue, counts)))
}

#[derive(Deserialize)]
struct ItemsQuery {
    status: Option<String>,
    reference: Option<String>,
    reference_prefix: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

/// `GET /queues/{queue_name}/items?status=&reference=&reference_prefix=&limit=&cursor=`: a page
/// of items, newest first.
async fn list_items(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
    query: web::Query<ItemsQuery>,
) -> ApiResult<HttpResponse> {
    let ItemsQuery {
        status,
        reference,
        reference_prefix,
        limit,
        cursor,
    } = query.into_inner();
    let page = read_page_query(status, limit, cursor);
    let reference = read_reference_query(reference, reference_prefix);
    let ((status, limit, cursor), reference) = match (page, reference) {
        (Ok(page), Ok(reference)) => (page, reference),
        (page, reference) => {
            let errors = [page.err(), reference.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| e.errors)
                .collect();
            return Err(ValidationError { errors }.into());
        }
    };
    let queue = existing_queue(&state, path.into_inner()).await?;
    // One more than asked tells whether another page follows without a second query.
    let mut items = state
        .store
        .list_items(&queue.name, status, reference, limit + 1, cursor)
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(encode_cursor)
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(ItemsPage {
        items: items.iter().map(ItemView::from).collect(),
        next_cursor,
    }))
}

/// `GET /queue-items/{id}`: every stored field of one item.
async fn get_item(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = item_id(&path)?;
    let item = state.store.get_item(id).await?;
    Ok(HttpResponse::Ok().json(ItemView::from(&item)))
}

/// `PUT /queue-items/{id}/status`: an operator sets an item's status under the item's rules
/// (e.g. a FAILED item back to NEW to retry it); an illegal change is a 409.
async fn set_status(
    state: web::Data<AppState>,
    caller: Authorized<Operate>,
    path: web::Path<String>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = item_id(&path)?;
    let (status, message) = read_status_body(&body)?;
    let item = service(&state).set_status(id, status, message).await?;
    tracing::info!(by = %caller.principal.display_id(), item = %item.id(), status = %item.status(), "queue item status set");
    Ok(HttpResponse::Ok().json(ItemView::from(&item)))
}

/// `POST /robots/{robot_id}/queue-items/claim`: the robot takes up to `limit` (default 1) of
/// the queue's oldest NEW items under a lease; an empty list when there is nothing to do.
async fn claim(
    state: web::Data<AppState>,
    caller: RobotCaller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let body = json_object(&body)?;
    let mut fields = Fields::new(&body);
    let queue_name = fields.required_text("queue_name");
    let limit = fields.whole_u32("limit").unwrap_or(1);
    fields.finish()?;
    let queue = QueueName::parse(queue_name.unwrap_or_default())?;
    // As for jobs: an operator acting for a robot id nobody created is refused, so a typo never
    // leases items to a robot that does not exist.
    super::robot_protocol::ensure_known_robot(&state, &caller).await?;
    let items = service(&state)
        .claim(&queue, &caller.robot_id, limit)
        .await?;
    if !items.is_empty() {
        tracing::debug!(robot = %caller.robot_id, queue = %queue.as_str(), count = items.len(), "queue items claimed");
    }
    Ok(HttpResponse::Ok().json(ClaimedItems {
        items: items.iter().map(ItemView::from).collect(),
    }))
}

/// `PUT /robots/{robot_id}/queue-items/{id}`: the robot holding an item reports DONE or FAILED.
async fn report(
    state: web::Data<AppState>,
    caller: RobotCaller,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let id = item_id(&path.1)?;
    let (status, message) = read_status_body(&body)?;
    let item = service(&state)
        .report(id, &caller.robot_id, status, message)
        .await?;
    Ok(HttpResponse::Ok().json(ItemView::from(&item)))
}

// ---- helpers ----

fn service(state: &AppState) -> QueueService {
    QueueService::new(state.store.clone(), state.clock.clone(), state.ids.clone())
}

/// The queue a read path names; a name no queue can have is as unknown as a missing one.
async fn existing_queue(state: &AppState, name: String) -> ApiResult<Queue> {
    let name = QueueName::parse(name).map_err(|_| ApiError::from(RepoError::NotFound("queue")))?;
    Ok(state.store.get_queue(&name).await?)
}

async fn queue_counts(state: &AppState, name: &QueueName) -> ApiResult<StatusCounts> {
    let mut counts = StatusCounts::default();
    for status in QueueItemStatus::ALL {
        counts.add(status, state.store.count_items(name, status).await?);
    }
    Ok(counts)
}

/// An item id from the path; text that is not a UUID names no item, so it is a 404.
fn item_id(text: &str) -> ApiResult<QueueItemId> {
    text.parse()
        .map_err(|_| RepoError::NotFound("queue item").into())
}

/// `{status, message?}`, the body of both status updates.
fn read_status_body(body: &[u8]) -> ApiResult<(QueueItemStatus, Option<String>)> {
    let body = json_object(body)?;
    let mut fields = Fields::new(&body);
    let status = fields.required_text("status");
    let message = fields.text("message");
    fields.finish()?;
    let status = status.unwrap_or_default().parse::<QueueItemStatus>()?;
    Ok((status, message))
}

/// The filter, page size and position of an item listing, each refused by name when invalid.
fn read_page_query(
    status: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
) -> Result<(Option<QueueItemStatus>, u32, Option<ItemCursor>), ValidationError> {
    let mut errors = Vec::new();
    let status = match status.filter(|s| !s.is_empty()).map(|s| s.parse()) {
        Some(Ok(status)) => Some(status),
        Some(Err(ValidationError { errors: e })) => {
            errors.extend(e);
            None
        }
        None => None,
    };
    let limit = match limit.map(|l| l.parse::<u32>()) {
        None => DEFAULT_PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            errors.push(field_error(
                "limit",
                format!("must be a whole number between 1 and {MAX_PAGE}"),
            ));
            DEFAULT_PAGE
        }
    };
    let cursor = match cursor.filter(|c| !c.is_empty()).map(|c| decode_cursor(&c)) {
        Some(Some(cursor)) => Some(cursor),
        Some(None) => {
            errors.push(field_error(
                "cursor",
                "is not a cursor this server issued: pass next_cursor from the previous page as is",
            ));
            None
        }
        None => None,
    };
    if errors.is_empty() {
        Ok((status, limit, cursor))
    } else {
        Err(ValidationError { errors })
    }
}

/// The reference filter of an item listing: `reference` matches whole references,
/// `reference_prefix` their first characters; empty means no filter, and both at once is refused.
fn read_reference_query(
    exact: Option<String>,
    prefix: Option<String>,
) -> Result<Option<ReferenceMatch>, ValidationError> {
    let exact = exact.filter(|r| !r.is_empty());
    let prefix = prefix.filter(|r| !r.is_empty());
    let mut errors = Vec::new();
    for (name, value) in [("reference", &exact), ("reference_prefix", &prefix)] {
        if value
            .as_ref()
            .is_some_and(|v| v.chars().count() > NewQueueItem::MAX_REFERENCE)
        {
            errors.push(field_error(
                name,
                format!(
                    "must be at most {} characters, as references are",
                    NewQueueItem::MAX_REFERENCE
                ),
            ));
        }
    }
    if exact.is_some() && prefix.is_some() {
        errors.push(field_error(
            "reference_prefix",
            "give either reference (a whole reference) or reference_prefix, not both",
        ));
    }
    if !errors.is_empty() {
        return Err(ValidationError { errors });
    }
    Ok(exact
        .map(ReferenceMatch::Exact)
        .or(prefix.map(ReferenceMatch::Prefix)))
}

/// The position after `item`: its creation instant in unix microseconds and its id. Clients
/// treat it as opaque; it names a position, not an item, so it stays valid if the item changes.
fn encode_cursor(item: &QueueItem) -> String {
    let micros = item.created_date().unix_timestamp_nanos() / 1_000;
    format!("{micros}.{}", item.id())
}

fn decode_cursor(text: &str) -> Option<ItemCursor> {
    let (micros, id) = text.split_once('.')?;
    let micros: i128 = micros.parse().ok()?;
    let created_date = Timestamp::from_unix_timestamp_nanos(micros.checked_mul(1_000)?).ok()?;
    Some(ItemCursor {
        created_date,
        id: id.parse().ok()?,
    })
}

fn field_error(field: impl Into<String>, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// Converts JSON items into the domain's raw items, or refuses them all with every field error
/// of every item: the wrong JSON types found here and, for the other fields, the rules of
/// the domain checks (`NewQueueItem::parse`). In a batch, field names carry the item's index
/// (`items[3].reference`) and `path_queue` fills in (and must match) each item's `queue_name`.
fn read_items(
    values: &[Value],
    path_queue: Option<&str>,
    batch: bool,
) -> Result<Vec<RawQueueItem>, ValidationError> {
    let mut raws = Vec::with_capacity(values.len());
    let mut errors = Vec::new();
    for (i, value) in values.iter().enumerate() {
        let Value::Object(map) = value else {
            errors.push(field_error(
                format!("items[{i}]"),
                wrong_type("a JSON object", value),
            ));
            continue;
        };
        let prefix = if batch {
            format!("items[{i}].")
        } else {
            String::new()
        };
        let mut fields = Fields::with_prefix(map, prefix);
        let raw = raw_item(&mut fields, path_queue);
        // The domain's rules for the fields of the right type, so that one answer lists
        // every problem of every item; a field with a wrong type is reported once, as such.
        if let Err(rules) = NewQueueItem::parse(raw.clone()) {
            fields.merge(rules);
        }
        errors.extend(fields.into_errors());
        raws.push(raw);
    }
    if errors.is_empty() {
        Ok(raws)
    } else {
        Err(ValidationError { errors })
    }
}

/// One item's fields, with the JSON types the PyOrchestrator document gives them.
fn raw_item(fields: &mut Fields<'_>, path_queue: Option<&str>) -> RawQueueItem {
    let queue_name = match path_queue {
        None => fields.required_text("queue_name").unwrap_or_default(),
        Some(queue) => {
            if let Some(given) = fields.text("queue_name")
                && given != queue
            {
                fields.push(
                    "queue_name",
                    format!("must be the queue of the path ('{queue}') or left out"),
                );
            }
            queue.to_owned()
        }
    };
    let status = fields.text("status");
    let data = fields.value("data").cloned().unwrap_or(Value::Null);
    let reference = fields.text("reference");
    let message = fields.text("message");
    let created_by = fields.text("created_by");
    let created_date = fields.instant("created_date");
    RawQueueItem {
        queue_name,
        status,
        data,
        reference,
        message,
        created_by,
        created_date,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    fn fields_of(err: &ValidationError) -> Vec<&str> {
        err.errors.iter().map(|e| e.field.as_str()).collect()
    }

    fn one(value: Value) -> Result<RawQueueItem, ValidationError> {
        read_items(&[value], None, false).map(|mut raws| raws.remove(0))
    }

    #[test]
    fn the_seed_example_reads_every_field() {
        let raw = one(json!({
            "queue_name": "SomeQueue",
            "status": "NEW",
            "data": {"case_id": "ABC123", "reference_id": "XYZ-001"},
            "reference": "ExternalRef-456",
            "created_by": "MySystem",
            "created_date": "2025-04-26T12:00:00",
            "message": "Created from external system"
        }))
        .unwrap();
        assert_eq!(raw.queue_name, "SomeQueue");
        assert_eq!(raw.status.as_deref(), Some("NEW"));
        assert_eq!(raw.created_date, Some(datetime!(2025-04-26 12:00 UTC)));
        assert_eq!(raw.reference.as_deref(), Some("ExternalRef-456"));
    }

    #[test]
    fn wrong_types_are_named_with_the_rule_errors_of_the_other_fields() {
        let err = one(json!({
            "queue_name": 5,
            "status": true,
            "reference": {"a": 1},
            "message": ["x"],
            "created_by": 1.5,
            "created_date": 20250426,
            "data": "d".repeat(2001)
        }))
        .unwrap_err();
        assert_eq!(
            fields_of(&err),
            [
                "queue_name",
                "status",
                "reference",
                "message",
                "created_by",
                "created_date",
                "data"
            ]
        );
        assert_eq!(err.errors[0].message, "must be a string, not a number");
    }

    #[test]
    fn a_missing_or_null_queue_name_is_required_once() {
        for body in [json!({}), json!({"queue_name": null})] {
            let err = one(body).unwrap_err();
            assert_eq!(fields_of(&err), ["queue_name"]);
            assert_eq!(err.errors[0].message, "is required");
        }
    }

    #[test]
    fn nulls_of_optional_fields_read_as_absent() {
        let raw = one(json!({
            "queue_name": "q", "status": null, "data": null, "reference": null,
            "message": null, "created_by": null, "created_date": null
        }))
        .unwrap();
        assert_eq!(raw.status, None);
        assert_eq!(raw.data, Value::Null);
        assert_eq!(raw.created_date, None);
    }

    #[test]
    fn batch_errors_carry_the_item_index_and_the_path_queue_fills_in() {
        let values = [
            json!({"data": "ok"}),
            json!("not an object"),
            json!({"queue_name": "other", "reference": 7}),
        ];
        let err = read_items(&values, Some("q"), true).unwrap_err();
        assert_eq!(
            fields_of(&err),
            ["items[1]", "items[2].queue_name", "items[2].reference"]
        );
        let raws = read_items(&values[..1], Some("q"), true).unwrap();
        assert_eq!(raws[0].queue_name, "q");
    }

    #[test]
    fn page_queries_default_and_refuse_by_name() {
        let (status, limit, cursor) = read_page_query(None, None, None).unwrap();
        assert_eq!((status, limit, cursor), (None, DEFAULT_PAGE, None));
        let (status, limit, _) =
            read_page_query(Some("done".into()), Some("500".into()), None).unwrap();
        assert_eq!((status, limit), (Some(QueueItemStatus::Done), 500));
        let err = read_page_query(
            Some("LATE".into()),
            Some("501".into()),
            Some("garbage".into()),
        )
        .unwrap_err();
        assert_eq!(fields_of(&err), ["status", "limit", "cursor"]);
        for limit in ["0", "-1", "ten", ""] {
            let err = read_page_query(None, Some(limit.into()), None).unwrap_err();
            assert_eq!(fields_of(&err), ["limit"], "{limit}");
        }
    }

    #[test]
    fn reference_filters_read_exact_or_prefix_and_refuse_both() {
        assert_eq!(
            read_reference_query(None, Some(String::new())).unwrap(),
            None
        );
        assert_eq!(
            read_reference_query(Some("INV-1".into()), None).unwrap(),
            Some(ReferenceMatch::Exact("INV-1".into()))
        );
        assert_eq!(
            read_reference_query(Some(String::new()), Some("INV".into())).unwrap(),
            Some(ReferenceMatch::Prefix("INV".into()))
        );
        let err = read_reference_query(Some("a".into()), Some("b".into())).unwrap_err();
        assert_eq!(fields_of(&err), ["reference_prefix"]);
        let err = read_reference_query(Some("é".repeat(101)), None).unwrap_err();
        assert_eq!(fields_of(&err), ["reference"]);
        assert!(read_reference_query(Some("é".repeat(100)), None).is_ok());
    }

    #[test]
    fn cursors_round_trip() {
        let item = NewQueueItem::parse(RawQueueItem {
            queue_name: "q".into(),
            created_date: Some(datetime!(2025-04-26 12:00:00.123456 UTC)),
            ..RawQueueItem::default()
        })
        .unwrap()
        .into_item(
            QueueItemId::from_uuid(uuid::Uuid::from_u128(7)),
            datetime!(2025-05-01 0:00 UTC),
        );
        let cursor = decode_cursor(&encode_cursor(&item)).unwrap();
        assert_eq!(cursor.created_date, item.created_date());
        assert_eq!(cursor.id, item.id());
        assert_eq!(decode_cursor("12.not-a-uuid"), None);
        assert_eq!(
            decode_cursor("x.00000000-0000-0000-0000-000000000007"),
            None
        );
    }
}
