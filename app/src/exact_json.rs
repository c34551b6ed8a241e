//! The OpenAPI schema of JSON the action digest can tell apart (feature `openapi`). A
//! leaf, importing nothing of the crate, so the model, the wire types and the document
//! all name it without importing one another.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{AnyOfBuilder, ArrayBuilder, ObjectBuilder, Ref, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

/// The largest integer magnitude the action digest tells apart (`check_exact_json`).
const EXACT_INTEGER_LIMIT: i64 = 1 << 53;

/// Any JSON value whose numbers the action digest can tell apart: integers within ±2^53,
/// other numbers below 2^53 in magnitude (`check_exact_json`).
pub(crate) struct ExactJson;

impl PartialSchema for ExactJson {
    fn schema() -> RefOr<Schema> {
        let itself = || Ref::from_schema_name(ExactJson::name());
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Boolean, Type::Null])))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(-EXACT_INTEGER_LIMIT))
                    .maximum(Some(EXACT_INTEGER_LIMIT)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(-EXACT_INTEGER_LIMIT))
                    .exclusive_maximum(Some(EXACT_INTEGER_LIMIT)),
            )
            .item(ArrayBuilder::new().items(itself()))
            .item(ObjectBuilder::new().schema_type(Type::Object).additional_properties(Some(itself())))
            .description(Some(
                "Any JSON whose numbers are exact: integers within ±2^53, other numbers smaller than 2^53; send larger ones as strings.",
            ))
            .into()
    }
}

impl ToSchema for ExactJson {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("ExactJson")
    }
}
