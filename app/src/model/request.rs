//! A request as the lifecycle holds it: the one internal shape from which the stored row,
//! the API's view and the audit events all derive (see ARCHITECTURE.md, "The lifecycle").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use super::rules::{Ballot, Channel, DecisionContext, Identity, PolicySnapshot, RequestParties, Verdict};
use super::{AgentId, RequestId, Status};

/// The agent that submitted a request, as requests name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AgentRef {
    pub id: AgentId,
    pub name: String,
    pub owner: Option<String>,
}

/// `POST /api/v1/requests/{id}/result`: what happened when the agent ran the action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResultReport {
    pub status: ExecutionStatus,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = crate::exact_json::ExactJson))]
    pub detail: Option<Value>,
    /// The approval receipt, when the agent presents it: it is then used, and a second
    /// report with it is refused. Never stored with the result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ExecutionStatus {
    Executed,
    Failed,
}

impl ExecutionStatus {
    pub fn status(self) -> Status {
        match self {
            ExecutionStatus::Executed => Status::Executed,
            ExecutionStatus::Failed => Status::Failed,
        }
    }
}

/// A request, without its decisions.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub id: RequestId,
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
    pub digest: String,
    pub status: Status,
    pub policy: PolicySnapshot,
    pub approvals: u32,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub decided_at: Option<OffsetDateTime>,
    pub result: Option<ResultReport>,
    pub body_hash: Option<String>,
    /// Approved by a break-glass approval: marked everywhere.
    pub break_glass: bool,
    /// When its policy's escalation groups may approve too, until that is announced.
    pub escalates_at: Option<OffsetDateTime>,
    /// When the agent started the approved action; set once.
    pub started_at: Option<OffsetDateTime>,
    /// When the reminder before expiry is due, until it is sent.
    pub remind_at: Option<OffsetDateTime>,
    /// Where the agent asked to be told the outcome.
    pub callback_url: Option<String>,
    /// The signed approval receipt, issued when it was approved (`crate::evidence::receipt`).
    pub receipt: Option<String>,
    /// When a report presented the receipt: it is used, once.
    pub receipt_used_at: Option<OffsetDateTime>,
}

impl Request {
    /// The humans this request is for; none of them may decide it.
    pub fn parties(&self) -> RequestParties {
        RequestParties {
            on_behalf_of: self.on_behalf_of.clone(),
            agent_owner: self.agent.owner.clone(),
        }
    }

    /// The request as the decision rules see it, with its parties and the votes so far.
    pub fn decision_context<'a>(&'a self, parties: &'a RequestParties, ballots: &'a [Ballot]) -> DecisionContext<'a> {
        DecisionContext {
            created_at: self.created_at,
            status: self.status,
            expires_at: self.expires_at,
            policy: &self.policy,
            parties,
            ballots,
        }
    }
}

#[cfg(feature = "policy")]
impl Request {
    /// What policy matching looks at.
    pub fn facts(&self) -> super::policy::RequestFacts<'_> {
        super::policy::RequestFacts {
            agent: &self.agent.name,
            action: &self.action,
            resource: &self.resource,
            labels: &self.labels,
            payload: &self.payload,
            context: self.context.as_ref(),
            on_behalf_of: self.on_behalf_of.as_deref(),
            title: &self.title,
            reason: &self.reason,
        }
    }
}

/// One reviewer's decision on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub request_id: RequestId,
    pub reviewer: Identity,
    pub verdict: Verdict,
    pub comment: String,
    pub channel: Channel,
    pub decided_at: OffsetDateTime,
}

impl Decision {
    /// This decision as a vote the rules count.
    pub fn ballot(&self) -> Ballot {
        Ballot {
            reviewer: self.reviewer.clone(),
            verdict: self.verdict,
        }
    }
}

/// Later requests like an approved one, approved at creation within bounds the approvers
/// chose (see ARCHITECTURE.md, "Policies").
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub id: String,
    /// The request whose approval gave it.
    pub request_id: RequestId,
    pub policy_id: String,
    pub policy_version: i64,
    pub agent_id: AgentId,
    pub agent_name: String,
    pub action: String,
    pub resource: String,
    /// What a later request must carry: payload fields (dotted paths) with these values,
    /// or `$digest` for the whole action; none for any payload.
    pub fields: BTreeMap<String, Value>,
    pub granted_by: Vec<Identity>,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub max_uses: i64,
    pub uses: i64,
    pub revoked_at: Option<OffsetDateTime>,
    pub revoked_by: Option<Identity>,
}

impl Grant {
    /// Whether it may still approve a request at `now`: the one place this is decided.
    pub fn active(&self, now: OffsetDateTime) -> bool {
        super::grant::grant_is_active(self.revoked_at, self.expires_at, self.uses, self.max_uses, now)
    }
}

/// Unix milliseconds: the precision every stored time and event has.
pub fn unix_millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}
