//! Turns the route table into a utoipa `OpenApi` document.

use serde_json::{Value, json};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{Components, Schema};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::tag::Tag;
use utoipa::openapi::{
    ContentBuilder, Info, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder,
};

use super::examples;
use super::table::{Auth, Body, Method, Route, Success, routes};

const BEARER: &str = "bearer";
const API_KEY: &str = "apiKey";
const ROBOT_TOKEN: &str = "robotToken";
/// Every error status an operation may list.
const ERROR_STATUSES: [u16; 10] = [400, 401, 403, 404, 408, 409, 413, 429, 500, 503];

fn schema(value: Value) -> Result<RefOr<Schema>, serde_json::Error> {
    serde_json::from_value(value)
}

/// The whole document.
pub fn document() -> Result<OpenApi, serde_json::Error> {
    let mut paths = Paths::new();
    for route in routes() {
        let method = match route.method {
            Method::Get => HttpMethod::Get,
            Method::Post => HttpMethod::Post,
            Method::Put => HttpMethod::Put,
            Method::Patch => HttpMethod::Patch,
            Method::Delete => HttpMethod::Delete,
        };
        paths.add_path_operation(route.path, vec![method], operation(&route)?);
    }
    let mut info = Info::new("Baton", env!("CARGO_PKG_VERSION"));
    info.description = Some(
        "Baton, an orchestrator for software robots. Every error answers the `Error` schema."
            .into(),
    );
    let tags = [
        ("PyOrchestrator", "From PyOrchestrator's API document."),
        ("CasareRPA", "From CasareRPA's orchestrator API document."),
        ("ActiveWorkflow", "From ActiveWorkflow's REST API document."),
        ("Flows", "From the flows API document."),
        (
            "Baton",
            "Baton's own endpoints, beyond the four API documents: queues and queue items, jobs, \
             robots and the robot protocol, triggers, users, API keys, webhooks, this document \
             and `/metrics` for Prometheus.",
        ),
    ]
    .map(|(name, description)| {
        let mut tag = Tag::new(name);
        tag.description = Some(description.into());
        tag
    });
    Ok(OpenApiBuilder::new()
        .info(info)
        .paths(paths)
        .components(Some(components()?))
        .tags(Some(tags))
        .build())
}

fn components() -> Result<Components, serde_json::Error> {
    let mut components = Components::new();
    let mut bearer = Http::new(HttpAuthScheme::Bearer);
    bearer.description = Some(
        "`Authorization: Bearer <token>`: a JWT access token from /api/v1/auth/login, or an API key."
            .into(),
    );
    components.add_security_scheme(BEARER, SecurityScheme::Http(bearer));
    components.add_security_scheme(
        API_KEY,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-API-Key",
            "An API key created at /api/v1/api-keys.",
        ))),
    );
    components.add_security_scheme(
        ROBOT_TOKEN,
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-Api-Token",
            "A robot's token, shown once by POST /api/v1/robots.",
        ))),
    );
    for status in ERROR_STATUSES {
        components
            .responses
            .insert(error_name(status), error(status)?);
    }
    for (name, value) in super::schemas::all() {
        components.schemas.insert(name.into(), schema(value)?);
    }
    Ok(components)
}

fn security(auth: Auth) -> Vec<SecurityRequirement> {
    let none: [&str; 0] = [];
    let users = || {
        vec![
            SecurityRequirement::new(BEARER, none),
            SecurityRequirement::new(API_KEY, none),
        ]
    };
    match auth {
        Auth::Public => Vec::new(),
        Auth::Read | Auth::Operate | Auth::Develop | Auth::Administer | Auth::Socket => users(),
        Auth::Robot => {
            let mut all = vec![SecurityRequirement::new(ROBOT_TOKEN, none)];
            all.extend(users());
            all
        }
        Auth::Scrape => {
            // An empty requirement: the scrape is open unless the operator asks for a login.
            let mut all = vec![SecurityRequirement::default()];
            all.extend(users());
            all
        }
    }
}

fn role_note(auth: Auth) -> &'static str {
    match auth {
        Auth::Public => "No authentication.",
        Auth::Read => "Any authenticated caller (role viewer or above).",
        Auth::Operate => "Role operator or above.",
        Auth::Develop => "Role developer or above.",
        Auth::Administer => "Role admin.",
        Auth::Robot => "The robot itself (X-Api-Token) or, unless ROBOT_AUTH_ENABLED, an operator.",
        Auth::Scrape => "Open, or role viewer when the operator configures authenticated scrapes.",
        Auth::Socket => "Any role; browsers pass the credential as `?token=`.",
    }
}

/// The name of the shared response (in `components.responses`) of an error status.
fn error_name(status: u16) -> String {
    format!("Error{status}")
}

/// The shared error response of `status`: the `Error` schema with what the status means here.
fn error(status: u16) -> Result<RefOr<utoipa::openapi::Response>, serde_json::Error> {
    let description = match status {
        400 => "Invalid request: malformed JSON, a wrong type or a bad value (see `errors`)",
        401 => "Missing or invalid credentials",
        403 => "The caller lacks the role this route needs",
        404 => "No such resource",
        409 => "Conflicts with the resource's current state",
        408 => {
            "The body was not all sent within the server's body timeout; the connection is closed"
        }
        413 => {
            "The body is larger than this route's limit (256 KB for commands, 4 MB for batches, 10 MB for documents, 50 MB for uploads) or than the server's whole body budget"
        }
        429 => "Rate limited; retry after `retry_after` seconds",
        503 => {
            "The database is unavailable, or the server holds as many request bodies as it may at once; retry after `Retry-After` seconds"
        }
        _ => "Internal error (no detail is disclosed)",
    };
    let content = ContentBuilder::new()
        .schema(Some(schema(json!({"$ref": "#/components/schemas/Error"}))?))
        .build();
    Ok(ResponseBuilder::new()
        .description(description)
        .content("application/json", content)
        .build()
        .into())
}

fn operation(route: &Route) -> Result<utoipa::openapi::path::Operation, serde_json::Error> {
    let seed = examples::lookup(route.method, route.path);
    let mut op = OperationBuilder::new()
        .tag(route.tag)
        .summary(Some(route.summary))
        .description(Some(role_note(route.auth)))
        .securities(Some(security(route.auth)));
    for name in path_parameters(route.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(schema(json!({"type": "string"}))?)),
        );
    }
    if route.auth == Auth::Socket {
        op = op.parameter(
            ParameterBuilder::new()
                .name("token")
                .parameter_in(ParameterIn::Query)
                .description(Some(
                    "A JWT access token or an API key, for clients that cannot set headers",
                ))
                .schema(Some(schema(json!({"type": "string"}))?)),
        );
    }
    for (name, value, description) in &route.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .description(Some(*description))
                .schema(Some(schema(value.clone())?)),
        );
    }
    let mut errors = vec![429, 500];
    match &route.body {
        Body::None => {}
        Body::Json(body) => {
            let content = ContentBuilder::new()
                .schema(Some(schema(body.clone())?))
                .example(
                    seed.and_then(|s| s.request.clone())
                        .or_else(|| route.request_example.clone()),
                )
                .build();
            let required = if route.body_optional {
                Required::False
            } else {
                Required::True
            };
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(required))
                    .content("application/json", content)
                    .build(),
            ));
            // A body may also be too slow (408) or not fit in the server's body budget (503).
            errors.extend([400, 408, 413, 503]);
        }
        Body::Multipart(body) => {
            let content = ContentBuilder::new()
                .schema(Some(schema(body.clone())?))
                .build();
            op = op.request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("multipart/form-data", content)
                    .build(),
            ));
            // A body may also be too slow (408) or not fit in the server's body budget (503).
            errors.extend([400, 408, 413, 503]);
        }
    }
    // Any operation may answer 400: a malformed, repeated or out-of-range query parameter or
    // path segment is refused before the handler runs, whether or not the route has a body.
    errors.push(400);
    if !matches!(route.auth, Auth::Public) {
        errors.extend([401, 403]);
    }
    if route.path.contains('{') {
        errors.push(404);
    }
    errors.extend(route.extra_errors.iter().copied());
    errors.sort_unstable();
    errors.dedup();
    op = match &route.success {
        Success::Json(status, body) => {
            let content = ContentBuilder::new()
                .schema(Some(schema(body.clone())?))
                .example(seed.and_then(|s| s.response.clone()).or_else(|| route.response_example.clone()))
                .build();
            let mut response = ResponseBuilder::new()
                .description("Success")
                .content("application/json", content);
            for (name, description) in &route.headers {
                response = response.header(
                    *name,
                    HeaderBuilder::new()
                        .schema(Some(schema(json!({"type": "string"}))?))
                        .description(Some(*description))
                        .build(),
                );
            }
            op.response(status.to_string(), response.build())
        }
        Success::Text(content_type, description) => op.response(
            "200",
            ResponseBuilder::new()
                .description(*description)
                .content(
                    *content_type,
                    ContentBuilder::new()
                        .schema(Some(schema(json!({"type": "string"}))?))
                        .build(),
                )
                .build(),
        ),
        Success::Redirect(location) => op.response(
            "303",
            ResponseBuilder::new()
                .description(format!("See Other: to {location}"))
                .build(),
        ),
        Success::Upgrade => op.response(
            "101",
            ResponseBuilder::new()
                .description("Switching Protocols: the websocket. A refused client is closed with code 4001 and the reason.")
                .build(),
        ),
    };
    for (status, description) in &route.also {
        op = op.response(
            status.to_string(),
            ResponseBuilder::new().description(*description).build(),
        );
    }
    if route.auth == Auth::Socket {
        errors.retain(|s| *s != 401 && *s != 403);
        errors.push(400);
        errors.sort_unstable();
    }
    for status in errors {
        op = op.response(
            status.to_string(),
            Ref::from_response_name(error_name(status)),
        );
    }
    Ok(op.build())
}

/// The `{name}` segments of a path, in order.
fn path_parameters(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// utoipa parses the schemas written as JSON; one it misreads (a keyword it drops or
    /// rewrites) would document less than the table says, so each must come back unchanged.
    #[test]
    fn every_schema_survives_utoipa_unchanged() {
        let mut all: Vec<Value> = super::super::schemas::all()
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        for route in routes() {
            all.extend(route.query.iter().map(|(_, v, _)| v.clone()));
            if let Body::Json(v) | Body::Multipart(v) = route.body {
                all.push(v);
            }
            if let Success::Json(_, v) = route.success {
                all.push(v);
            }
        }
        for value in all {
            let parsed = schema(value.clone()).map(|s| serde_json::to_value(s).ok());
            assert_eq!(parsed.ok().flatten().as_ref(), Some(&value));
        }
    }
}
