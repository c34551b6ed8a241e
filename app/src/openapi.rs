//! OpenAPI schemas for the model types the wire types carry (feature `openapi`). Written
//! here, beside the wire types, so the model stays free of documentation concerns; the
//! enums' values come from the types themselves, so they cannot drift.

use std::borrow::Cow;

use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::RefOr;
use utoipa::{PartialSchema, ToSchema};

use crate::model::{AgentId, Channel, Identity, PolicySnapshot, RequestId, Status, Verdict};

fn string_enum(description: &str, values: impl IntoIterator<Item = &'static str>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values))
        .into()
}

fn uuid(description: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::Custom("uuid".into())))
        .description(Some(description))
        .into()
}

macro_rules! named_schema {
    ($type:ty, $name:literal, $schema:expr) => {
        impl PartialSchema for $type {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $type {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed($name)
            }
        }
    };
}

named_schema!(
    Status,
    "Status",
    string_enum(
        "Where a request stands: pending until decided, expired or cancelled; approved requests end executed or failed when the agent reports.",
        Status::ALL.map(Status::as_str),
    )
);
named_schema!(
    Verdict,
    "Verdict",
    string_enum("A reviewer's verdict.", [Verdict::Approve, Verdict::Deny].map(Verdict::as_str))
);
named_schema!(
    Channel,
    "Channel",
    string_enum(
        "Where a decision was made.",
        [Channel::Web, Channel::Terminal, Channel::Api].map(Channel::as_str),
    )
);
named_schema!(RequestId, "RequestId", uuid("Identifies a request (UUIDv7)."));
named_schema!(AgentId, "AgentId", uuid("Identifies an agent (UUIDv7)."));
named_schema!(Identity, "Identity", IdentitySchema::schema());
named_schema!(PolicySnapshot, "PolicySnapshot", PolicySnapshotSchema::schema());

/// A person as the OpenID Provider described them at sign-in.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the shape `Identity` serializes to.
struct IdentitySchema {
    issuer: String,
    subject: String,
    email: Option<String>,
    /// Whether the provider vouched for `email`.
    email_verified: bool,
    name: Option<String>,
    groups: Vec<String>,
}

/// The policy that matched a request, frozen on it when it was created.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used: the shape `PolicySnapshot` serializes to.
struct PolicySnapshotSchema {
    name: String,
    version: i64,
    approvals_required: u32,
    /// Groups whose members may decide.
    approver_groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every property a model type serializes is one its schema names, and the other way round.
    fn assert_same_fields(schema: RefOr<Schema>, value: Value) {
        let schema = serde_json::to_value(schema).expect("schema serializes");
        let mut documented: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
        let mut serialized: Vec<&String> = value.as_object().expect("an object").keys().collect();
        documented.sort();
        serialized.sort();
        assert_eq!(documented, serialized);
    }

    #[test]
    fn model_schemas_name_the_serialized_fields() {
        let identity = Identity {
            issuer: "https://sso".into(),
            subject: "s".into(),
            email: None,
            email_verified: false,
            name: None,
            groups: Vec::new(),
        };
        assert_same_fields(Identity::schema(), serde_json::to_value(identity).expect("serializes"));
        let policy = PolicySnapshot {
            name: "default".into(),
            version: 1,
            approvals_required: 1,
            approver_groups: Vec::new(),
        };
        assert_same_fields(PolicySnapshot::schema(), serde_json::to_value(policy).expect("serializes"));
    }
}
