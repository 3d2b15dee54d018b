//! Robots: the list every role may read, the admin endpoints that create one (its token shown
//! once) and delete one, and the robot protocol's heartbeat, where a robot may act only as itself.

use actix_web::{HttpResponse, web};
use baton_domain::ValidationError;
use baton_domain::auth::{generate_secret, sha256_hex};
use baton_domain::event::{Event, EventType};
use baton_domain::ids::EventId;
use baton_domain::robot::{Robot, RobotId, RobotLoad, RobotStatus};
use serde::{Deserialize, Serialize};

use crate::auth::{Administer, Authorized, Principal, Read, RobotCaller};
use crate::body::{Fields, json_object, typed};
use crate::errors::{ApiError, ApiResult};
use crate::state::AppState;
use crate::time_format::rfc3339;

/// Robot tokens start with this, so a leaked one is recognisable in a secret scanner.
const TOKEN_PREFIX: &str = "br_";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/robots")
            .route(web::get().to(list))
            .route(web::post().to(create)),
    )
    .service(web::resource("/robots/{robot_id}").route(web::delete().to(delete)))
    .service(web::resource("/robots/{robot_id}/heartbeat").route(web::post().to(heartbeat)));
}

#[derive(Deserialize)]
struct CreateRobot {
    robot_id: String,
    #[serde(default)]
    hostname: Option<String>,
}

#[derive(Serialize)]
struct CreatedRobot {
    robot_id: String,
    token: String,
}

/// The most node types one robot may declare, and the longest name of one: generous for any
/// real robot, small enough that a heartbeat stays a small write.
const MAX_CAPABILITIES: usize = 200;
const MAX_CAPABILITY_CHARS: usize = 100;

/// A heartbeat's fields, every one optional.
struct Heartbeat {
    cpu_percent: Option<f64>,
    memory_mb: Option<f64>,
    memory_percent: Option<f64>,
    /// Replaces the stored hostname when given.
    hostname: Option<String>,
    /// The node types the robot can run; replaces the stored list when given.
    capabilities: Option<Vec<String>>,
}

impl Heartbeat {
    /// Reads the body with the one body reader, as every other route does: it must be a JSON
    /// object (not an array, not invalid UTF-8, not nested past the parser's depth limit), and
    /// each field of the wrong JSON type is named.
    fn read(body: &[u8]) -> ApiResult<Self> {
        let map = json_object(body)?;
        let mut fields = Fields::new(&map);
        let beat = Self {
            cpu_percent: fields.number("cpu_percent"),
            memory_mb: fields.number("memory_mb"),
            memory_percent: fields.number("memory_percent"),
            hostname: fields.text("hostname"),
            capabilities: fields.texts("capabilities"),
        };
        fields.finish()?;
        Ok(beat)
    }
}

/// A robot as the protocol and the metrics show it.
#[derive(Serialize)]
pub(crate) struct RobotView {
    robot_id: String,
    hostname: Option<String>,
    status: &'static str,
    cpu_percent: f64,
    memory_mb: f64,
    memory_percent: f64,
    current_job_id: Option<String>,
    last_heartbeat: Option<String>,
    capabilities: Vec<String>,
    created_at: String,
}

impl From<&Robot> for RobotView {
    fn from(robot: &Robot) -> Self {
        Self {
            robot_id: robot.robot_id().to_string(),
            hostname: robot.hostname().map(str::to_owned),
            status: robot.status().as_str(),
            cpu_percent: robot.load().cpu_percent,
            memory_mb: robot.load().memory_mb,
            memory_percent: robot.load().memory_percent,
            current_job_id: robot.current_job_id().map(|id| id.to_string()),
            last_heartbeat: robot.last_heartbeat().map(rfc3339),
            capabilities: robot.capabilities().to_vec(),
            created_at: rfc3339(robot.created_at()),
        }
    }
}

/// `GET /robots`: every robot by id, as the heartbeat answers it.
async fn list(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let robots = state.store.list_robots(None).await?;
    let views: Vec<RobotView> = robots.iter().map(RobotView::from).collect();
    Ok(HttpResponse::Ok().json(views))
}

async fn create(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let CreateRobot { robot_id, hostname } = typed(&body)?;
    let robot_id = RobotId::parse(robot_id)?;
    let token = generate_secret(TOKEN_PREFIX).map_err(ApiError::internal)?;
    let robot = Robot::register(
        robot_id,
        hostname,
        Some(sha256_hex(&token)),
        state.clock.now(),
    )?;
    state
        .store
        .insert_robot(&robot)
        .await
        .map_err(|e| match e {
            baton_domain::RepoError::Conflict(_) => {
                ApiError::conflict(format!("a robot with id '{}' exists", robot.robot_id()))
            }
            other => other.into(),
        })?;
    tracing::info!(by = %caller.principal.display_id(), robot = %robot.robot_id(), "robot created");
    Ok(HttpResponse::Created().json(CreatedRobot {
        robot_id: robot.robot_id().to_string(),
        token,
    }))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Authorized<Administer>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    // An id that breaks the rules names no robot: 404, like any other unknown id.
    let robot_id = RobotId::parse(path.into_inner())
        .map_err(|_| ApiError::not_found("robot not found: the id is not a valid robot id"))?;
    state.store.delete_robot(&robot_id).await?;
    tracing::info!(by = %caller.principal.display_id(), robot = %robot_id, "robot deleted");
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "success",
        "message": format!("Robot deleted: {robot_id}"),
    })))
}

/// A robot reports that it is alive, with its load and, optionally, its hostname and the node
/// types it can run. A robot known only from `ROBOT_TOKENS` is registered by its first heartbeat.
async fn heartbeat(
    state: web::Data<AppState>,
    caller: RobotCaller,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let beat = Heartbeat::read(&body)?;
    let load = RobotLoad::new(
        beat.cpu_percent.unwrap_or(0.0),
        beat.memory_mb.unwrap_or(0.0),
        beat.memory_percent.unwrap_or(0.0),
    );
    let hostname =
        baton_domain::text::check_optional("hostname", beat.hostname, Robot::MAX_HOSTNAME);
    let capabilities = check_capabilities(beat.capabilities);
    let (load, hostname, capabilities) = match (load, hostname, capabilities) {
        (Ok(load), Ok(hostname), Ok(capabilities)) => (load, hostname, capabilities),
        (load, hostname, capabilities) => {
            let errors = [load.err(), hostname.err(), capabilities.err()]
                .into_iter()
                .flatten()
                .flat_map(|e| e.errors)
                .collect();
            return Err(ValidationError { errors }.into());
        }
    };
    let now = state.clock.now();
    let mut robot = match state.store.get_robot(&caller.robot_id).await {
        Ok(robot) => robot,
        // Robots of `ROBOT_TOKENS` have no row until their first heartbeat. Anyone else must
        // be created with `POST /robots` first, so an operator's typo cannot invent a robot.
        Err(baton_domain::RepoError::NotFound(_))
            if matches!(
                caller.principal,
                Principal::Robot { .. } | Principal::DevMode
            ) =>
        {
            Robot::register(caller.robot_id.clone(), None, None, now)?
        }
        Err(baton_domain::RepoError::NotFound(_)) => {
            return Err(ApiError::not_found(format!(
                "no robot '{}': create it with POST /api/v1/robots first",
                caller.robot_id
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let was_offline = robot.status() == RobotStatus::Offline;
    robot.heartbeat(load, now);
    robot.describe(hostname, capabilities)?;
    let events = if was_offline {
        vec![Event {
            id: EventId::from_uuid(state.ids.new_uuid()),
            seq: 0,
            event_type: EventType::RobotOnline,
            timestamp: now,
            title: "Robot online".to_owned(),
            details: Some(robot.robot_id().to_string()),
            robot_id: Some(robot.robot_id().clone()),
            job_id: None,
            workflow_id: None,
            job_status: None,
            data: serde_json::Map::new(),
        }]
    } else {
        Vec::new()
    };
    state.store.save_robot(&robot, &events).await?;
    Ok(HttpResponse::Ok().json(RobotView::from(&robot)))
}

/// The declared node types: at most 200 names of 1–100 characters each.
fn check_capabilities(
    capabilities: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ValidationError> {
    let Some(capabilities) = capabilities else {
        return Ok(None);
    };
    if capabilities.len() > MAX_CAPABILITIES {
        return Err(ValidationError::field(
            "capabilities",
            format!("must list at most {MAX_CAPABILITIES} node types"),
        ));
    }
    for (i, name) in capabilities.iter().enumerate() {
        baton_domain::text::check_length(
            &format!("capabilities[{i}]"),
            name,
            1,
            MAX_CAPABILITY_CHARS,
        )?;
    }
    Ok(Some(capabilities))
}
