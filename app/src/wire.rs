//! JSON shapes of the HTTP API, shared by the server, the terminal client and tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

pub use crate::model::event::LiveEventKind;
pub use crate::model::{AgentRef, ExecutionStatus, ResultReport};
use crate::model::{Channel, Decision, Identity, PolicySnapshot, Request, RequestId, Status, Verdict};

pub use crate::limits;

/// `POST /api/v1/requests`: what an agent asks to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// Dotted action name, e.g. `db.export`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::action_schema))]
    pub action: String,
    /// What the action touches, e.g. `postgres://prod/customers`.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::resource_schema))]
    pub resource: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::title_schema))]
    pub title: String,
    /// The agent's justification.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::reason_schema))]
    pub reason: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::labels_schema))]
    pub labels: BTreeMap<String, String>,
    /// The exact command or arguments that will run.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::exact_json::ExactJson))]
    pub payload: Value,
    /// Unified diff text, or `{"before": …, "after": …}` from which the server computes one.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::diff_input_schema))]
    pub diff: Option<Value>,
    /// Free context: conversation excerpt, trace link, risk.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::exact_json::ExactJson))]
    pub context: Option<Value>,
    /// The human the agent acts for (email or subject).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::on_behalf_of_schema))]
    pub on_behalf_of: Option<String>,
    /// Pending lifetime in seconds; the server's default when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::ttl_schema))]
    pub ttl_s: Option<u64>,
    /// Where the outcome (approved, denied, expired, cancelled) is POSTed, signed per
    /// Standard Webhooks; its host must be on the server's list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 2048))]
    pub callback_url: Option<String>,
}

/// A diff as submitted: text as is, or two JSON documents to compare.
#[derive(Clone, Debug, PartialEq)]
pub enum DiffInput {
    Unified(String),
    BeforeAfter { before: Value, after: Value },
}

impl NewRequest {
    /// Checks every field against the API's rules; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        use limits::*;
        if !is_action_name(&self.action) {
            return Err(format!(
                "action must be a dotted lower-case name such as `db.export` (letters, digits, `_`, `-`; at most {ACTION_CHARS} characters)"
            ));
        }
        check_text("resource", &self.resource, RESOURCE_CHARS, true)?;
        check_text("title", &self.title, TITLE_CHARS, true)?;
        check_text("reason", &self.reason, REASON_CHARS, false)?;
        if self.labels.len() > LABELS {
            return Err(format!("at most {LABELS} labels are allowed"));
        }
        for (key, value) in &self.labels {
            if key.is_empty()
                || key.chars().count() > LABEL_KEY_CHARS
                || !key.chars().all(|c| c.is_ascii_alphanumeric() || "._-/".contains(c))
            {
                return Err(format!(
                    "label key `{}` must be 1-{LABEL_KEY_CHARS} characters of letters, digits, `.`, `_`, `-`, `/`",
                    key.chars().take(LABEL_KEY_CHARS).collect::<String>()
                ));
            }
            check_text(&format!("label `{key}`"), value, LABEL_VALUE_CHARS, false)?;
        }
        if let Some(person) = &self.on_behalf_of {
            check_text("on_behalf_of", person, PERSON_CHARS, true)?;
        }
        if let Some(url) = &self.callback_url {
            check_text("callback_url", url, 2048, true)?;
        }
        if let Some(ttl) = self.ttl_s
            && !(1..=MAX_TTL_S).contains(&ttl)
        {
            return Err(format!("ttl_s must be between 1 and {MAX_TTL_S} seconds"));
        }
        self.diff_input()?;
        Ok(())
    }

    /// The digest the server will compute for this request (`crate::action_digest`), so
    /// an agent can hold the server's answers to what it submitted. `None` for a
    /// before/after diff, whose text only the server computes.
    pub fn expected_digest(&self) -> Option<String> {
        let diff = match self.diff_input().ok()? {
            None => None,
            Some(DiffInput::Unified(text)) => Some(text),
            Some(DiffInput::BeforeAfter { .. }) => return None,
        };
        Some(crate::model::action_digest(
            &self.action,
            &self.resource,
            &self.labels,
            &self.payload,
            diff.as_deref(),
        ))
    }

    /// The submitted diff, understood.
    pub fn diff_input(&self) -> Result<Option<DiffInput>, String> {
        match &self.diff {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(DiffInput::Unified(text.clone()))),
            Some(Value::Object(fields))
                if fields.len() == 2 && fields.contains_key("before") && fields.contains_key("after") =>
            {
                Ok(Some(DiffInput::BeforeAfter {
                    before: fields["before"].clone(),
                    after: fields["after"].clone(),
                }))
            }
            Some(_) => Err("diff must be unified diff text or an object {\"before\": …, \"after\": …}".into()),
        }
    }
}

fn check_text(field: &str, value: &str, max_chars: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err(format!("{field} is required"));
    }
    if value.chars().count() > max_chars {
        return Err(format!("{field} is longer than {max_chars} characters"));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(format!("{field} contains control characters"));
    }
    Ok(())
}

fn is_action_name(action: &str) -> bool {
    action.len() <= limits::ACTION_CHARS
        && !action.is_empty()
        && action.split('.').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        })
}

/// A request as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestView {
    pub id: RequestId,
    pub status: Status,
    pub agent: AgentRef,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub resource: String,
    pub title: String,
    pub reason: String,
    pub labels: BTreeMap<String, String>,
    pub payload: Value,
    pub diff: Option<String>,
    pub context: Option<Value>,
    /// SHA-256 over the canonical JSON of action, resource, labels, payload and diff.
    pub digest: String,
    pub policy: PolicySnapshot,
    /// Distinct people who approved so far.
    pub approvals: u32,
    pub decisions: Vec<DecisionView>,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<OffsetDateTime>,
    pub result: Option<ResultReport>,
    /// Approved by an admin the policy lets approve their own request, in an emergency.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// When the agent said it was starting the approved action
    /// (`POST /api/v1/requests/{id}/start`); an approval starts at most once.
    #[serde(
        with = "time::serde::rfc3339::option",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub started_at: Option<OffsetDateTime>,
    /// Once approved: the signed approval receipt (a compact JWS, EdDSA) an executor
    /// checks offline (`signoff verify-receipt`), and presents once when reporting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DecisionView {
    pub reviewer: Identity,
    pub verdict: Verdict,
    pub comment: String,
    pub channel: Channel,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub decided_at: OffsetDateTime,
}

/// `POST /api/v1/requests/{id}/decisions`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    pub verdict: Verdict,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::comment_schema))]
    pub comment: String,
    /// An admin the request's policy names approves their own request in an emergency:
    /// marked everywhere, and another admin must acknowledge it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
    /// Approve later requests of the same agent, action and resource too, within bounds
    /// the policy sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantInput>,
}

/// How far an approval's grant reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct GrantInput {
    /// How long, e.g. `1h`.
    pub duration: String,
    /// How many later requests it may approve.
    pub max_uses: u32,
    /// What later requests must keep equal to this one. Empty (the default): the whole
    /// action, i.e. payload, diff and labels. Payload fields (dotted paths): only those.
    /// `["*"]`: any payload, a deliberate widening.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
}

/// Every error the API returns: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> NewRequest {
        serde_json::from_value(json!({
            "action": "db.export", "resource": "db/customers", "title": "Export customers",
        }))
        .expect("minimal request parses")
    }

    #[test]
    fn minimal_request_is_valid_and_unknown_fields_are_refused() {
        assert_eq!(valid().validate(), Ok(()));
        let err = serde_json::from_value::<NewRequest>(json!({
            "action": "db.export", "resource": "r", "title": "t", "titel": "typo"
        }))
        .expect_err("unknown field refused");
        assert!(err.to_string().contains("titel"));
    }

    #[test]
    fn bad_fields_say_what_is_wrong() {
        type Mutation = fn(&mut NewRequest);
        let cases: Vec<(Mutation, &str)> = vec![
            (|r| r.action = "DB Export".into(), "action"),
            (|r| r.action = "db..export".into(), "action"),
            (|r| r.title = " ".into(), "title is required"),
            (|r| r.title = "x".repeat(201), "title is longer"),
            (
                |r| {
                    r.labels.insert("env prod".into(), "x".into());
                },
                "label key",
            ),
            (|r| r.ttl_s = Some(0), "ttl_s"),
            (|r| r.diff = Some(json!(42)), "diff must be"),
            (|r| r.diff = Some(json!({"before": 1})), "diff must be"),
            (|r| r.reason = "bell\u{7}".into(), "control characters"),
        ];
        for (mutate, expected) in cases {
            let mut request = valid();
            mutate(&mut request);
            let message = request.validate().expect_err("invalid");
            assert!(message.contains(expected), "{message:?} should mention {expected:?}");
        }
    }

    #[test]
    fn the_expected_digest_is_the_servers_for_text_diffs_only() {
        let mut request = valid();
        request.diff = Some(json!("--- a\n+++ b\n"));
        let expected = crate::model::action_digest(
            "db.export",
            "db/customers",
            &BTreeMap::new(),
            &Value::Null,
            Some("--- a\n+++ b\n"),
        );
        assert_eq!(request.expected_digest(), Some(expected));
        request.diff = Some(json!({"before": 1, "after": 2}));
        assert_eq!(request.expected_digest(), None);
    }

    #[test]
    fn diff_input_accepts_text_or_before_after() {
        let mut request = valid();
        request.diff = Some(json!("--- a\n+++ b\n"));
        assert!(matches!(request.diff_input(), Ok(Some(DiffInput::Unified(_)))));
        request.diff = Some(json!({"before": {"replicas": 2}, "after": {"replicas": 3}}));
        assert!(matches!(request.diff_input(), Ok(Some(DiffInput::BeforeAfter { .. }))));
    }
}

// ----- reviewer API ------------------------------------------------------------------------

/// Whether the person asking may decide a request, and if not, why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Eligibility {
    pub can_decide: bool,
    /// Why not, in words a reviewer understands (own request, not an approver, already
    /// voted, no longer pending, expired).
    pub reason: Option<String>,
}

/// A row of the queue or of history: `GET /api/v1/requests`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestSummary {
    pub id: RequestId,
    pub status: Status,
    pub title: String,
    pub action: String,
    pub resource: String,
    pub labels: BTreeMap<String, String>,
    pub agent: String,
    pub on_behalf_of: Option<String>,
    pub approvals: u32,
    pub approvals_required: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided so far (display names) with their verdicts.
    #[serde(default)]
    pub deciders: Vec<Decider>,
    /// Present when a reviewer asks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub viewer: Option<Eligibility>,
    /// Approved by a break-glass approval.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub break_glass: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Decider {
    pub name: String,
    pub verdict: Verdict,
}

/// One page of requests; pass `next_cursor` as `cursor` for the next.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RequestPage {
    pub items: Vec<RequestSummary>,
    pub next_cursor: Option<String>,
}

/// A request with what the viewer may do with it: `GET /api/v1/requests/{id}` for reviewers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReviewView {
    #[serde(flatten)]
    pub request: RequestView,
    pub viewer: Eligibility,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Reviewer,
    Admin,
    /// Reads and exports the audit trail, nothing else.
    Auditor,
}

/// `GET /api/v1/me`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub identity: Identity,
    pub roles: Vec<Role>,
    #[serde(with = "time::serde::rfc3339::option", default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub auth_time: Option<OffsetDateTime>,
}

/// What `GET /api/v1/events` streams (server-sent events; the SSE `event:` field is the
/// kind and `id:` a resumable position for `Last-Event-ID`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LiveEvent {
    pub kind: LiveEventKind,
    pub request_id: RequestId,
    pub status: Status,
}

/// The SSE event that tells a client it may have missed events and should read afresh.
pub const RESYNC_EVENT: &str = "resync";

// ----- terminal sign-in (device flow brokered by the server) -----------------------------

/// `POST /api/v1/device/code` body (JSON; optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct DeviceCodeRequest {
    /// Shown to the reviewer confirming, e.g. the host name.
    #[serde(default)]
    pub client_name: Option<String>,
}

/// `POST /api/v1/device/code` answer (RFC 8628 names).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCode {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    /// Not sent: the reviewer types the code the terminal shows, never a link's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

/// `POST /api/v1/device/token` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceTokenRequest {
    pub device_code: String,
}

/// `POST /api/v1/device/token` success.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

/// `POST /api/v1/device/token` refusal, as RFC 8628 words it: `error` is one of
/// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`, `invalid_grant`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceTokenError {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// A terminal token as its owner and admins see it: `GET /api/v1/tokens`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub id: String,
    pub client_name: Option<String>,
    pub owner: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: OffsetDateTime,
}

impl Request {
    /// The request as the API shows it, with its decisions.
    pub fn into_view(self, decisions: Vec<Decision>) -> RequestView {
        RequestView {
            id: self.id,
            status: self.status,
            agent: self.agent,
            on_behalf_of: self.on_behalf_of,
            action: self.action,
            resource: self.resource,
            title: self.title,
            reason: self.reason,
            labels: self.labels,
            payload: self.payload,
            diff: self.diff,
            context: self.context,
            digest: self.digest,
            policy: self.policy,
            approvals: self.approvals,
            decisions: decisions.into_iter().map(Decision::into_view).collect(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            decided_at: self.decided_at,
            result: self.result,
            break_glass: self.break_glass,
            started_at: self.started_at,
            receipt: self.receipt,
        }
    }
}

impl Decision {
    pub fn into_view(self) -> DecisionView {
        DecisionView {
            reviewer: self.reviewer,
            verdict: self.verdict,
            comment: self.comment,
            channel: self.channel,
            decided_at: self.decided_at,
        }
    }
}

// ----- events as published (webhooks) --------------------------------------------------

/// An audit event as Signoff publishes it (the body of a webhook): Standard Webhooks'
/// `{type, timestamp, data}`, the data carrying the event's place in the trail, who caused
/// it and its kind's own fields (see `app::model::event`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedEvent {
    /// The event's kind, as the audit trail spells it (`request.created`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    pub data: PublishedData,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PublishedData {
    /// Its sequence number in the audit trail: increasing, and the same on every delivery.
    pub seq: i64,
    pub request_id: Option<RequestId>,
    pub actor: crate::model::Actor,
    /// The kind's own fields.
    pub event: Value,
}

impl PublishedEvent {
    pub fn new(
        seq: i64,
        at: OffsetDateTime,
        request_id: Option<RequestId>,
        actor: crate::model::Actor,
        event: &crate::model::Event,
    ) -> Self {
        PublishedEvent {
            kind: event.kind().as_str().to_string(),
            timestamp: at,
            data: PublishedData {
                seq,
                request_id,
                actor,
                event: event.data(),
            },
        }
    }
}
