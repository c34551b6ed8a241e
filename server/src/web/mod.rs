//! The console: server-rendered pages, their errors as pages, static assets, and the
//! security headers every response carries.

pub mod admin;
pub mod pages;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

const STYLESHEET: &str = include_str!("../../../style/signoff.css");
const SCRIPT: &str = include_str!("../../../style/console.js");

pub async fn stylesheet() -> Response {
    static_asset("text/css; charset=utf-8", STYLESHEET)
}

/// A small mark for the tab (SVG, so no binary asset to ship).
pub async fn favicon() -> Response {
    static_asset(
        "image/svg+xml",
        "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'><rect width='16' height='16' rx='3' fill='#2f5bd3'/><path d='M4 8.5l2.5 2.5L12 5.5' stroke='#fff' stroke-width='2' fill='none'/></svg>",
    )
}

pub async fn script() -> Response {
    static_asset("text/javascript; charset=utf-8", SCRIPT)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response
}

/// Security headers on every response: a strict CSP (no inline script or style, no
/// framing, forms only to us and the provider), no MIME sniffing, no referrer leakage,
/// and HSTS when people reach us over https.
pub async fn security_headers(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        state.auth.content_security_policy.clone(),
    );
    if state.auth.is_https() {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
