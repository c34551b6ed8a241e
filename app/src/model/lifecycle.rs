//! A request's life as pure transitions: each takes the request as it stands and `now`,
//! changes it, and says what happened as events, or refuses with a reason. The engine
//! loads, locks, applies these, writes and chains; it decides nothing itself (see
//! ARCHITECTURE.md, "The lifecycle").
//!
//! A transition that changes the request always emits at least one event, and one that
//! emits none changed nothing: the engine writes a request back exactly when it has new
//! events.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::event::{
    Actor, Approved, BreakGlass, Created, Decided, Denied, DenyRuling, Escalated, Event, Expired, GrantCreated,
    GrantUsed, PolicyRuling, Reminded, Reported, Started,
};
use super::grant::grant_is_active;
use super::request::{AgentRef, Decision, Grant, Request, ResultReport, unix_millis};
use super::rules::{
    Channel, EffectKind, Identity, Outcome, PolicySnapshot, RuleError, Verdict, check_eligibility, evaluate,
    evaluate_break_glass,
};
use super::{AgentId, RequestId, Status, TransitionError};

/// An event as it enters the audit trail: when, by whom, about which request.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub at: OffsetDateTime,
    pub actor: Actor,
    pub request: Option<RequestId>,
    pub event: Event,
}

impl Entry {
    pub fn new(at: OffsetDateTime, actor: Actor, request: Option<RequestId>, event: Event) -> Entry {
        Entry {
            at,
            actor,
            request,
            event,
        }
    }
}

/// Why a transition was refused. Nothing changed, unless the request was found past its
/// time: then its expiry was recorded first.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// Another agent's request: as far as this agent can tell, it does not exist.
    #[error("no such request")]
    NotYours,
    #[error(
        "this approval was already used: the action was started at {}; it is not started again",
        rfc3339(*.0)
    )]
    AlreadyStarted(OffsetDateTime),
    #[error("the request is {0}: only an approved request can be started")]
    NotApproved(Status),
    #[error("break-glass is for approving; deny as usual")]
    BreakGlassDenial,
    #[error("this receipt is not the one issued for this request's approval")]
    NotThisReceipt,
    #[error("this receipt was already used, at {}; it is not used again", rfc3339(*.0))]
    ReceiptUsed(OffsetDateTime),
    #[error(transparent)]
    Grant(#[from] GrantRefusal),
}

/// Why an approval's grant was refused (the approval too: it is one decision).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum GrantRefusal {
    #[error("the policy `{0}` does not allow approving with a grant")]
    NotAllowed(String),
    #[error("only an approval can come with a grant")]
    NotAnApproval,
    #[error("a grant comes with the approval that approves the request; more approvals are needed first")]
    NeedsQuorum,
    #[error("a grant lasts at most {0} under this policy")]
    TooLong(String),
    #[error("a grant covers 1 to {0} uses under this policy")]
    TooManyUses(u32),
    #[error("`{0}` is not a payload field: name fields, or `*` alone for any payload")]
    NotAField(String),
    #[error("the payload has no field `{0}` to bind the grant to")]
    NoSuchField(String),
}

fn rfc3339(at: OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| unix_millis(at).to_string())
}

/// What an approver asks for when approving with a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantAsk {
    pub duration: Duration,
    pub max_uses: u32,
    /// Payload fields (dotted paths) later requests must match the approved one on; none
    /// for the whole action, `*` alone for any payload.
    pub fields: Vec<String>,
}

/// One reviewer's decision, as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionAsk {
    pub reviewer: Identity,
    pub verdict: Verdict,
    pub comment: String,
    pub channel: Channel,
    /// An admin the policy names approves their own request in an emergency.
    pub break_glass: bool,
    pub grant: Option<GrantAsk>,
}

/// What a recorded decision brought besides itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionEffects {
    /// The grant given with the approval, to store.
    pub grant: Option<Grant>,
    /// A break-glass approval: a follow-up opens for another admin.
    pub break_glass: bool,
}

/// A request with its decisions: what every transition reads and changes.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    pub request: Request,
    pub decisions: Vec<Decision>,
}

/// The `request.created` event of `request`.
pub fn created_event(request: &Request) -> Event {
    Event::RequestCreated(Box::new(Created {
        action: request.action.clone(),
        resource: request.resource.clone(),
        title: request.title.clone(),
        on_behalf_of: request.on_behalf_of.clone(),
        digest: request.digest.clone(),
        policy: request.policy.clone(),
        status: request.status,
        expires_at: unix_millis(request.expires_at),
    }))
}

impl Request {
    /// Frames a new request by the policy it matched: the policy's effect sets its status
    /// (allow approves, deny denies, anything else waits for reviewers), `ttl` its expiry,
    /// and the policy's escalation when the escalation groups join.
    pub fn frame(&mut self, policy: PolicySnapshot, ttl: Duration) {
        self.expires_at = self.created_at + ttl;
        self.status = match policy.effect {
            EffectKind::Allow => Status::Approved,
            EffectKind::Deny => Status::Denied,
            EffectKind::RequireApproval => Status::Pending,
        };
        self.decided_at = (self.status != Status::Pending).then_some(self.created_at);
        (self.escalates_at, self.remind_at) = match self.status {
            Status::Pending => (
                policy.escalates_at(self.created_at),
                policy.remind_at(self.created_at, self.expires_at),
            ),
            _ => (None, None),
        };
        self.policy = policy;
    }
}

impl Case {
    pub fn new(request: Request, decisions: Vec<Decision>) -> Case {
        Case { request, decisions }
    }

    /// A new request, as its policy framed it: created, and at once approved or denied
    /// when an allow or deny policy decided it.
    pub fn open(request: Request) -> (Case, Vec<Entry>) {
        let id = request.id;
        let at = request.created_at;
        let mut entries = vec![Entry::new(
            at,
            agent_actor(&request.agent),
            Some(id),
            created_event(&request),
        )];
        let policy = &request.policy;
        match request.status {
            Status::Approved => entries.push(Entry::new(
                at,
                Actor::System,
                Some(id),
                Event::RequestApproved(Approved::ByPolicy(PolicyRuling {
                    policy: policy.name.clone(),
                    version: policy.version,
                    why: policy.why.clone(),
                })),
            )),
            Status::Denied => entries.push(Entry::new(
                at,
                Actor::System,
                Some(id),
                Event::RequestDenied(Denied::ByPolicy(DenyRuling {
                    policy: policy.name.clone(),
                    version: policy.version,
                    why: policy.why.clone(),
                    reason: policy.deny_reason.clone(),
                })),
            )),
            _ => {}
        }
        (Case::new(request, Vec::new()), entries)
    }

    /// Approves a new pending request under the first of `candidates` that covers it:
    /// its policy version allowed grants, the grant is for the same agent, action and
    /// resource, has uses left (`used` counts this batch's uses too), binds what the
    /// request carries, and every grantor could approve it in person at `now`. Returns
    /// the grant used.
    pub fn approve_by_grant<'g>(
        &mut self,
        candidates: &'g [Grant],
        used: impl Fn(&str) -> i64,
        now: OffsetDateTime,
        out: &mut Vec<Entry>,
    ) -> Option<&'g Grant> {
        let request = &mut self.request;
        if request.status != Status::Pending || request.policy.grants.is_none() {
            return None;
        }
        let policy_id = request.policy.id.as_deref()?;
        let parties = request.parties();
        let context = request.decision_context(&parties, &[]);
        let grant = candidates.iter().find(|grant| {
            grant.policy_id == policy_id
                && grant.policy_version == request.policy.version
                && grant.agent_id == request.agent.id
                && grant.action == request.action
                && grant.resource == request.resource
                && grant_is_active(grant.revoked_at, grant.expires_at, grant.uses + used(&grant.id), grant.max_uses, now)
                && binding_holds(&grant.fields, request)
                // A grant approves only what each of its grantors could approve in person:
                // never a request made for one of them or by their agent.
                && grant
                    .granted_by
                    .iter()
                    .all(|grantor| check_eligibility(context, grantor, now).is_ok())
        })?;
        let at = request.created_at;
        request.status = Status::Approved;
        request.decided_at = Some(at);
        let grantors: Vec<&str> = grant.granted_by.iter().map(Identity::display_name).collect();
        request
            .policy
            .why
            .push(format!("approved under grant {} by {}", grant.id, grantors.join(", ")));
        let id = Some(request.id);
        out.push(Entry::new(
            at,
            Actor::System,
            id,
            Event::GrantUsed(GrantUsed {
                grant: grant.id.clone(),
                granted_by: grant.granted_by.clone(),
                use_number: grant.uses + used(&grant.id) + 1,
                max_uses: grant.max_uses,
                granted_on: grant.request_id,
            }),
        ));
        out.push(Entry::new(
            at,
            Actor::System,
            id,
            Event::RequestApproved(Approved::ByGrant {
                grant: grant.id.clone(),
            }),
        ));
        Some(grant)
    }

    /// A reviewer's decision, by the rules of `app::model::rules`. A request found past
    /// its time is expired (recorded in `out`) and the decision refused.
    pub fn decide(
        &mut self,
        ask: &DecisionAsk,
        now: OffsetDateTime,
        out: &mut Vec<Entry>,
    ) -> Result<DecisionEffects, Refusal> {
        let ballots: Vec<_> = self.decisions.iter().map(Decision::ballot).collect();
        let parties = self.request.parties();
        let context = self.request.decision_context(&parties, &ballots);
        let ruled = if ask.break_glass {
            if ask.verdict != Verdict::Approve {
                return Err(Refusal::BreakGlassDenial);
            }
            if ask.grant.is_some() {
                return Err(RuleError::BreakGlassWithGrant.into());
            }
            evaluate_break_glass(context, &ask.reviewer, &ask.comment, now)
        } else {
            evaluate(context, &ask.reviewer, ask.verdict, &ask.comment, now)
        };
        let grant = match (&ask.grant, &ruled) {
            (Some(grant), Ok(outcome)) => Some(self.grant_for(ask, *outcome, grant, now)?),
            _ => None,
        };
        let outcome = match ruled {
            Ok(outcome) => outcome,
            Err(RuleError::Expired) => {
                // Found past its time: record what really happened, then refuse.
                self.expire(now, out);
                return Err(RuleError::Expired.into());
            }
            Err(refusal) => return Err(refusal.into()),
        };
        let reviewer = Actor::Reviewer(ask.reviewer.clone());
        let request = &mut self.request;
        let id = Some(request.id);
        request.approvals = match outcome {
            Outcome::Pending { approvals } => approvals,
            _ => request.approvals + u32::from(ask.verdict == Verdict::Approve),
        };
        request.break_glass |= ask.break_glass;
        request.status = outcome.status();
        if request.status != Status::Pending {
            request.decided_at = Some(now);
        }
        out.push(Entry::new(
            now,
            reviewer.clone(),
            id,
            Event::DecisionRecorded(Decided {
                verdict: ask.verdict,
                comment: ask.comment.clone(),
                channel: ask.channel,
                digest: request.digest.clone(),
                approvals: request.approvals,
                approvals_required: request.policy.approvals_required,
                break_glass: ask.break_glass,
            }),
        ));
        if ask.break_glass {
            out.push(Entry::new(
                now,
                reviewer.clone(),
                id,
                Event::RequestBreakGlass(BreakGlass {
                    comment: ask.comment.clone(),
                    policy: request.policy.name.clone(),
                    version: request.policy.version,
                }),
            ));
        }
        let approvals = request.approvals;
        match request.status {
            Status::Approved => out.push(Entry::new(
                now,
                Actor::System,
                id,
                Event::RequestApproved(Approved::ByQuorum { approvals }),
            )),
            Status::Denied => out.push(Entry::new(
                now,
                Actor::System,
                id,
                Event::RequestDenied(Denied::ByQuorum { approvals }),
            )),
            _ => {}
        }
        if let Some(grant) = &grant {
            out.push(Entry::new(
                now,
                reviewer,
                id,
                Event::GrantCreated(GrantCreated {
                    grant: grant.id.clone(),
                    granted_by: grant.granted_by.clone(),
                    action: grant.action.clone(),
                    resource: grant.resource.clone(),
                    fields: grant.fields.clone(),
                    expires_at: unix_millis(grant.expires_at),
                    max_uses: grant.max_uses,
                    policy: grant.policy_id.clone(),
                    version: grant.policy_version,
                }),
            ));
        }
        self.decisions.push(Decision {
            request_id: self.request.id,
            reviewer: ask.reviewer.clone(),
            verdict: ask.verdict,
            comment: ask.comment.clone(),
            channel: ask.channel,
            decided_at: now,
        });
        Ok(DecisionEffects {
            grant,
            break_glass: ask.break_glass,
        })
    }

    /// The agent withdraws its request. One found past its time is expired instead.
    pub fn cancel(&mut self, agent: AgentId, now: OffsetDateTime, out: &mut Vec<Entry>) -> Result<(), Refusal> {
        self.agent_transition(agent, Status::Cancelled, None, now, out)
    }

    /// The agent reports what happened when it ran the approved action. Presenting the
    /// approval receipt uses it: it must be this request's, and unused.
    pub fn report(
        &mut self,
        agent: AgentId,
        report: &ResultReport,
        now: OffsetDateTime,
        out: &mut Vec<Entry>,
    ) -> Result<(), Refusal> {
        self.owned_by(agent)?;
        let presented = report.receipt.is_some();
        if presented {
            if self.request.receipt != report.receipt {
                return Err(Refusal::NotThisReceipt);
            }
            if let Some(at) = self.request.receipt_used_at {
                return Err(Refusal::ReceiptUsed(at));
            }
        }
        // The receipt is a capability: it is never kept with the result or in the log.
        let report = ResultReport {
            receipt: None,
            ..report.clone()
        };
        self.agent_transition(agent, report.status.status(), Some(&report), now, out)?;
        if presented {
            self.request.receipt_used_at = Some(now);
        }
        Ok(())
    }

    fn agent_transition(
        &mut self,
        agent: AgentId,
        to: Status,
        report: Option<&ResultReport>,
        now: OffsetDateTime,
        out: &mut Vec<Entry>,
    ) -> Result<(), Refusal> {
        self.owned_by(agent)?;
        if self.request.status == Status::Pending && to == Status::Cancelled && now >= self.request.expires_at {
            // Its time ran out before the cancel arrived: record what really happened.
            self.expire(now, out);
            return Err(TransitionError {
                from: Status::Expired,
                to,
            }
            .into());
        }
        let request = &mut self.request;
        request.status = request.status.transition(to)?;
        if report.is_some() {
            request.result = report.cloned();
        }
        request.decided_at.get_or_insert(now);
        let reported = Reported {
            result: report.cloned(),
        };
        let event = match to {
            Status::Cancelled => Event::RequestCancelled(reported),
            Status::Executed => Event::RequestExecuted(reported),
            _ => Event::RequestFailed(reported),
        };
        out.push(Entry::new(now, agent_actor(&request.agent), Some(request.id), event));
        Ok(())
    }

    /// The agent starts its approved action: only its own request, only approved, and
    /// only once, so one approval never runs twice.
    pub fn start(&mut self, agent: AgentId, now: OffsetDateTime, out: &mut Vec<Entry>) -> Result<(), Refusal> {
        self.owned_by(agent)?;
        let request = &mut self.request;
        if let Some(started_at) = request.started_at {
            return Err(Refusal::AlreadyStarted(started_at));
        }
        if request.status != Status::Approved {
            return Err(Refusal::NotApproved(request.status));
        }
        request.started_at = Some(now);
        out.push(Entry::new(
            now,
            agent_actor(&request.agent),
            Some(request.id),
            Event::RequestStarted(Started {
                digest: request.digest.clone(),
            }),
        ));
        Ok(())
    }

    /// What the sweeper does to a pending request: expire it once past its time, or
    /// announce its escalation and remind its routes, each once, when their time has
    /// come. Returns whether it expired.
    pub fn sweep(&mut self, now: OffsetDateTime, out: &mut Vec<Entry>) -> bool {
        if self.request.status != Status::Pending {
            return false;
        }
        if now >= self.request.expires_at {
            self.expire(now, out);
            return true;
        }
        if self.request.escalates_at.is_some_and(|at| now >= at) {
            self.escalate(now, out);
        }
        if self.request.remind_at.is_some_and(|at| now >= at) {
            self.remind(now, out);
        }
        false
    }

    /// Reminds the request's routes, once, that it expires soon.
    fn remind(&mut self, now: OffsetDateTime, out: &mut Vec<Entry>) {
        let request = &mut self.request;
        request.remind_at = None;
        out.push(Entry::new(
            now,
            Actor::System,
            Some(request.id),
            Event::RequestReminded(Reminded {
                expires_at: unix_millis(request.expires_at),
            }),
        ));
    }

    /// Marks a pending request expired.
    fn expire(&mut self, now: OffsetDateTime, out: &mut Vec<Entry>) {
        let request = &mut self.request;
        request.status = Status::Expired;
        request.decided_at = Some(now);
        out.push(Entry::new(
            now,
            Actor::System,
            Some(request.id),
            Event::RequestExpired(Expired {
                expires_at: unix_millis(request.expires_at),
            }),
        ));
    }

    /// Announces, once, that the escalation groups may now approve too.
    fn escalate(&mut self, now: OffsetDateTime, out: &mut Vec<Entry>) {
        let request = &mut self.request;
        request.escalates_at = None;
        let groups = request
            .policy
            .escalation
            .as_ref()
            .map(|escalation| escalation.groups.clone())
            .unwrap_or_default();
        out.push(Entry::new(
            now,
            Actor::System,
            Some(request.id),
            Event::RequestEscalated(Escalated {
                groups,
                policy: request.policy.name.clone(),
            }),
        ));
    }

    fn owned_by(&self, agent: AgentId) -> Result<(), Refusal> {
        if self.request.agent.id == agent {
            Ok(())
        } else {
            Err(Refusal::NotYours)
        }
    }

    /// The grant an approval asks for, checked against the policy's terms: only with the
    /// approval that approves the request, within the policy's bounds, on fields the
    /// payload has. Its grantors are every approver of the request.
    fn grant_for(
        &self,
        ask: &DecisionAsk,
        outcome: Outcome,
        wanted: &GrantAsk,
        now: OffsetDateTime,
    ) -> Result<Grant, GrantRefusal> {
        let request = &self.request;
        let policy = &request.policy;
        let (Some(terms), Some(policy_id)) = (&policy.grants, &policy.id) else {
            return Err(GrantRefusal::NotAllowed(policy.name.clone()));
        };
        if ask.verdict != Verdict::Approve {
            return Err(GrantRefusal::NotAnApproval);
        }
        if outcome != Outcome::Approved {
            return Err(GrantRefusal::NeedsQuorum);
        }
        let max = Duration::from_secs(terms.max_duration_s());
        if wanted.duration.is_zero() || wanted.duration > max {
            return Err(GrantRefusal::TooLong(terms.max_duration.clone()));
        }
        if wanted.max_uses == 0 || wanted.max_uses > terms.max_uses {
            return Err(GrantRefusal::TooManyUses(terms.max_uses));
        }
        let fields = grant_binding(request, &wanted.fields)?;
        let mut granted_by: Vec<Identity> = self
            .decisions
            .iter()
            .filter(|decision| decision.verdict == Verdict::Approve)
            .map(|decision| decision.reviewer.clone())
            .collect();
        granted_by.push(ask.reviewer.clone());
        Ok(Grant {
            id: uuid::Uuid::now_v7().to_string(),
            request_id: request.id,
            policy_id: policy_id.clone(),
            policy_version: policy.version,
            agent_id: request.agent.id,
            agent_name: request.agent.name.clone(),
            action: request.action.clone(),
            resource: request.resource.clone(),
            fields,
            granted_by,
            created_at: now,
            expires_at: now + wanted.duration,
            max_uses: i64::from(wanted.max_uses),
            uses: 0,
            revoked_at: None,
            revoked_by: None,
        })
    }
}

fn agent_actor(agent: &AgentRef) -> Actor {
    Actor::agent(agent.id, &agent.name)
}

/// The key under which a grant binds the whole action: its digest, which covers the
/// payload, the diff and the labels. Not a payload path: those never start with `$`.
const WHOLE_ACTION: &str = "$digest";
/// What an approver names to let a grant cover any payload, on purpose.
const ANY_PAYLOAD: &str = "*";

/// What a grant binds later requests to. By default the whole action (payload, diff and
/// labels, through the digest): a grant for "this export" is not one for every export. An
/// approver may name payload fields instead (only those must stay equal), or `*` for any
/// payload, each a deliberate widening.
fn grant_binding(request: &Request, asked: &[String]) -> Result<BTreeMap<String, Value>, GrantRefusal> {
    let mut fields = BTreeMap::new();
    match asked {
        [] => {
            fields.insert(WHOLE_ACTION.to_string(), Value::String(request.digest.clone()));
        }
        [any] if any == ANY_PAYLOAD => {}
        paths => {
            for path in paths {
                if path == ANY_PAYLOAD || path.starts_with('$') {
                    return Err(GrantRefusal::NotAField(path.clone()));
                }
                let value = field(&request.payload, path).ok_or_else(|| GrantRefusal::NoSuchField(path.clone()))?;
                fields.insert(path.clone(), value.clone());
            }
        }
    }
    Ok(fields)
}

/// Whether `request` is what a grant's binding allows (see [`grant_binding`]).
fn binding_holds(fields: &BTreeMap<String, Value>, request: &Request) -> bool {
    fields.iter().all(|(path, value)| match path.as_str() {
        WHOLE_ACTION => value.as_str() == Some(request.digest.as_str()),
        path => field(&request.payload, path) == Some(value),
    })
}

/// A payload field by dotted path (`table`, `target.region`).
fn field<'a>(payload: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(payload, |value, key| value.get(key))
}

#[cfg(test)]
mod tests;
