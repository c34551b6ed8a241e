//! OpenAPI schemas for the model types the wire types carry (feature `openapi`). Written
//! here, beside the wire types, so the model stays free of documentation concerns; the
//! enums' values come from the types themselves, so they cannot drift.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ObjectBuilder, Ref, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::{PartialSchema, ToSchema};

use crate::exact_json::ExactJson;
use crate::limits;
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
    string_enum(
        "A reviewer's verdict.",
        [Verdict::Approve, Verdict::Deny].map(Verdict::as_str)
    )
);
named_schema!(
    Channel,
    "Channel",
    string_enum(
        "Where a decision was made.",
        [Channel::Web, Channel::Terminal, Channel::Api, Channel::Slack].map(Channel::as_str),
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
    /// The stored policy's id; absent for the default.
    id: Option<String>,
    effect: EffectKindSchema,
    /// Why it matched: which patterns, labels, condition (and a grant, if one approved it).
    why: Option<Vec<String>>,
    /// What the agent is told when the policy denies.
    deny_reason: Option<String>,
    /// At least one approver from each of these groups.
    one_from_each: Option<Vec<String>>,
    /// Approvals need a comment too.
    comment_required: Option<bool>,
    escalation: Option<EscalationSchema>,
    grants: Option<GrantTermsSchema>,
    /// Admins who may approve their own request in an emergency.
    break_glass: Option<Vec<String>>,
}

/// What the policy does with a request.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum EffectKindSchema {
    Allow,
    Deny,
    RequireApproval,
}

/// After `after_minutes` pending, members of `groups` may approve too.
#[derive(ToSchema)]
#[allow(dead_code)]
struct EscalationSchema {
    after_minutes: u32,
    groups: Vec<String>,
}

/// How far a grant may reach.
#[derive(ToSchema)]
#[allow(dead_code)]
struct GrantTermsSchema {
    /// E.g. `8h`.
    max_duration: String,
    max_uses: u32,
}

// ----- what an agent may submit, as precisely as `NewRequest::validate` checks it ----------

/// No control characters but tab and line breaks (`char::is_control`, Unicode Cc).
const NO_CONTROL: &str = r"[^\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]";
/// Neither a control character nor white space (`char::is_whitespace`).
const VISIBLE: &str = r"[^\u0000-\u0020\u007F-\u00A0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]";

fn text_builder(max_chars: usize, required: bool) -> ObjectBuilder {
    let pattern = if required {
        format!("^{NO_CONTROL}*{VISIBLE}{NO_CONTROL}*$")
    } else {
        format!("^{NO_CONTROL}*$")
    };
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(max_chars))
        .pattern(Some(pattern))
}

fn nullable(builder: ObjectBuilder, of: Type) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([of, Type::Null]))
}

pub(crate) fn action_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(limits::ACTION_CHARS))
        .pattern(Some(r"^[a-z0-9_-]+(\.[a-z0-9_-]+)*$"))
        .description(Some("Dotted lower-case action name, e.g. `db.export`."))
}

pub(crate) fn resource_schema() -> ObjectBuilder {
    text_builder(limits::RESOURCE_CHARS, true)
        .description(Some("What the action touches, e.g. `postgres://prod/customers`."))
}

pub(crate) fn title_schema() -> ObjectBuilder {
    text_builder(limits::TITLE_CHARS, true)
}

pub(crate) fn reason_schema() -> ObjectBuilder {
    text_builder(limits::REASON_CHARS, false).description(Some("The agent's justification."))
}

pub(crate) fn on_behalf_of_schema() -> ObjectBuilder {
    nullable(text_builder(limits::PERSON_CHARS, true), Type::String).description(Some(
        "The human the agent acts for (email or subject); none of them may decide it.",
    ))
}

pub(crate) fn comment_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(limits::COMMENT_CHARS))
        .description(Some("Why; a denial needs one."))
}

pub(crate) fn ttl_schema() -> ObjectBuilder {
    nullable(ObjectBuilder::new(), Type::Integer)
        .minimum(Some(1))
        .maximum(Some(limits::MAX_TTL_S))
        .description(Some("Pending lifetime in seconds; the server's default when absent."))
}

pub(crate) fn labels_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(limits::LABELS))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^[A-Za-z0-9._/-]{{1,{}}}$", limits::LABEL_KEY_CHARS))),
        ))
        .additional_properties(Some(text_builder(limits::LABEL_VALUE_CHARS, false)))
        .description(Some("Free key=value labels that policies and filters match on."))
}

/// Unified diff text, or `{"before": …, "after": …}` from which the server computes one.
pub(crate) fn diff_input_schema() -> AnyOfBuilder {
    AnyOfBuilder::new()
        .item(ObjectBuilder::new().schema_type(SchemaType::from_iter([Type::String, Type::Null])))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property("before", Ref::from_schema_name(ExactJson::name()))
                .property("after", Ref::from_schema_name(ExactJson::name()))
                .required("before")
                .required("after")
                .additional_properties(Some(AdditionalProperties::FreeForm(false))),
        )
        .description(Some(
            "Unified diff text, or `{\"before\": …, \"after\": …}` from which the server computes one.",
        ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every property a model type serializes is one its schema names, and the other way round.
    fn assert_same_fields(schema: RefOr<Schema>, value: Value) {
        let schema = serde_json::to_value(schema).expect("schema serializes");
        let mut documented: Vec<&String> = schema["properties"].as_object().expect("properties").keys().collect();
        let mut serialized: Vec<&String> = value.as_object().expect("an object").keys().collect();
        documented.sort();
        serialized.sort();
        assert_eq!(documented, serialized);
    }

    /// Read from JSON, so a field added to the model with a default shows up here as a
    /// property the schema misses.
    #[test]
    fn model_schemas_name_the_serialized_fields() {
        let identity: Identity =
            serde_json::from_value(json!({"issuer": "https://sso", "subject": "s", "email": null, "name": null}))
                .expect("an identity");
        assert_same_fields(Identity::schema(), serde_json::to_value(identity).expect("serializes"));
        let policy: PolicySnapshot = serde_json::from_value(json!({
            "name": "prod", "version": 1, "approvals_required": 1, "approver_groups": ["sre"],
            "id": "p1", "effect": "require_approval", "why": ["action matches `db.*`"], "deny_reason": "no",
            "one_from_each": ["leads"], "comment_required": true,
            "escalation": {"after_minutes": 5, "groups": ["oncall"]},
            "grants": {"max_duration": "1h", "max_uses": 2}, "break_glass": ["ada@example.com"],
        }))
        .expect("a policy with every field");
        assert_same_fields(
            PolicySnapshot::schema(),
            serde_json::to_value(policy).expect("serializes"),
        );
    }
}
