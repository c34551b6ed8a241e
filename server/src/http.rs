//! The assembly of all routes into one router. Nothing but startup imports it: the doors
//! (API, sign-in, console, MCP) import their shared state from `crate::state`.

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderName, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use signoff_app::wire::limits;

use crate::Error;
use crate::api::{requests, reviews};
use crate::auth;
use crate::state::AppState;
use crate::web;
use crate::{door, signin};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// `serve_metrics`: whether `GET /metrics` is on this router (false when it has a listener of
/// its own, see [`metrics_router`]).
pub fn router(state: AppState, session_idle_timeout: std::time::Duration, serve_metrics: bool) -> Router {
    let https = state.auth.is_https();
    // On https the `__Host-` prefix makes browsers refuse the cookie unless it is Secure,
    // host-only and for the whole site, so no sibling domain can plant or shadow it.
    let cookie_name = if https {
        "__Host-signoff_session"
    } else {
        "signoff_session"
    };
    let session_layer = tower_sessions::SessionManagerLayer::new(state.sessions.clone())
        .with_name(cookie_name)
        .with_http_only(true)
        .with_same_site(tower_sessions::cookie::SameSite::Lax)
        .with_secure(https)
        .with_path("/")
        .with_expiry(tower_sessions::Expiry::OnInactivity(
            time::Duration::try_from(session_idle_timeout).unwrap_or(time::Duration::hours(2)),
        ));
    // Sessions (and their cross-site check) only where people come with cookies: the
    // agent API, where thousands of agents long-poll, carries none of that weight.
    // Page errors are rendered only around the pages: the reviewer API answers JSON and
    // pays nothing for them.
    let pages = Router::new()
        .merge(signin::routes::router())
        .merge(signin::device::router())
        .merge(web::pages::router())
        .merge(web::admin::router())
        .merge(crate::integrations::pages())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            door::render_page_errors,
        ));
    let for_people = Router::new()
        .merge(requests::shared_router())
        .merge(reviews::router())
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::refuse_cross_site,
        ))
        .layer(session_layer);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(crate::openapi::router())
        .route("/static/signoff.css", get(web::stylesheet))
        .route("/static/console.js", get(web::script))
        .route("/favicon.ico", get(web::favicon))
        .merge(if serve_metrics { metrics_routes() } else { Router::new() })
        .merge(requests::router())
        .merge(crate::mcp::router(state.clone()))
        .merge(crate::integrations::router())
        .merge(crate::audit_api::router())
        .merge(for_people)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::security_headers,
        ))
        .layer(DefaultBodyLimit::max(limits::BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            // Only the method, path and request id: never headers (keys, cookies).
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_default();
            tracing::info_span!("http", method = %request.method(), path = %request.uri().path(), request_id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Outermost, so responses made by the layers above (body limit, ...) count too.
        .layer(axum::middleware::from_fn(crate::metrics::count_responses))
        .with_state(state)
}

/// `GET /metrics` alone, for a listener of its own (`metrics_listen`).
pub fn metrics_router(state: AppState) -> Router {
    metrics_routes().with_state(state)
}

fn metrics_routes() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics_text))
}

/// Prometheus' scrape. Open without sign-in, like /healthz: scrapers carry no session, and
/// operators who want it private give it its own address.
async fn metrics_text(State(state): State<AppState>) -> axum::response::Response {
    // Read from the waiters at scrape time rather than tracked on every wait and wake-up.
    crate::metrics::waiting_agents(state.service.waiting_agents());
    match crate::metrics::render() {
        Some(text) => ([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], text).into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics unavailable: another recorder is installed in this process",
        )
            .into_response(),
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the database answers.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.service.ping().await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(err) => {
            tracing::warn!(%err, "not ready: the database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
        }
    }
}

/// Unknown paths: a page for browsers, JSON for programs.
async fn not_found(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if wants_html {
        // Outside the console's routes, so outside their page-error layer: rendered here.
        let error = Error::NotFound("there is no page at this address".into());
        door::error_response(&state, None, StatusCode::NOT_FOUND, error.public_message())
    } else {
        Error::NotFound("no such endpoint".into()).into_response()
    }
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response = Error::BadRequest("this endpoint does not accept that method".into()).into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}
