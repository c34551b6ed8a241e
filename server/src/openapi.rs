//! The API's OpenAPI 3.1 description, served at `GET /api/v1/openapi.json`. It is built from
//! the same routers `crate::http` serves (utoipa-axum registers each handler's route and its
//! `#[utoipa::path]` together), so a route cannot be served without being described.

use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Signoff API",
        description = "Agents submit sensitive actions and wait for a human decision; reviewers list, read and decide them. \
            Every error is `{\"error\": {\"code\": \"...\", \"message\": \"...\"}}` with the matching status.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "agent", description = "The agent API: authenticate with the agent's API key."),
        (name = "reviewer", description = "The reviewer API: a terminal token from `signoff login`, or the console's session cookie."),
        (name = "terminal sign-in", description = "How `signoff login` gets a terminal token (RFC 8628 names): no authentication."),
        (name = "audit", description = "The audit log's public evidence: checkpoints and proofs (hashes only). No authentication."),
        (name = "meta", description = "This description."),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

/// The schemes operations name in `security(...)`.
impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            let mut http = Http::new(HttpAuthScheme::Bearer);
            http.description = Some(description.to_string());
            SecurityScheme::Http(http)
        };
        components.add_security_scheme(
            "agent_key",
            bearer("An agent's API key (`so_agent_…`), from `signoff-server agents create`."),
        );
        components.add_security_scheme(
            "terminal_token",
            bearer("A reviewer's terminal token (`so_term_…`), from `signoff login`."),
        );
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "signoff_session",
                "The console's session cookie (`__Host-signoff_session` on https). State-changing calls also need the \
                 `X-CSRF-Token` header and a same-site `Origin`.",
            ))),
        );
    }
}

/// `GET /api/v1/openapi.json`, open without sign-in.
pub fn router() -> Router<AppState> {
    routes().into()
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).routes(routes!(openapi_json))
}

/// The document, from the routers `crate::http` serves.
pub fn document() -> Document {
    let mut document = routes().into_openapi();
    for router in [
        crate::api::requests::routes(),
        crate::api::requests::shared_routes(),
        crate::api::reviews::routes(),
        crate::signin::device::routes(),
        crate::audit_api::routes(),
    ] {
        document.merge(router.into_openapi());
    }
    document
}

static DOCUMENT: LazyLock<Result<String, String>> =
    LazyLock::new(|| document().to_pretty_json().map_err(|err| err.to_string()));

/// This API's OpenAPI 3.1 description.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "This document (OpenAPI 3.1).", content_type = "application/json", body = Object))
)]
async fn openapi_json() -> Response {
    match &*DOCUMENT {
        Ok(json) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            json.clone(),
        )
            .into_response(),
        Err(err) => crate::Error::Internal(format!("the OpenAPI document does not serialize: {err}")).into_response(),
    }
}
