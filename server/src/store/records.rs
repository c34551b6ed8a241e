//! Rows as the rest of the server sees them, and their decoding (shared by both dialects).

use serde::Serialize;
use time::OffsetDateTime;

use signoff_app::wire::AgentRef;
use signoff_app::{AgentId, Channel, Identity};

use crate::{Error, Result};

/// An agent: a program that holds API keys and submits requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub name: String,
    /// The human responsible for the agent; they cannot approve its requests.
    pub owner: Option<String>,
    pub created_at: OffsetDateTime,
    /// The hash of the key it authenticated with, when it did: a long-poll checks the
    /// key is still valid before answering.
    pub key_hash: Option<String>,
}

impl Agent {
    pub fn to_ref(&self) -> AgentRef {
        AgentRef {
            id: self.id,
            name: self.name.clone(),
            owner: self.owner.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct AgentSummary {
    /// What the agent is for, as its admin described it.
    pub description: Option<String>,
    pub agent: Agent,
    pub active_keys: i64,
}

/// Requests, decisions and grants are the lifecycle's own types (`signoff_app::model`);
/// the store only reads and writes them.
pub use signoff_app::{Decision as DecisionRecord, Request as StoredRequest};

/// What creating a request stores besides the request itself.
#[derive(Clone, Debug)]
pub struct NewRecord {
    pub request: StoredRequest,
    pub idempotency_key: Option<String>,
}

pub use signoff_app::unix_millis as millis;

pub fn from_millis(ms: i64) -> Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| corrupt("timestamp", &ms.to_string()))
}

pub fn to_json<T: Serialize + ?Sized>(value: &T) -> String {
    // Our own types always serialise; an empty object would only hide a bug in tests.
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

pub fn from_json<T: serde::de::DeserializeOwned>(field: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|_| corrupt(field, text))
}

pub fn parse_id<T: std::str::FromStr>(text: &str) -> Result<T> {
    text.parse().map_err(|_| corrupt("id", text))
}

fn corrupt(field: &str, value: &str) -> Error {
    Error::Internal(format!(
        "stored {field} cannot be read: {}",
        value.chars().take(80).collect::<String>()
    ))
}

/// A row of `REQUEST_COLUMNS`, as stored (decoded by sqlx's derive, on either dialect).
#[derive(sqlx::FromRow)]
pub struct RequestColumns {
    pub id: String,
    pub agent_id: String,
    pub agent_name: String,
    pub agent_owner: Option<String>,
    pub on_behalf_of: Option<String>,
    pub action: String,
    pub resource: String,
    pub title: String,
    pub reason: String,
    pub labels: String,
    pub payload: String,
    pub diff: Option<String>,
    pub context: Option<String>,
    pub digest: String,
    pub status: String,
    pub policy: String,
    pub approvals: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub result: Option<String>,
    pub body_hash: Option<String>,
    pub break_glass: i64,
    pub escalates_at: Option<i64>,
    pub started_at: Option<i64>,
    pub remind_at: Option<i64>,
    pub callback_url: Option<String>,
    pub receipt: Option<String>,
    pub receipt_used_at: Option<i64>,
}

impl RequestColumns {
    pub fn decode(self) -> Result<StoredRequest> {
        Ok(StoredRequest {
            id: parse_id(&self.id)?,
            agent: AgentRef {
                id: parse_id(&self.agent_id)?,
                name: self.agent_name,
                owner: self.agent_owner,
            },
            on_behalf_of: self.on_behalf_of,
            action: self.action,
            resource: self.resource,
            title: self.title,
            reason: self.reason,
            labels: from_json("labels", &self.labels)?,
            payload: from_json("payload", &self.payload)?,
            diff: self.diff,
            context: self
                .context
                .as_deref()
                .map(|text| from_json("context", text))
                .transpose()?,
            digest: self.digest,
            status: self.status.parse().map_err(|_| corrupt("status", &self.status))?,
            policy: from_json("policy", &self.policy)?,
            approvals: u32::try_from(self.approvals).map_err(|_| corrupt("approvals", &self.approvals.to_string()))?,
            created_at: from_millis(self.created_at)?,
            expires_at: from_millis(self.expires_at)?,
            decided_at: self.decided_at.map(from_millis).transpose()?,
            result: self
                .result
                .as_deref()
                .map(|text| from_json("result", text))
                .transpose()?,
            body_hash: self.body_hash,
            break_glass: self.break_glass != 0,
            escalates_at: self.escalates_at.map(from_millis).transpose()?,
            started_at: self.started_at.map(from_millis).transpose()?,
            remind_at: self.remind_at.map(from_millis).transpose()?,
            callback_url: self.callback_url,
            receipt: self.receipt,
            receipt_used_at: self.receipt_used_at.map(from_millis).transpose()?,
        })
    }
}

/// A row of `DECISION_COLUMNS`, as stored.
#[derive(sqlx::FromRow)]
pub struct DecisionColumns {
    pub request_id: String,
    pub reviewer_issuer: String,
    pub reviewer_subject: String,
    pub reviewer_email: Option<String>,
    pub reviewer_name: Option<String>,
    pub reviewer_groups: String,
    pub verdict: String,
    pub comment: String,
    pub channel: String,
    pub decided_at: i64,
}

impl DecisionColumns {
    pub fn decode(self) -> Result<DecisionRecord> {
        Ok(DecisionRecord {
            request_id: parse_id(&self.request_id)?,
            reviewer: Identity {
                issuer: self.reviewer_issuer,
                subject: self.reviewer_subject,
                email: self.reviewer_email,
                // Not stored with decisions; ballots compare people by any email
                // (see `Identity::same_person`), so nothing depends on it here.
                email_verified: false,
                name: self.reviewer_name,
                groups: from_json("reviewer_groups", &self.reviewer_groups)?,
            },
            verdict: signoff_app::Verdict::parse(&self.verdict).ok_or_else(|| corrupt("verdict", &self.verdict))?,
            comment: self.comment,
            channel: Channel::parse(&self.channel).ok_or_else(|| corrupt("channel", &self.channel))?,
            decided_at: from_millis(self.decided_at)?,
        })
    }
}

/// Reads a row of `REQUEST_COLUMNS` (either dialect) into a [`StoredRequest`].
macro_rules! request_from_row {
    ($row:expr) => {
        <$crate::store::records::RequestColumns as sqlx::FromRow<_>>::from_row(&$row)?.decode()?
    };
}
pub(crate) use request_from_row;

/// Reads a row of `DECISION_COLUMNS` into a [`DecisionRecord`].
macro_rules! decision_from_row {
    ($row:expr) => {
        <$crate::store::records::DecisionColumns as sqlx::FromRow<_>>::from_row(&$row)?.decode()?
    };
}
pub(crate) use decision_from_row;

/// Reads `id, name, owner, created_at` into an [`Agent`].
macro_rules! agent_from_row {
    ($row:expr) => {{
        let row = &$row;
        $crate::store::records::Agent {
            id: $crate::store::records::parse_id(&row.try_get::<String, _>("id")?)?,
            name: row.try_get("name")?,
            owner: row.try_get("owner")?,
            created_at: $crate::store::records::from_millis(row.try_get("created_at")?)?,
            key_hash: None,
        }
    }};
}
pub(crate) use agent_from_row;
