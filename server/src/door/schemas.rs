//! OpenAPI schemas the doors name in their descriptions that no wire type has: kept below
//! the doors, so the API modules and the document need not import each other.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::marker::PhantomData;

use utoipa::openapi::response::Response;
use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use signoff_app::wire::{LiveEvent, LiveEventKind, RequestView, ReviewView};

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

// Responses many operations share, each described once (`responses(…, AgentKeyRefused)`).

/// 401 on the agent API.
#[derive(utoipa::IntoResponses)]
#[response(status = 401, description = "Missing, unknown or revoked API key.")]
pub struct AgentKeyRefused(pub signoff_app::wire::ErrorBody);

/// 401 on the reviewer API.
#[derive(utoipa::IntoResponses)]
#[response(status = 401, description = "No valid terminal token or session.")]
pub struct ReviewerRefused(pub signoff_app::wire::ErrorBody);

/// 404 for an agent: another agent's request does not exist as far as it can tell.
#[derive(utoipa::IntoResponses)]
#[response(status = 404, description = "No such request of this agent's.")]
pub struct NotTheAgentsRequest(pub signoff_app::wire::ErrorBody);

/// 503 on a read.
#[derive(utoipa::IntoResponses)]
#[response(status = 503, description = "The database did not answer; try again.")]
pub struct ReadUnavailable(pub signoff_app::wire::ErrorBody);

/// 503 on a change: nothing was changed.
#[derive(utoipa::IntoResponses)]
#[response(status = 503, description = "The change could not be stored; try again.")]
pub struct ChangeUnavailable(pub signoff_app::wire::ErrorBody);

/// 413 for a JSON body.
#[derive(utoipa::IntoResponses)]
#[response(status = 413, description = "The body is larger than 1 MiB.")]
pub struct BodyTooLarge(pub signoff_app::wire::ErrorBody);

/// 415 for a JSON body.
#[derive(utoipa::IntoResponses)]
#[response(status = 415, description = "The body is not `application/json`.")]
pub struct NotJson(pub signoff_app::wire::ErrorBody);

/// Shared responses named together, as one entry of `responses(…)`.
pub struct Together<T>(PhantomData<T>);

macro_rules! together {
    ($($part:ident),+) => {
        impl<$($part: IntoResponses),+> IntoResponses for Together<($($part,)+)> {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                let mut all = BTreeMap::new();
                $(all.append(&mut $part::responses());)+
                all
            }
        }
    };
}

together!(A, B);
together!(A, B, C);

/// An agent's read of one of its requests refused: 401 (the key), 404 (not its request).
pub type AgentReadRefused = Together<(AgentKeyRefused, NotTheAgentsRequest)>;

/// An agent's change to one of its requests refused: 401, 404, and 503 (not stored).
pub type AgentChangeRefused = Together<(AgentKeyRefused, NotTheAgentsRequest, ChangeUnavailable)>;

/// A JSON body refused before it is read: 413 (too large), 415 (not JSON).
pub type JsonBodyRefused = Together<(BodyTooLarge, NotJson)>;
