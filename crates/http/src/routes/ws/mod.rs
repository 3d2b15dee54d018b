//! The websockets (docs/websockets.md; the CasareRPA document's "WebSocket Endpoints"):
//! `/ws/live-jobs` (every job status change), `/ws/robot-status` (robot heartbeats and status
//! changes) and `/ws/queue-metrics` (the queue depth every five seconds). A client may send the
//! text `ping` at any time and gets `pong`. See docs/websockets.md.
//!
//! Authentication is that of the REST API, plus `?token=` for browsers, which cannot set
//! headers on a websocket: a JWT access token or an API key, of any role. A refused client
//! gets the websocket handshake and then, at once, a close frame with code 4001 and the reason,
//! so that browser clients (which never see the HTTP status of a handshake) can tell why.

mod feeds;
mod messages;
mod session;
mod tail;

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason};
use baton_domain::auth::Permission;
use serde::Deserialize;

pub use feeds::{EventRound, LiveFeeds, queue_metrics_now};
pub use session::{IDLE_TIMEOUT, PING_INTERVAL};
pub use tail::EventTail;

use crate::auth::Principal;
use crate::errors::ApiError;
use crate::live::Feed;
use crate::state::AppState;
use session::Client;

/// The close code of a refused socket, fixed so clients can tell a refusal from a network
/// failure (docs/websockets.md).
pub const REFUSED: u16 = 4001;

/// Mounts the three feeds at the root (they are outside `/api/v1` in the document).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for feed in Feed::ALL {
        cfg.service(web::resource(feed.path()).route(web::get().to(
            move |req: HttpRequest, body: web::Payload, state: web::Data<AppState>| {
                open(feed, req, body, state)
            },
        )));
    }
}

/// `?token=…`: a bearer credential for clients that cannot set headers.
#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Upgrades the connection, then serves the client or closes it with the refusal.
async fn open(
    feed: Feed,
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (response, session, stream) = actix_ws::handle(&req, body).map_err(|e| {
        ApiError::bad_request(format!(
            "{} is a websocket: connect with a websocket client ({e})",
            feed.path()
        ))
    })?;
    let stream = stream.max_frame_size(session::MAX_CLIENT_FRAME);
    let principal = match authorize(&state, &req).await {
        Ok(principal) => principal,
        Err(reason) => {
            tracing::debug!(feed = feed.path(), reason = ?reason.description, "websocket refused");
            actix_web::rt::spawn(async move {
                // The stream is kept until the close frame is handed over, so that the
                // connection is not torn down before it is sent.
                let _stream = stream;
                let _ = session.close(Some(reason)).await;
            });
            return Ok(response);
        }
    };
    // Subscribed before the first queue metrics are counted, so no later update is missed.
    let updates = state.live.subscribe(feed);
    let first = match feed {
        Feed::QueueMetrics => {
            match queue_metrics_now(state.store.as_ref(), state.clock.as_ref()).await {
                Ok(update) => Some(update),
                Err(e) => {
                    // The periodic update follows; a first one is a courtesy.
                    tracing::warn!(error = %e, "counting the first queue metrics failed");
                    None
                }
            }
        }
        Feed::LiveJobs | Feed::RobotStatus => None,
    };
    let client = Client {
        feed,
        session,
        stream,
        updates,
        closing: state.live.closing(),
        who: principal.display_id(),
    };
    actix_web::rt::spawn(client.run(first));
    Ok(response)
}

/// Who the client is, if they may watch: credentials from the headers as on every route, or
/// else from `?token=`. Robots' tokens are for the robot protocol only.
async fn authorize(state: &AppState, req: &HttpRequest) -> Result<Principal, CloseReason> {
    let query_token = web::Query::<TokenQuery>::from_query(req.query_string())
        .ok()
        .and_then(|query| query.into_inner().token)
        .filter(|token| !token.trim().is_empty());
    let authenticated = match query_token {
        Some(token) if !crate::auth::has_credential_headers(req) => {
            state.access.authenticate_bearer(req, &token).await
        }
        _ => state.access.authenticate(req).await,
    };
    let principal = authenticated.map_err(|e| refusal(&e))?;
    if let Principal::Robot { robot_id } = &principal {
        return Err(refused(format!(
            "robot '{robot_id}': robot tokens are accepted on the robot protocol only"
        )));
    }
    if !principal.allows(Permission::Read) {
        return Err(refused("the caller's roles do not grant read access"));
    }
    Ok(principal)
}

/// The close frame for a failed authentication: 4001 with the reason the REST API would give,
/// or 1011 ("internal error") when the credentials could not be checked at all (the database
/// is unavailable), since the client's credentials may well be fine.
fn refusal(error: &ApiError) -> CloseReason {
    if error.status().is_server_error() {
        return CloseReason {
            code: CloseCode::Error,
            description: Some("the credentials could not be checked; retry later".to_owned()),
        };
    }
    refused(error.detail().to_owned())
}

fn refused(reason: impl Into<String>) -> CloseReason {
    CloseReason {
        code: CloseCode::Other(REFUSED),
        description: Some(reason.into()),
    }
}
