//! ActiveWorkflow's agents and messages: `GET /agents`, `/agents/{agent_id}`,
//! `/agents/{agent_id}/messages?after=&limit=` and `/messages/{message_id}`.
//!
//! An agent is one node of a workflow (its sources come from the workflow's connections); a
//! message is a payload a node emitted while a job ran. The shapes are the seed's, with a few
//! extra fields it allows (`workflow_id`, `node_id`, `job_id`). Ids are UUIDs, like every id of
//! Baton; text that is not one names nothing, so it is a 404 like an unknown id. Expired
//! messages are neither listed nor counted nor shown, even before the purge deletes them.

use actix_web::{HttpResponse, web};
use baton_domain::agent::{AgentView, Message};
use baton_domain::ids::{AgentId, MessageId};
use baton_domain::{RepoError, Timestamp, ValidationError, instant};
use serde::{Deserialize, Serialize};

use crate::auth::{Authorized, Read};
use crate::errors::ApiResult;
use crate::state::AppState;
use crate::time_format::rfc3339;

/// Mounts ActiveWorkflow's agent and message routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/agents").route(web::get().to(list_agents)))
        .service(web::resource("/agents/{agent_id}").route(web::get().to(get_agent)))
        .service(web::resource("/agents/{agent_id}/messages").route(web::get().to(list_messages)))
        .service(web::resource("/messages/{message_id}").route(web::get().to(get_message)));
}

/// An agent as ActiveWorkflow shows it, in `/agents` and in a workflow's `agents`.
#[derive(Serialize)]
pub(crate) struct AgentBody {
    id: String,
    name: String,
    #[serde(rename = "type")]
    agent_type: String,
    disabled: bool,
    messages_count: u64,
    sources: Vec<AgentRef>,
    workflow_id: String,
    /// The node's id within its workflow's graph.
    node_id: String,
}

/// One entry of `sources`: the seed's `{ "id": … }`.
#[derive(Serialize)]
struct AgentRef {
    id: String,
}

impl From<&AgentView> for AgentBody {
    fn from(view: &AgentView) -> Self {
        let agent = &view.agent;
        Self {
            id: agent.id.to_string(),
            name: agent.name.clone(),
            agent_type: agent.agent_type.clone(),
            disabled: agent.disabled,
            messages_count: view.messages_count,
            sources: agent
                .sources
                .iter()
                .map(|id| AgentRef { id: id.to_string() })
                .collect(),
            workflow_id: agent.workflow_id.to_string(),
            node_id: agent.node_id.clone(),
        }
    }
}

/// A message in a listing: no payload, as the seed shows it.
#[derive(Serialize)]
struct MessageSummary {
    id: String,
    agent_id: String,
    job_id: Option<String>,
    created_at: String,
    /// `null`: the message never expires.
    expires_at: Option<String>,
}

impl From<&Message> for MessageSummary {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.to_string(),
            agent_id: message.agent_id.to_string(),
            job_id: message.job_id.map(|id| id.to_string()),
            created_at: rfc3339(message.created_at),
            expires_at: message.expires_at.map(rfc3339),
        }
    }
}

/// One message with its payload.
#[derive(Serialize)]
struct MessageBody<'a> {
    #[serde(flatten)]
    summary: MessageSummary,
    payload: &'a serde_json::Value,
}

/// The query of a message listing, read as text so a bad value is refused by its name.
#[derive(Deserialize)]
struct MessagesQuery {
    after: Option<String>,
    limit: Option<String>,
}

/// `GET /agents`: every agent of every workflow, in workflow then node order.
async fn list_agents(state: web::Data<AppState>, _: Authorized<Read>) -> ApiResult<HttpResponse> {
    let agents = state.store.list_agents(None, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(agents.iter().map(AgentBody::from).collect::<Vec<_>>()))
}

/// `GET /agents/{agent_id}`.
async fn get_agent(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id = agent_id(&path)?;
    let agent = state.store.get_agent(id, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(AgentBody::from(&agent)))
}

/// `GET /agents/{agent_id}/messages`: the agent's latest messages, newest first, created strictly
/// after `after` when given, at most `limit` when given (all by default, as the seed says).
async fn list_messages(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
    query: web::Query<MessagesQuery>,
) -> ApiResult<HttpResponse> {
    let id = agent_id(&path)?;
    let MessagesQuery { after, limit } = query.into_inner();
    let (after, limit) = read_page(after, limit)?;
    let now = state.clock.now();
    // An unknown agent is a 404, not an empty list, so a typo in the id is noticed.
    state.store.get_agent(id, now).await?;
    let messages = state.store.list_messages(id, after, limit, now).await?;
    Ok(HttpResponse::Ok().json(
        messages
            .iter()
            .map(MessageSummary::from)
            .collect::<Vec<_>>(),
    ))
}

/// `GET /messages/{message_id}`: one message with its payload.
async fn get_message(
    state: web::Data<AppState>,
    _: Authorized<Read>,
    path: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let id: MessageId = path.parse().map_err(|_| RepoError::NotFound("message"))?;
    let message = state.store.get_message(id, state.clock.now()).await?;
    Ok(HttpResponse::Ok().json(MessageBody {
        summary: MessageSummary::from(&message),
        payload: &message.payload,
    }))
}

/// An agent id from the path; text that is not a UUID names no agent.
fn agent_id(text: &str) -> Result<AgentId, RepoError> {
    text.parse().map_err(|_| RepoError::NotFound("agent"))
}

/// `after` and `limit`, each refused by name when invalid; an empty value counts as absent.
fn read_page(
    after: Option<String>,
    limit: Option<String>,
) -> Result<(Option<Timestamp>, Option<u32>), ValidationError> {
    let after = after.filter(|s| !s.is_empty()).map(|s| parse_after(&s));
    let limit = limit.filter(|s| !s.is_empty()).map(|s| {
        s.trim().parse::<u32>().map_err(|_| {
            ValidationError::field("limit", "must be a whole number of messages, 0 or more")
        })
    });
    match (after.transpose(), limit.transpose()) {
        (Ok(after), Ok(limit)) => Ok((after, limit)),
        (Err(a), Err(l)) => Err(a.merge(l)),
        (Err(e), _) | (_, Err(e)) => Err(e),
    }
}

/// Reads `after` as the query-string instant every route accepts (`baton_domain::instant`):
/// any ISO 8601 offset, the seed's own one-digit offset hour (`…256-8:00`), an offset whose `+`
/// arrived as a space, or none at all, taken as UTC. Sub-microsecond digits are dropped (times
/// are stored to the microsecond), which keeps "strictly after" exact.
pub(crate) fn parse_after(text: &str) -> Result<Timestamp, ValidationError> {
    instant::parse_query_instant(text)
        .ok_or_else(|| ValidationError::field("after", instant::refusal()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn after_accepts_rfc3339_the_seeds_spelling_and_no_offset() {
        assert_eq!(
            parse_after("2019-10-20T01:10:10.256-08:00").unwrap(),
            datetime!(2019-10-20 09:10:10.256 UTC)
        );
        assert_eq!(
            parse_after("2019-10-20T01:10:10.256-8:00").unwrap(),
            datetime!(2019-10-20 09:10:10.256 UTC)
        );
        assert_eq!(
            parse_after("2019-10-20T01:10:10 01:00").unwrap(),
            datetime!(2019-10-20 00:10:10 UTC),
            "a + decoded as a space"
        );
        assert_eq!(
            parse_after("2019-10-20T01:10:10").unwrap(),
            datetime!(2019-10-20 01:10:10 UTC)
        );
        assert_eq!(
            parse_after("2019-10-20T01:10:10.123456789Z").unwrap(),
            datetime!(2019-10-20 01:10:10.123456 UTC)
        );
    }

    #[test]
    fn after_and_limit_are_refused_by_name_together() {
        let err = read_page(Some("yesterday".into()), Some("-1".into())).unwrap_err();
        let fields: Vec<&str> = err.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, vec!["after", "limit"]);
        assert_eq!(
            read_page(Some(String::new()), Some("0".into())).unwrap(),
            (None, Some(0))
        );
    }
}
