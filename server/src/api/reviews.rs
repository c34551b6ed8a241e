//! The reviewer API: the queue and history, one request with what the viewer may do,
//! decisions, who am I, live events, and terminal tokens.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signoff_app::wire::{DecisionInput, ErrorBody, LiveEvent, Me, RequestPage, ReviewView, TokenInfo};

use super::extract::{JsonBody, Query};
use crate::Error;
use crate::auth::{Person, Reviewer, TERMINAL_TOKEN_PREFIX, Viewer, bearer};
use crate::bus::Event;
use crate::door::ListParams;
use crate::door::schemas::{BodyTooLarge, ChangeUnavailable, NotJson, ReadUnavailable, ReviewerRefused};
use crate::door::{CsrfChecked, RequestPath};
use crate::metrics;
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    routes().into()
}

/// The reviewer's routes, each with its OpenAPI description (`super::openapi`).
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(decide))
        .routes(routes!(me))
        .routes(routes!(events))
        .routes(routes!(tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(revoke_own_token))
}

/// The queue and history.
#[utoipa::path(
    get, path = "/api/v1/requests", tag = "reviewer", operation_id = "list_requests",
    params(ListParams),
    responses(
        (status = 200, description = "One page of requests.", body = RequestPage),
        (status = 400, description = "A parameter that does not parse; the message says which.", body = ErrorBody),
        ReviewerRefused,
        (status = 403, description = "No role in Signoff.", body = ErrorBody),
        ReadUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn list(
    State(state): State<AppState>,
    Viewer(person): Viewer,
    Query(params): Query<ListParams>,
) -> Result<Response, Error> {
    let filter = params.filter()?;
    let page = person
        .desk(&state.service)
        .list(filter, params.needs_my_vote.unwrap_or(false))
        .await?;
    Ok(Json(page).into_response())
}

/// Approve or deny a request (a denial needs a comment).
#[utoipa::path(
    post, path = "/api/v1/requests/{id}/decisions", tag = "reviewer", operation_id = "decide",
    params(
        RequestPath,
        ("X-CSRF-Token" = Option<String>, Header, description = "Required with the session cookie; not with a terminal token."),
    ),
    request_body(content = DecisionInput, content_type = "application/json"),
    responses(
        (status = 200, description = "The request after the decision, with what the viewer may still do.", body = ReviewView),
        (status = 400, description = "The body is not JSON.", body = ErrorBody),
        ReviewerRefused,
        (status = 403, description = "Not allowed to decide it: no reviewer role, own request, not an approver, a party to it, or a failed CSRF check.", body = ErrorBody),
        (status = 404, description = "No such request.", body = ErrorBody),
        (status = 409, description = "No longer pending, expired, or already decided by this reviewer.", body = ErrorBody),
        BodyTooLarge,
        NotJson,
        (status = 422, description = "A body of the wrong shape, or a denial without a comment.", body = ErrorBody),
        ChangeUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn decide(
    State(state): State<AppState>,
    CsrfChecked(Reviewer(person)): CsrfChecked<Reviewer>,
    RequestPath(id): RequestPath,
    body: JsonBody<DecisionInput>,
) -> Result<Response, Error> {
    let view = person
        .desk(&state.service)
        .decide(id, &body.value, person.channel)
        .await?;
    Ok(Json(view).into_response())
}

/// Who the credential belongs to.
#[utoipa::path(
    get, path = "/api/v1/me", tag = "reviewer", operation_id = "me",
    responses(
        (status = 200, description = "The person signed in and their roles.", body = Me),
        ReviewerRefused,
        ReadUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn me(person: Person) -> Json<Me> {
    Json(Me {
        identity: person.identity.clone(),
        roles: person.roles.clone(),
        auth_time: person.auth_time,
    })
}

/// How often a live stream checks that its session or token still stands.
const CREDENTIAL_CHECK: Duration = Duration::from_secs(2);

/// Request events as server-sent events.
///
/// Each event's `event:` is its kind, its `data:` a `LiveEvent` and its `id:` a position
/// for `Last-Event-ID`: with it, what happened since is replayed from the audit trail
/// first, so a reconnecting client misses nothing. A `resync` event (data `{}`) says
/// events were missed: reload. The stream ends when the credential stops standing.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "reviewer", operation_id = "events",
    params(("Last-Event-ID" = Option<String>, Header, description = "The last `id:` received, to resume after it.")),
    responses(
        (status = 200, description = "A stream of server-sent events, each a `LiveEventMessage`.", content_type = "text/event-stream",
            body = crate::door::schemas::LiveEventMessage),
        ReviewerRefused,
        (status = 403, description = "No role in Signoff.", body = ErrorBody),
        ReadUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn events(State(state): State<AppState>, Viewer(person): Viewer, headers: HeaderMap) -> Result<Response, Error> {
    // Subscribe before reading the backlog, so nothing falls between the two.
    let live = state.service.bus().subscribe();
    let resume_after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let mut backlog = Vec::new();
    let mut last_replayed = 0;
    if let Some(after) = resume_after {
        for (seq, kind, request_id) in person.desk(&state.service).events_after(after, 1000).await? {
            if let Some(event) = Event::from_audit(seq, &kind, request_id) {
                backlog.push(sse_event(&live_event(&event), Some(seq)));
            }
            last_replayed = seq;
        }
    }
    let live = tokio_stream_from(live).filter_map(move |event| async move {
        match event {
            Some(event) if !event.is_resync() && event.seq.is_none_or(|seq| seq > last_replayed) => {
                Some(sse_event(&live_event(&event), event.seq))
            }
            // Missed events (lag, lost connection): tell the client to reload.
            None => Some(Ok(SseEvent::default()
                .event(signoff_app::wire::RESYNC_EVENT)
                .data("{}"))),
            Some(_) => None,
        }
    });
    // The stream ends when the server shuts down, so graceful shutdown does not wait on
    // it, and when the session ends or the token is revoked, so nobody keeps watching on
    // a credential that no longer stands.
    let mut shutdown = state.service.shutdown_signal();
    let credential = person.credential.clone();
    let stopped = async move {
        let revoked = async {
            loop {
                tokio::time::sleep(CREDENTIAL_CHECK).await;
                match credential.still_valid(&state).await {
                    Ok(true) => {}
                    Ok(false) => return,
                    // Fail closed: a credential that cannot be checked does not stand.
                    Err(err) => {
                        tracing::warn!(%err, "could not check a live stream's credential; ending it");
                        return;
                    }
                }
            }
        };
        tokio::select! {
            _ = shutdown.wait_for(|stopping| *stopping) => {}
            _ = revoked => {}
        }
    };
    // Counted as a subscriber for exactly as long as the stream exists, however it ends.
    let subscriber = metrics::LiveStreamSubscriber::opened();
    let stream = stream::iter(backlog).chain(live).take_until(stopped).map(move |event| {
        let _counted = &subscriber;
        event
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keepalive"))
        .into_response())
}

/// The bus as a stream; `None` items mean events were missed.
fn tokio_stream_from(receiver: tokio::sync::broadcast::Receiver<Event>) -> impl Stream<Item = Option<Event>> {
    stream::unfold(receiver, |mut receiver| async move {
        match receiver.recv().await {
            Ok(event) => Some((Some(event), receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => Some((None, receiver)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    })
}

fn live_event(event: &Event) -> LiveEvent {
    LiveEvent {
        kind: event.live,
        request_id: event.request_id,
        status: event.status,
    }
}

fn sse_event(event: &LiveEvent, seq: Option<i64>) -> Result<SseEvent, Infallible> {
    let data = serde_json::to_string(event).unwrap_or_default();
    let mut sse = SseEvent::default().event(event.kind.as_str()).data(data);
    if let Some(seq) = seq {
        sse = sse.id(seq.to_string());
    }
    Ok(sse)
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct TokenParams {
    /// Admins only: everyone's tokens.
    all: Option<bool>,
}

/// The active terminal tokens of the caller (admins: of everyone, with `all=true`).
#[utoipa::path(
    get, path = "/api/v1/tokens", tag = "reviewer", operation_id = "list_tokens",
    params(TokenParams),
    responses(
        (status = 200, description = "Active terminal tokens.", body = Vec<TokenInfo>),
        (status = 400, description = "A parameter that does not parse.", body = ErrorBody),
        ReviewerRefused,
        (status = 403, description = "No role in Signoff, or `all` without the admin role.", body = ErrorBody),
        ReadUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn tokens(
    State(state): State<AppState>,
    Viewer(person): Viewer,
    Query(params): Query<TokenParams>,
) -> Result<Response, Error> {
    let records = person.desk(&state.service).tokens(params.all.unwrap_or(false)).await?;
    let tokens: Vec<TokenInfo> = records
        .into_iter()
        .map(|record| TokenInfo {
            id: record.id,
            client_name: record.client_name,
            owner: record
                .identity
                .email
                .clone()
                .unwrap_or_else(|| record.identity.subject.clone()),
            created_at: record.created_at,
            expires_at: record.expires_at,
        })
        .collect();
    Ok(Json(tokens).into_response())
}

/// Revoke a terminal token: one's own, or anyone's for admins.
#[utoipa::path(
    delete, path = "/api/v1/tokens/{id}", tag = "reviewer", operation_id = "revoke_token",
    params(
        ("id" = String, Path, description = "The token's id, from `GET /api/v1/tokens`."),
        ("X-CSRF-Token" = Option<String>, Header, description = "Required with the session cookie; not with a terminal token."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        ReviewerRefused,
        (status = 403, description = "No role in Signoff, or a failed CSRF check.", body = ErrorBody),
        (status = 404, description = "No such active token of the caller's.", body = ErrorBody),
        ChangeUnavailable,
    ),
    security(("terminal_token" = []), ("session_cookie" = []))
)]
async fn revoke_token(
    State(state): State<AppState>,
    CsrfChecked(Viewer(person)): CsrfChecked<Viewer>,
    Path(id): Path<String>,
) -> Result<Response, Error> {
    if person.desk(&state.service).revoke_token(&id).await? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(Error::NotFound("no such active token of yours".into()))
    }
}

/// `signoff logout`: the terminal revokes the token it holds.
#[utoipa::path(
    post, path = "/api/v1/tokens/revoke", tag = "reviewer", operation_id = "revoke_own_token",
    responses(
        (status = 204, description = "The token sent is revoked."),
        (status = 401, description = "No terminal token, or an unknown, expired or revoked one.", body = ErrorBody),
        ChangeUnavailable,
    ),
    security(("terminal_token" = []))
)]
async fn revoke_own_token(State(state): State<AppState>, parts: axum::http::request::Parts) -> Result<Response, Error> {
    let token = bearer(&parts)
        .filter(|token| token.starts_with(TERMINAL_TOKEN_PREFIX))
        .ok_or_else(|| Error::Unauthorized("send the terminal token to revoke as Authorization: Bearer".into()))?;
    let record = state
        .service
        .terminal_token(token)
        .await?
        .ok_or_else(|| Error::Unauthorized("unknown, expired or revoked terminal token".into()))?;
    state
        .service
        .revoke_terminal_token(&record.id, None, &record.identity)
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
