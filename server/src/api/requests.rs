//! The agent API: submit a request, read it, wait for the decision, cancel, start, report.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signoff_app::wire::{ErrorBody, NewRequest, RequestView, ResultReport, limits};
use signoff_app::{canonical_json, sha256_hex};

use super::extract::{AgentAuth, Caller, JsonBody, Query};
use crate::Error;
use crate::door::RequestPath;
use crate::door::schemas::RequestForCaller;
use crate::door::schemas::{
    AgentChangeRefused, AgentKeyRefused, AgentReadRefused, ChangeUnavailable, JsonBodyRefused, NotJson, ReadUnavailable,
};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    routes().into()
}

/// The agent's routes, each with its OpenAPI description (`super::openapi`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(wait))
        .routes(routes!(cancel))
        .routes(routes!(start))
        .routes(routes!(report))
}

/// Routes agents and people share (people may come with a session cookie).
pub fn shared_router() -> Router<AppState> {
    shared_routes().into()
}

pub(crate) fn shared_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show))
}

/// Submit an action for approval.
///
/// With an `Idempotency-Key`, the same request sent again answers 200 with the request it
/// created the first time (`Idempotent-Replayed: true`); the same key with another body is
/// a conflict.
#[utoipa::path(
    post, path = "/api/v1/requests", tag = "agent", operation_id = "create_request",
    params(
        ("Idempotency-Key" = Option<String>, Header, pattern = "^[!-~]{1,255}$",
            description = "Makes retries safe: the same key and body create one request (1-255 visible ASCII characters)."),
    ),
    request_body(content = NewRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "Created, pending a decision.", body = RequestView,
            headers(("Location" = String, description = "The request's URL."))),
        (status = 200, description = "Replayed: this key and body created this request before.", body = RequestView,
            headers(("Location" = String, description = "The request's URL."), ("Idempotent-Replayed" = String, description = "`true`."))),
        (status = 400, description = "Not JSON, or an Idempotency-Key that is not visible ASCII.", body = ErrorBody),
        AgentKeyRefused,
        (status = 409, description = "This Idempotency-Key was used with another body.", body = ErrorBody),
        (status = 413, description = "The body is larger than 1 MiB, or a diff side past its limit.", body = ErrorBody),
        NotJson,
        (status = 422, description = "Fields that do not fit the rules; the message says which.", body = ErrorBody),
        ChangeUnavailable,
    ),
    security(("agent_key" = []))
)]
async fn create(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    headers: HeaderMap,
    body: JsonBody<NewRequest>,
) -> Result<Response, Error> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| Error::BadRequest("Idempotency-Key must be visible ASCII".into()))?
                .to_string(),
        ),
    };
    // The same request sent again may differ in whitespace or key order: compare the
    // canonical form (only needed when the agent asked for idempotency).
    let body_hash = match idempotency_key {
        Some(_) => Some(sha256_hex(canonical_json(&body.document()?))),
        None => None,
    };
    let (request, created) = state
        .service
        .create_request(&agent, body.value, idempotency_key, body_hash)
        .await?;
    let location = HeaderValue::from_str(&format!("/api/v1/requests/{}", request.id))
        .map_err(|_| Error::Internal("request id is not a header value".into()))?;
    let mut response = if created {
        (StatusCode::CREATED, Json(request)).into_response()
    } else {
        let mut response = (StatusCode::OK, Json(request)).into_response();
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    };
    response.headers_mut().insert(header::LOCATION, location);
    Ok(response)
}

/// Read one request.
///
/// Agents see their own requests; reviewers and admins see any, with what they may do.
#[utoipa::path(
    get, path = "/api/v1/requests/{id}", tag = "agent", tags = ["reviewer"], operation_id = "get_request",
    params(RequestPath),
    responses(
        (status = 200, description = "The request (for a person, with `viewer`: what they may do).", body = RequestForCaller),
        (status = 401, description = "No valid API key, terminal token or session.", body = ErrorBody),
        (status = 403, description = "A person with no role in Signoff.", body = ErrorBody),
        (status = 404, description = "No such request (or not this agent's).", body = ErrorBody),
        ReadUnavailable,
    ),
    security(("agent_key" = []), ("terminal_token" = []), ("session_cookie" = []))
)]
async fn show(State(state): State<AppState>, caller: Caller, RequestPath(id): RequestPath) -> Result<Response, Error> {
    match caller {
        Caller::Agent(agent) => Ok(Json(state.service.request_for_agent(&agent, id).await?).into_response()),
        Caller::Person(person) => Ok(Json(person.desk(&state.service).request(id).await?).into_response()),
    }
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct WaitParams {
    /// Seconds to wait at most (default 30, at most 300).
    #[param(maximum = 300)]
    timeout_s: Option<u64>,
}

const DEFAULT_WAIT_S: u64 = 30;

/// Wait for the decision.
///
/// Answers as soon as the request leaves `pending`, or after `timeout_s` with the request
/// still pending (then wait again).
#[utoipa::path(
    get, path = "/api/v1/requests/{id}/wait", tag = "agent", operation_id = "wait_for_decision",
    params(RequestPath, WaitParams),
    responses(
        (status = 200, description = "The request, decided or still pending.", body = RequestView),
        (status = 400, description = "A `timeout_s` past 300 or not a number.", body = ErrorBody),
        (status = 429, description = "This agent already holds its most waits at once.", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again."))),
        AgentReadRefused, ReadUnavailable,
    ),
    security(("agent_key" = []))
)]
async fn wait(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    RequestPath(id): RequestPath,
    Query(params): Query<WaitParams>,
) -> Answer {
    let timeout_s = params.timeout_s.unwrap_or(DEFAULT_WAIT_S);
    if timeout_s > limits::MAX_WAIT_S {
        return Err(Error::BadRequest(format!(
            "timeout_s must be at most {} seconds; wait again to wait longer",
            limits::MAX_WAIT_S
        )));
    }
    Ok(Json(
        state.service.wait(&agent, id, Duration::from_secs(timeout_s)).await?,
    ))
}

/// Withdraw a pending request.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/cancel", tag = "agent", operation_id = "cancel_request",
    params(RequestPath),
    responses(
        (status = 200, description = "The request, now cancelled.", body = RequestView),
        (status = 409, description = "The request is no longer pending.", body = ErrorBody),
        AgentChangeRefused,
    ),
    security(("agent_key" = []))
)]
async fn cancel(State(state): State<AppState>, AgentAuth(agent): AgentAuth, RequestPath(id): RequestPath) -> Answer {
    Ok(Json(state.service.cancel(&agent, id).await?))
}

/// Start an approved action.
///
/// Call it just before running the action: it records the start (`started_at`, and a
/// `request.started` audit event) and answers 409 `already_started` when this approval was
/// started before, from here or anywhere else, so one approval runs once. No body.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/start", tag = "agent", operation_id = "start_request",
    params(RequestPath),
    responses(
        (status = 200, description = "The request, with `started_at`: run the action now.", body = RequestView),
        (status = 409, description = "`already_started`: this approval was started before, do not run it again; \
            `not_approved`: the request is not approved.", body = ErrorBody),
        AgentChangeRefused,
    ),
    security(("agent_key" = []))
)]
async fn start(State(state): State<AppState>, AgentAuth(agent): AgentAuth, RequestPath(id): RequestPath) -> Answer {
    Ok(Json(state.service.start(&agent, id).await?))
}

/// Say how an approved action went.
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/result", tag = "agent", operation_id = "report_result",
    params(RequestPath),
    request_body(content = ResultReport, content_type = "application/json"),
    responses(
        (status = 200, description = "The request, now executed or failed.", body = RequestView),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        (status = 409, description = "The request is not approved, or its result was already reported.", body = ErrorBody),
        (status = 422, description = "A body of the wrong shape.", body = ErrorBody),
        AgentChangeRefused, JsonBodyRefused,
    ),
    security(("agent_key" = []))
)]
async fn report(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    RequestPath(id): RequestPath,
    body: JsonBody<ResultReport>,
) -> Answer {
    Ok(Json(state.service.report_result(&agent, id, body.value).await?))
}

/// What an agent's call on one of its requests answers: the request as it now stands.
type Answer = Result<Json<RequestView>, Error>;
