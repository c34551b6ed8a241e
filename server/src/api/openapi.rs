//! The API's OpenAPI 3.1 description, served at `GET /api/v1/openapi.json`. It is built from
//! the same routers `crate::http` serves (utoipa-axum registers each handler's route and its
//! `#[utoipa::path]` together), so a route cannot be served without being described.

use std::borrow::Cow;
use std::sync::LazyLock;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, Ref, RefOr};
use utoipa::{Modify, OpenApi, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use signoff_app::wire::{LiveEvent, LiveEventKind, RequestView, ReviewView};

use crate::http::AppState;

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

/// `GET /api/v1/requests/{id}` answers an agent with the request and a person with the
/// request and what they may do with it.
pub struct RequestForCaller;

impl PartialSchema for RequestForCaller {
    fn schema() -> RefOr<Schema> {
        AnyOfBuilder::new()
            .item(Ref::from_schema_name(RequestView::name()))
            .item(Ref::from_schema_name(ReviewView::name()))
            .into()
    }
}

impl ToSchema for RequestForCaller {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("RequestForCaller")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((RequestView::name().into_owned(), RequestView::schema()));
        RequestView::schemas(schemas);
        schemas.push((ReviewView::name().into_owned(), ReviewView::schema()));
        ReviewView::schemas(schemas);
    }
}

/// One server-sent event of `GET /api/v1/events`, as SSE clients read it (the shape OpenAPI
/// 3.2 gives stream items).
pub struct LiveEventMessage;

impl PartialSchema for LiveEventMessage {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "One server-sent event: `event` is the kind (`resync`: events were missed, reload), `data` a `LiveEvent` \
                 in JSON (`{}` for `resync`), `id` the position to resume after with `Last-Event-ID`.",
            ))
            .property(
                "event",
                AnyOfBuilder::new()
                    .item(Ref::from_schema_name(LiveEventKind::name()))
                    .item(ObjectBuilder::new().schema_type(Type::String).enum_values(Some(["resync"]))),
            )
            .property(
                "data",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .content_media_type("application/json")
                    .content_schema(Some(Ref::from_schema_name(LiveEvent::name()))),
            )
            .property(
                "id",
                ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[0-9]+$")),
            )
            .required("event")
            .required("data")
            .into()
    }
}

impl ToSchema for LiveEventMessage {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("LiveEventMessage")
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((LiveEvent::name().into_owned(), LiveEvent::schema()));
        LiveEvent::schemas(schemas);
        schemas.push((LiveEventKind::name().into_owned(), LiveEventKind::schema()));
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
        super::requests::routes(),
        super::requests::shared_routes(),
        super::reviews::routes(),
        crate::auth::device::routes(),
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
