//! The one vocabulary of what happens: every kind of event, its data, who caused it, and
//! the one sentence each is shown with. The audit trail stores an event's `kind()` and
//! its data's canonical JSON; the bus carries it; live events, the timeline, the admin
//! audit page and the terminal render it with [`Event::describe`]. A new kind does not
//! compile until it has a spelling, a data type and a sentence (see ARCHITECTURE.md,
//! "Events").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::request::ResultReport;
use super::rules::{Channel, Identity, PolicySnapshot, Verdict};
use super::{RequestId, Status};

/// Who caused an event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    Agent {
        id: String,
        name: String,
    },
    Reviewer(Identity),
    /// Someone with shell access running `signoff-server` subcommands.
    Operator,
    /// The server itself (expiry, quorum reached, policies deciding).
    System,
}

impl Actor {
    pub fn agent(id: impl ToString, name: &str) -> Actor {
        Actor::Agent {
            id: id.to_string(),
            name: name.to_string(),
        }
    }

    /// "by …", as every screen shows it.
    pub fn describe(&self) -> String {
        format!("by {}", self.name())
    }

    /// Who, in a few words: a person by email, else by name, else by subject.
    pub fn name(&self) -> String {
        match self {
            Actor::Agent { name, .. } => format!("agent {name}"),
            Actor::Reviewer(identity) => identity
                .email
                .as_deref()
                .or(identity.name.as_deref())
                .unwrap_or(&identity.subject)
                .to_string(),
            Actor::Operator => "operator (command line)".to_string(),
            Actor::System => "Signoff".to_string(),
        }
    }
}

/// Declares every kind once: its variant, its stored spelling and its data type.
macro_rules! vocabulary {
    ($( $(#[$doc:meta])* $variant:ident = $kind:literal ($data:ty), )+) => {
        /// Every kind of event, by name.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Kind {
            $( $(#[$doc])* $variant, )+
        }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$( Kind::$variant, )+];

            /// The stored spelling: the only place a kind is written as text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Kind::$variant => $kind, )+
                }
            }

            pub fn parse(text: &str) -> Option<Kind> {
                match text {
                    $( $kind => Some(Kind::$variant), )+
                    _ => None,
                }
            }
        }

        /// An event with its data.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Event {
            $( $(#[$doc])* $variant($data), )+
        }

        impl Event {
            pub fn kind(&self) -> Kind {
                match self {
                    $( Event::$variant(_) => Kind::$variant, )+
                }
            }

            /// The data as stored (its canonical JSON is what the audit chain hashes).
            pub fn data(&self) -> Value {
                let value = match self {
                    $( Event::$variant(data) => serde_json::to_value(data), )+
                };
                // Plain structs of strings, numbers and maps always serialise.
                value.unwrap_or(Value::Null)
            }

            /// Reads a stored event back.
            pub fn from_stored(kind: &str, data: Value) -> Result<Event, UnreadableEvent> {
                let known = Kind::parse(kind).ok_or_else(|| UnreadableEvent {
                    kind: kind.to_string(),
                    reason: "unknown kind".to_string(),
                })?;
                let read = match known {
                    $( Kind::$variant => serde_json::from_value(data).map(Event::$variant), )+
                };
                read.map_err(|err| UnreadableEvent {
                    kind: kind.to_string(),
                    reason: err.to_string(),
                })
            }
        }
    };
}

vocabulary! {
    RequestCreated = "request.created" (Box<Created>),
    /// One reviewer's approval or denial.
    DecisionRecorded = "decision.recorded" (Decided),
    RequestApproved = "request.approved" (Approved),
    RequestDenied = "request.denied" (Denied),
    RequestExpired = "request.expired" (Expired),
    RequestCancelled = "request.cancelled" (Reported),
    RequestExecuted = "request.executed" (Reported),
    RequestFailed = "request.failed" (Reported),
    /// The agent is about to run its approved action.
    RequestStarted = "request.started" (Started),
    /// The escalation groups may now approve too.
    RequestEscalated = "request.escalated" (Escalated),
    /// The request expires soon and is still pending: its routes are reminded.
    RequestReminded = "request.reminded" (Reminded),
    RequestBreakGlass = "request.break_glass" (BreakGlass),
    GrantCreated = "grant.created" (GrantCreated),
    GrantUsed = "grant.used" (GrantUsed),
    GrantRevoked = "grant.revoked" (GrantRevoked),
    FollowupAcknowledged = "followup.acknowledged" (Empty),
    PolicyCreated = "policy.created" (PolicyVersion),
    PolicyUpdated = "policy.updated" (PolicyVersion),
    PolicyMoved = "policy.moved" (PolicyMoved),
    PolicyImported = "policy.imported" (PolicyImported),
    AgentCreated = "agent.created" (AgentKey),
    AgentKeyIssued = "agent.key_issued" (AgentKey),
    AgentOwnerChanged = "agent.owner_changed" (AgentOwnerChanged),
    AgentKeysRevoked = "agent.keys_revoked" (AgentKeysRevoked),
    AgentKeyRotated = "agent.key_rotated" (AgentKeyRotated),
    TerminalSignInConfirmed = "terminal.sign_in_confirmed" (SignIn),
    TerminalSignInRefused = "terminal.sign_in_refused" (SignIn),
    TerminalTokenIssued = "terminal.token_issued" (TokenIssued),
    TerminalTokenRevoked = "terminal.token_revoked" (TokenRevoked),
    /// Someone read the audit trail out (an export, the console's audit page).
    AuditExported = "audit.exported" (AuditExported),
}

/// A stored event this version cannot read (from a newer version, or damaged).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the audit event `{kind}` cannot be read: {reason}")]
pub struct UnreadableEvent {
    pub kind: String,
    pub reason: String,
}

/// What a live view is told of a request event: that the queue may have changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LiveEventKind {
    Created,
    Decided,
    Expired,
    Cancelled,
    Reported,
    Escalated,
}

impl LiveEventKind {
    /// Every kind a live view may be sent; the console's script reads this list from the
    /// page, so it never keeps one of its own.
    pub const ALL: [LiveEventKind; 6] = [
        LiveEventKind::Created,
        LiveEventKind::Decided,
        LiveEventKind::Expired,
        LiveEventKind::Cancelled,
        LiveEventKind::Reported,
        LiveEventKind::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LiveEventKind::Created => "created",
            LiveEventKind::Decided => "decided",
            LiveEventKind::Expired => "expired",
            LiveEventKind::Cancelled => "cancelled",
            LiveEventKind::Reported => "reported",
            LiveEventKind::Escalated => "escalated",
        }
    }
}

impl Kind {
    /// The live event this kind is, with the status the request has after it; `None` for
    /// events live views need not hear of (admin changes, grants, starts).
    pub fn live(self) -> Option<(LiveEventKind, Status)> {
        Some(match self {
            Kind::RequestCreated => (LiveEventKind::Created, Status::Pending),
            Kind::DecisionRecorded => (LiveEventKind::Decided, Status::Pending),
            Kind::RequestApproved => (LiveEventKind::Decided, Status::Approved),
            Kind::RequestDenied => (LiveEventKind::Decided, Status::Denied),
            Kind::RequestExpired => (LiveEventKind::Expired, Status::Expired),
            Kind::RequestCancelled => (LiveEventKind::Cancelled, Status::Cancelled),
            Kind::RequestExecuted => (LiveEventKind::Reported, Status::Executed),
            Kind::RequestFailed => (LiveEventKind::Reported, Status::Failed),
            Kind::RequestEscalated => (LiveEventKind::Escalated, Status::Pending),
            Kind::RequestStarted
            | Kind::RequestReminded
            | Kind::RequestBreakGlass
            | Kind::GrantCreated
            | Kind::GrantUsed
            | Kind::GrantRevoked
            | Kind::FollowupAcknowledged
            | Kind::PolicyCreated
            | Kind::PolicyUpdated
            | Kind::PolicyMoved
            | Kind::PolicyImported
            | Kind::AgentCreated
            | Kind::AgentKeyIssued
            | Kind::AgentOwnerChanged
            | Kind::AgentKeysRevoked
            | Kind::AgentKeyRotated
            | Kind::TerminalSignInConfirmed
            | Kind::TerminalSignInRefused
            | Kind::TerminalTokenIssued
            | Kind::TerminalTokenRevoked
            | Kind::AuditExported => return None,
        })
    }
}

impl Kind {
    /// The sentence for an event of this kind, whatever its data: what a screen shows for
    /// an event it cannot read, and what [`Event::describe`] refines.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::RequestCreated => "submitted",
            Kind::DecisionRecorded => "decided",
            Kind::RequestApproved => "approved",
            Kind::RequestDenied => "request denied",
            Kind::RequestExpired => "expired",
            Kind::RequestCancelled => "cancelled",
            Kind::RequestExecuted => "executed",
            Kind::RequestFailed => "failed",
            Kind::RequestStarted => "started running",
            Kind::RequestEscalated => "escalated: the escalation groups may approve too",
            Kind::RequestReminded => "reminded the reviewers: it expires soon",
            Kind::RequestBreakGlass => "approved under break-glass (emergency)",
            Kind::GrantCreated => "approved later requests like this one (grant)",
            Kind::GrantUsed => "approved under an earlier grant",
            Kind::GrantRevoked => "grant revoked",
            Kind::FollowupAcknowledged => "break-glass approval acknowledged",
            Kind::PolicyCreated => "created a policy",
            Kind::PolicyUpdated => "saved a policy",
            Kind::PolicyMoved => "moved a policy",
            Kind::PolicyImported => "imported policies",
            Kind::AgentCreated => "created an agent with a key",
            Kind::AgentKeyIssued => "issued an agent a new key",
            Kind::AgentOwnerChanged => "changed an agent's owner",
            Kind::AgentKeysRevoked => "revoked an agent's keys",
            Kind::AgentKeyRotated => "rotated an agent's key",
            Kind::TerminalSignInConfirmed => "confirmed a terminal sign-in",
            Kind::TerminalSignInRefused => "refused a terminal sign-in",
            Kind::TerminalTokenIssued => "signed in a terminal",
            Kind::TerminalTokenRevoked => "revoked a terminal token",
            Kind::AuditExported => "read the audit trail out",
        }
    }
}

impl Event {
    /// The one sentence every screen shows for this event: its kind's, with what the data
    /// adds (who decided how, which policy, which agent).
    pub fn describe(&self) -> String {
        match self {
            Event::DecisionRecorded(decided) => match decided.verdict {
                Verdict::Approve => "approved".to_string(),
                Verdict::Deny => "denied".to_string(),
            },
            Event::RequestApproved(Approved::ByPolicy(ruling)) => {
                format!("approved by policy `{}` (version {})", ruling.policy, ruling.version)
            }
            Event::RequestApproved(Approved::ByGrant { .. }) => "approved under a grant".to_string(),
            Event::RequestApproved(Approved::ByQuorum { .. }) => "quorum reached: approved".to_string(),
            Event::RequestDenied(Denied::ByPolicy(ruling)) => {
                format!("denied by policy `{}` (version {})", ruling.policy, ruling.version)
            }
            Event::PolicyCreated(saved) => format!("created policy `{}`", saved.name),
            Event::PolicyUpdated(saved) => format!("saved version {} of policy `{}`", saved.version, saved.name),
            Event::PolicyMoved(moved) => {
                format!("moved a policy from place {} to {}", moved.before + 1, moved.after + 1)
            }
            Event::PolicyImported(imported) => format!(
                "imported policies: {} created, {} updated, {} disabled, {} unchanged",
                imported.created.len(),
                imported.updated.len(),
                imported.disabled.len(),
                imported.unchanged.len()
            ),
            Event::AgentCreated(key) => format!("created agent `{}` with a key", key.agent),
            Event::AgentKeyIssued(key) => format!("issued agent `{}` a new key", key.agent),
            Event::AgentOwnerChanged(changed) => format!(
                "changed the owner of agent `{}` to {}",
                changed.agent,
                changed.after.owner.as_deref().unwrap_or("nobody")
            ),
            Event::AgentKeysRevoked(revoked) => {
                format!("revoked {} key(s) of agent `{}`", revoked.keys_revoked, revoked.agent)
            }
            Event::AgentKeyRotated(rotated) => format!("rotated the key of agent `{}`", rotated.agent),
            Event::AuditExported(read) => format!(
                "read the audit trail out ({}, events {} to {})",
                read.format, read.from, read.to
            ),
            other => other.kind().describe().to_string(),
        }
    }
}

/// `request.created`: what was asked, and the policy it was matched to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Created {
    pub action: String,
    pub resource: String,
    pub title: String,
    pub on_behalf_of: Option<String>,
    pub digest: String,
    pub policy: PolicySnapshot,
    /// Recorded since policies decide at creation; earlier requests were created pending.
    #[serde(default = "pending")]
    pub status: Status,
    /// Unix milliseconds.
    pub expires_at: i64,
}

fn pending() -> Status {
    Status::Pending
}

/// `decision.recorded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decided {
    pub verdict: Verdict,
    pub comment: String,
    pub channel: Channel,
    pub digest: String,
    pub approvals: u32,
    pub approvals_required: u32,
    #[serde(default)]
    pub break_glass: bool,
}

/// Which policy decided a request at creation, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRuling {
    pub policy: String,
    pub version: i64,
    pub why: Vec<String>,
}

/// `request.approved`: by an allow policy, under a grant, or by reviewers reaching quorum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Approved {
    ByPolicy(PolicyRuling),
    ByGrant { grant: String },
    ByQuorum { approvals: u32 },
}

/// `request.denied`: by a deny policy (with what the agent is told), or by a reviewer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Denied {
    ByPolicy(DenyRuling),
    ByQuorum { approvals: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyRuling {
    pub policy: String,
    pub version: i64,
    pub why: Vec<String>,
    pub reason: Option<String>,
}

/// `request.expired`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expired {
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// `request.cancelled`, `request.executed`, `request.failed`: the agent's word.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reported {
    pub result: Option<ResultReport>,
}

/// `request.started`: which approved action is about to run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub digest: String,
}

/// `request.escalated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalated {
    pub groups: Vec<String>,
    pub policy: String,
}

/// `request.reminded`: when the request it reminds of expires.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminded {
    /// Unix milliseconds.
    pub expires_at: i64,
}

/// `request.break_glass`: an admin approved their own request in an emergency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreakGlass {
    pub comment: String,
    pub policy: String,
    pub version: i64,
}

/// `grant.created`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantCreated {
    pub grant: String,
    pub granted_by: Vec<Identity>,
    pub action: String,
    pub resource: String,
    pub fields: BTreeMap<String, Value>,
    /// Unix milliseconds.
    pub expires_at: i64,
    pub max_uses: i64,
    pub policy: String,
    pub version: i64,
}

/// `grant.used`: a later request approved under a grant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantUsed {
    pub grant: String,
    pub granted_by: Vec<Identity>,
    /// This use's number, from 1.
    #[serde(rename = "use")]
    pub use_number: i64,
    pub max_uses: i64,
    /// The request whose approval gave the grant.
    pub granted_on: RequestId,
}

/// `grant.revoked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantRevoked {
    pub grant: String,
    pub uses: i64,
    pub max_uses: i64,
}

/// An event whose kind says it all.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// `policy.created`, `policy.updated`: a version saved, with the documents before and
/// after (as JSON, so that readers need not know the policy language).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub policy: String,
    pub name: String,
    pub version: i64,
    pub before: Option<Value>,
    pub after: Value,
}

/// `policy.moved`: places in the order, from 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyMoved {
    pub policy: String,
    pub before: usize,
    pub after: usize,
}

/// `audit.exported`: which events were read out, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditExported {
    pub from: i64,
    pub to: i64,
    /// `jsonl`, `csv`, or `page` for the console's audit page.
    pub format: String,
}

/// `policy.imported`: policy names by what the import did to them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyImported {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub disabled: Vec<String>,
    pub unchanged: Vec<String>,
}

/// `agent.created`, `agent.key_issued`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKey {
    pub agent: String,
    pub owner: Option<String>,
    pub description: Option<String>,
    /// The key's first characters, to tell keys apart; never the key.
    pub key_prefix: String,
}

/// `agent.owner_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentOwnerChanged {
    pub agent: String,
    pub before: Owner,
    pub after: Owner,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub owner: Option<String>,
}

/// `agent.keys_revoked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeysRevoked {
    pub agent: String,
    pub keys_revoked: u64,
}

/// `agent.key_rotated`: the old keys revoked and a new one issued, in one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentKeyRotated {
    pub agent: String,
    pub keys_revoked: u64,
    pub key_prefix: String,
}

/// `terminal.sign_in_confirmed`, `terminal.sign_in_refused`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignIn {
    pub user_code: String,
}

/// `terminal.token_issued`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIssued {
    pub token_id: String,
    pub client_name: Option<String>,
}

/// `terminal.token_revoked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRevoked {
    pub token_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_kind_has_one_spelling_that_reads_back() {
        let mut seen = std::collections::HashSet::new();
        for kind in Kind::ALL {
            assert!(seen.insert(kind.as_str()), "{} spelled twice", kind.as_str());
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
            assert!(kind.as_str().contains('.'));
        }
        assert_eq!(Kind::parse("request.teleported"), None);
    }

    #[test]
    fn approvals_read_back_by_their_shape() {
        let by_policy = json!({"policy": "reads", "version": 3, "why": ["action `db.read`"]});
        let event = Event::from_stored("request.approved", by_policy.clone()).expect("reads");
        assert!(matches!(&event, Event::RequestApproved(Approved::ByPolicy(ruling)) if ruling.version == 3));
        assert_eq!(event.data(), by_policy);
        let by_grant = Event::from_stored("request.approved", json!({"grant": "g1"})).expect("reads");
        assert_eq!(by_grant.describe(), "approved under a grant");
        let by_quorum = Event::from_stored("request.approved", json!({"approvals": 2})).expect("reads");
        assert_eq!(by_quorum.describe(), "quorum reached: approved");
        assert_eq!(by_quorum.data(), json!({"approvals": 2}));
    }

    #[test]
    fn a_grant_use_keeps_its_stored_field_name() {
        let stored = json!({
            "grant": "g", "granted_by": [], "use": 2, "max_uses": 5,
            "granted_on": "0193a4c2-0000-7000-8000-000000000001",
        });
        let event = Event::from_stored("grant.used", stored.clone()).expect("reads");
        assert_eq!(event.data(), stored);
    }

    #[test]
    fn a_creation_recorded_before_policies_decided_reads_as_pending() {
        let early = json!({
            "action": "a", "resource": "r", "title": "t", "on_behalf_of": null, "digest": "d",
            "policy": {"name": "default", "version": 0, "approvals_required": 1, "approver_groups": []},
            "expires_at": 5,
        });
        let event = Event::from_stored("request.created", early).expect("reads");
        assert!(matches!(&event, Event::RequestCreated(created) if created.status == Status::Pending));
        assert_eq!(event.describe(), "submitted");
        assert_eq!(Kind::GrantUsed.describe(), "approved under an earlier grant");
    }

    #[test]
    fn an_unknown_or_damaged_event_says_which() {
        let unknown = Event::from_stored("request.teleported", json!({})).expect_err("unknown");
        assert_eq!(unknown.reason, "unknown kind");
        let damaged = Event::from_stored("request.expired", json!({"expires_at": "soon"})).expect_err("damaged");
        assert_eq!(damaged.kind, "request.expired");
    }

    #[test]
    fn actors_read_back_and_describe_themselves() {
        let reviewer: Actor = serde_json::from_value(json!({
            "type": "reviewer", "issuer": "https://sso", "subject": "u1", "email": null, "name": null,
        }))
        .expect("a reviewer");
        assert_eq!(reviewer.describe(), "by u1");
        let agent = Actor::agent("a1", "deployer");
        assert_eq!(
            serde_json::to_value(&agent).expect("serialises"),
            json!({"type": "agent", "id": "a1", "name": "deployer"})
        );
        assert_eq!(agent.describe(), "by agent deployer");
        assert_eq!(
            serde_json::to_value(Actor::System).expect("serialises"),
            json!({"type": "system"})
        );
    }

    #[test]
    fn only_request_events_are_live() {
        assert_eq!(
            Kind::RequestEscalated.live(),
            Some((LiveEventKind::Escalated, Status::Pending))
        );
        assert_eq!(Kind::PolicyMoved.live(), None);
        let live: std::collections::HashSet<LiveEventKind> = Kind::ALL
            .iter()
            .filter_map(|kind| kind.live())
            .map(|(live, _)| live)
            .collect();
        assert_eq!(
            live.len(),
            LiveEventKind::ALL.len(),
            "every live kind is sent for some event"
        );
    }
}
