//! The agent API: submit a request, read it, wait for the decision, cancel, report.

use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use signoff_app::wire::{NewRequest, ResultReport, limits};
use signoff_app::{canonical_json, sha256_hex};

use super::extract::{AgentAuth, Caller, JsonBody, Query};
use crate::Error;
use crate::http::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/requests", post(create))
        .route("/api/v1/requests/{id}/wait", get(wait))
        .route("/api/v1/requests/{id}/cancel", post(cancel))
        .route("/api/v1/requests/{id}/result", post(report))
}

/// Routes agents and people share (people may come with a session cookie).
pub fn shared_router() -> Router<AppState> {
    Router::new().route("/api/v1/requests/{id}", get(show))
}

use super::reviews::request_id;

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

/// Agents see their own requests; reviewers and admins see any, with what they may do.
async fn show(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, Error> {
    let id = request_id(&id)?;
    match caller {
        Caller::Agent(agent) => Ok(Json(state.service.request_for_agent(&agent, id).await?).into_response()),
        Caller::Person(person) => {
            if person.roles.is_empty() {
                return Err(Error::Forbidden("you have no role in Signoff".into()));
            }
            Ok(Json(state.service.review(&person.identity, id).await?).into_response())
        }
    }
}

#[derive(Deserialize)]
struct WaitParams {
    timeout_s: Option<u64>,
}

const DEFAULT_WAIT_S: u64 = 30;

async fn wait(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path(id): Path<String>,
    Query(params): Query<WaitParams>,
) -> Result<Response, Error> {
    let timeout_s = params.timeout_s.unwrap_or(DEFAULT_WAIT_S);
    if timeout_s > limits::MAX_WAIT_S {
        return Err(Error::BadRequest(format!(
            "timeout_s must be at most {} seconds; wait again to wait longer",
            limits::MAX_WAIT_S
        )));
    }
    let request = state
        .service
        .wait(&agent, request_id(&id)?, Duration::from_secs(timeout_s))
        .await?;
    Ok(Json(request).into_response())
}

async fn cancel(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    let request = state.service.cancel(&agent, request_id(&id)?).await?;
    Ok(Json(request).into_response())
}

async fn report(
    State(state): State<AppState>,
    AgentAuth(agent): AgentAuth,
    Path(id): Path<String>,
    body: JsonBody<ResultReport>,
) -> Result<Response, Error> {
    let request = state
        .service
        .report_result(&agent, request_id(&id)?, body.value)
        .await?;
    Ok(Json(request).into_response())
}
